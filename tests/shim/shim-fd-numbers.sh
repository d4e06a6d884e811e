# The program's descriptor numbers are the ones it gets without xdpload:
# the library's own (AF_XDP sockets, BPF maps and link, netlink, eventfds,
# epoll sets) live at the top of the range, so sockets, files, pipes and
# epoll sets opened after the stack started get the same numbers with and
# without the preload, under a large limit and under the soft limit of 1024
# that systemd and login shells give (a closed connection's port held for
# its TIME-WAIT by a parked kernel socket included); a daemon's closerange(3, ...) leaves them alone and
# acceleration keeps working; `wrk -t1 -c1` (which sizes its event loop
# from its connection count) makes requests without connect errors.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT

bg_b bash -c "nc -lk 7000 >/dev/null </dev/null"
bg_b bash -c "udp_echo_server 7102"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7102' | grep -q 7102"
cat >"$tmp/fds.py" <<PY
import os, resource, select, socket, sys
# A large limit, as servers set: the library's descriptors still stay low
# enough that the kernel's table, which every fork() copies, stays small.
# Or systemd's soft limit, 1024.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, int(sys.argv[1])), hard))
got = []
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
got.append(a.fileno())
a.sendto(b"x", ("$IP_B", 9))  # under the preload the stack starts here
b = socket.socket()
got.append(b.fileno())
b.connect(("$IP_B", 7000))
# A connection closed first: its port stays held (TIME-WAIT) by a kernel
# socket the library parks; the next socket gets its number back.
p = socket.socket()
p.connect(("$IP_B", 7000))
p.sendall(b"x")
p.close()
q = socket.socket()
got.append(q.fileno())
f = open("/etc/hostname")
got.append(f.fileno())
e = select.epoll()
got.append(e.fileno())
e.register(b, select.EPOLLIN)
e.poll(0.05)  # a blocking wait: the thread's eventfd is made here
b.settimeout(0.05)
try:
    b.recv(10)  # another blocking wait
except socket.timeout:
    pass
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
got.append(c.fileno())
r, w = os.pipe()
got += [r, w]
fds = [int(x) for x in os.listdir("/proc/self/fd")]
sys.stderr.write("limit %d, highest descriptor %d\n" % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], max(fds)))
# A daemon closing every descriptor it may have inherited.
os.closerange(3, 65536)
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
got.append(d.fileno())
d.settimeout(5)
d.sendto(b"after closerange", ("$IP_B", 7102))
echo = d.recv(100).decode()
print(" ".join(map(str, got)), echo)
PY
for limit in 65536 1024; do
  in_a python3 "$tmp/fds.py" $limit >"$tmp/kernel.out" 2>"$tmp/kernel.err"
  PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/fds.py" $limit >"$tmp/xdpload.out" 2>"$tmp/xdpload.err"
  cat "$tmp/kernel.out" "$tmp/kernel.err" "$tmp/xdpload.out" "$tmp/xdpload.err"
  check "limit $limit: the kernel path: numbers and echo" grep -q " after closerange$" "$tmp/kernel.out"
  check "limit $limit: the same descriptor numbers with and without the preload" \
    cmp -s "$tmp/kernel.out" "$tmp/xdpload.out"
  read -r lim highest < <(sed -n 's/^limit \([0-9]*\), highest descriptor \([0-9]*\)$/\1 \2/p' "$tmp/xdpload.err")
  check "the library's descriptors below 4096 and the limit (${lim:-?}): highest ${highest:-?}" \
    [ -n "$highest" -a "${highest:-99999}" -lt 4096 -a "${highest:-99999}" -lt "${lim:-0}" ]
  check "limit $limit: accelerated throughout (the two UDP sockets used and the TCP ones on the stack)" \
    grep -q "2 tcp and 2 udp sockets accelerated" "$tmp/xdpload.err"
done

mkdir "$tmp/www" && echo hello >"$tmp/www/index.html"
bg_b python3 -m http.server 8080 --directory "$tmp/www" --bind "$IP_B"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :8080' | grep -q 8080"
PRELOAD_A env XDPLOAD_LOG=1 wrk -t1 -c1 -d2s "http://$IP_B:8080/" >"$tmp/wrk.out" 2>"$tmp/wrk.err"
cat "$tmp/wrk.out" "$tmp/wrk.err"
reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
check "wrk -t1 -c1 under the preload: requests made (${reqs:-0})" [ "${reqs:-0}" -gt 10 ]
check "wrk -t1 -c1: no socket errors" bash -c "! grep -q 'Socket errors' $tmp/wrk.out"
check "wrk's connection was accelerated" grep -q "[1-9][0-9]* tcp and" "$tmp/wrk.err"
finish
