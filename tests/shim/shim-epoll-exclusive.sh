# EPOLLEXCLUSIVE on a listener shared by forked workers (nginx's default
# shape since 1.11.3): four worker processes, each with its own epoll
# instance holding the listener with EPOLLIN | EPOLLEXCLUSIVE, sleep in
# epoll_wait; a client in B makes 20 connections one after the other. Each
# worker counts how often epoll_wait returned with the listener and how
# often accept() then found nothing. On the kernel one worker wakes per
# connection (20 wake-ups, no empty accept); under xdpload, before, every
# sleeping worker woke (38 wake-ups, 18 empty accepts, in the run that
# checked it), and now the sets that asked for exclusivity are told in
# turn until one has a waiter, as Linux's exclusive wait entries are
# (20 and 0).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import os, select, socket, sys
port, workers = int(sys.argv[1]), 4
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(64)
srv.setblocking(False)
pipe_r, pipe_w = os.pipe()
kids = []
for w in range(workers):
    pid = os.fork()
    if pid == 0:
        os.close(pipe_r)
        ep = select.epoll()
        ep.register(srv.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
        wakes = empty = accepted = 0
        while True:
            events = ep.poll(4)
            if not events:
                break  # the client is done
            wakes += 1
            try:
                c, _ = srv.accept()
            except BlockingIOError:
                empty += 1
                continue
            accepted += 1
            c.sendall(b"ok\n")
            c.close()
        os.write(pipe_w, f"{wakes} {empty} {accepted}\n".encode())
        os._exit(0)
    kids.append(pid)
os.close(pipe_w)
print("listening", flush=True)
for pid in kids:
    os.waitpid(pid, 0)
wakes = empty = accepted = 0
for line in os.fdopen(pipe_r).read().split("\n"):
    if line:
        a, b, c = map(int, line.split())
        wakes, empty, accepted = wakes + a, empty + b, accepted + c
print(f"wakes {wakes} empty {empty} accepted {accepted}", flush=True)
PY
cat >"$tmp/client.py" <<'PY'
import socket, sys, time
got = 0
for _ in range(20):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    got += s.recv(10) == b"ok\n"
    s.close()
    time.sleep(0.05)
print(f"answers {got}")
PY
run() {  # run NAME PORT [env...]
  local name=$1 port=$2
  shift 2
  ip netns exec "$NS_A" env "$@" python3 "$tmp/server.py" "$port" >"$tmp/$name" 2>"$tmp/$name.err" &
  local server=$!
  wait_for 50 grep -q listening "$tmp/$name"
  sleep 0.3  # the workers in epoll_wait
  in_b python3 "$tmp/client.py" "$IP_A" "$port" >"$tmp/$name.client" 2>&1
  wait "$server"
  echo "--- $name: $(grep wakes "$tmp/$name"), client: $(cat "$tmp/$name.client")"
  cat "$tmp/$name.err"
}
run kernel 9871
p0=$(kernel_counter "$NS_A" TcpPassiveOpens)
run xdpload 9872 LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1
p1=$(kernel_counter "$NS_A" TcpPassiveOpens)
wakes() { sed -n 's/^wakes \([0-9]*\) .*/\1/p' "$tmp/$1"; }
empty() { sed -n 's/^wakes [0-9]* empty \([0-9]*\) .*/\1/p' "$tmp/$1"; }
check "the kernel run answered 20 connections" grep -qx "answers 20" "$tmp/kernel.client"
check "under xdpload too" grep -qx "answers 20" "$tmp/xdpload.client"
check "under xdpload the connections were the stack's (A's kernel TcpPassiveOpens +$((p1 - p0)))" \
  [ "$p1" -eq "$p0" ]
check "the kernel woke about one worker per connection ($(wakes kernel) wake-ups)" [ "$(wakes kernel)" -le 30 ]
check "under xdpload, the same: at most 26 wake-ups for 20 connections ($(wakes xdpload); before: 38)" \
  [ "$(wakes xdpload)" -le 26 ]
check "...and at most 6 empty accepts ($(empty xdpload); before: 18)" [ "$(empty xdpload)" -le 6 ]
finish
