# A family whose parent started the stack without a TCP socket (a UDP one),
# then forks workers that make the first TCP connections of the family:
# each works. (The second worker used to abort on an lwIP assertion: the
# PCB extension slot was allocated per process from a counter the family
# shares. Found by the API fuzz's fork mode.)
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b socat TCP4-LISTEN:7004,reuseaddr,fork SYSTEM:cat
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7004' | grep -q 7004"
cat >"$tmp/workers.py" <<'PY'
import os, socket, sys
local, peer = sys.argv[1], sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((local, 0))  # the stack starts here, with no TCP socket yet
statuses = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        c = socket.create_connection((peer, 7004), timeout=5)
        c.sendall(b"worker %d\n" % i)
        got = c.recv(64)
        c.close()
        os._exit(0 if got == b"worker %d\n" % i else 1)
    _, status = os.waitpid(pid, 0)
    statuses.append(status)
print(" ".join(str(s) for s in statuses))
PY
PRELOAD_A XDPLOAD_LOG=2 python3 "$tmp/workers.py" "$IP_A" "$IP_B" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
grep -v "clock" "$tmp/err" | tail -5
check "the parent ran to its end (status $rc)" [ $rc -eq 0 ]
check "three workers, each its first TCP connection echoed (statuses 0 0 0)" [ "$(cat "$tmp/out")" = "0 0 0" ]
check "the workers shared the parent's stack" [ "$(grep -c 'shares the stack' "$tmp/err")" -eq 3 ]
check "no lwIP assertion" bash -c "! grep -q 'lwIP assertion' $tmp/err"
finish
