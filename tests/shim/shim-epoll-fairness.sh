# Level-triggered epoll with fewer event slots than ready descriptors:
# Linux puts each descriptor it reports back at the tail of the ready list,
# so that epoll_wait(maxevents=1) goes round every ready one in turn. Four
# UDP sockets each hold a datagram that is never read (always readable);
# twelve epoll_wait calls of one slot each go round the four, each four
# calls in a row naming all of them in one repeating order, with and
# without the preload (where the rotation starts depends on how the
# datagrams and the first calls interleaved). Before, the shim kept a
# reported descriptor in its place at the head, and every call named the
# first.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/rotate.py" <<'PY'
import select, socket, sys, time
socks = []
for i in range(4):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9600 + i))
    socks.append(s)
print("bound", flush=True)
ep = select.epoll()
for s in socks:
    ep.register(s, select.EPOLLIN)
# Wait until every socket holds its datagram.
deadline = time.monotonic() + 10
while len(ep.poll(0.1, 4)) < 4 and time.monotonic() < deadline:
    pass
order = []
for _ in range(12):
    ev = ep.poll(1, 1)
    order.append(str(socks.index(next(s for s in socks if s.fileno() == ev[0][0]))) if ev else "-")
print("order", " ".join(order), flush=True)
PY
run() {  # mode
  if [ "$1" = kernel ]; then in_a python3 "$tmp/rotate.py" >"$tmp/$1.out" 2>"$tmp/$1.err" &
  else PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/rotate.py" >"$tmp/$1.out" 2>"$tmp/$1.err" & fi
  local pid=$!
  wait_for 50 grep -q "^bound$" "$tmp/$1.out"
  for i in 0 1 2 3; do in_b bash -c "echo d$i | socat -u - UDP4-SENDTO:$IP_A:$((9600 + i))"; done
  wait $pid
  cat "$tmp/$1.out" "$tmp/$1.err"
}
run kernel
run xdpload
k=$(sed -n 's/^order //p' "$tmp/kernel.out")
x=$(sed -n 's/^order //p' "$tmp/xdpload.out")
# round-robin ORDER: each 4 calls in a row name all four, repeating.
round_robin() {
  python3 -c '
import sys
o = sys.argv[1].split()
ok = len(o) == 12 and all(sorted(o[i:i + 4]) == ["0", "1", "2", "3"] for i in range(9)) \
     and all(o[i] == o[i + 4] for i in range(8))
sys.exit(0 if ok else 1)' "$1"
}
check "the kernel goes round the four sockets ($k)" round_robin "$k"
check "so does the shim ($x)" round_robin "$x"
check "...with the sockets on the stack" grep -q "0 tcp and 4 udp sockets accelerated" "$tmp/xdpload.err"
finish
