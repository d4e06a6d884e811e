# A forked child killed with the stack lock held, in the middle of a send on
# a connection its parent shares (tests/progs/die_holding_lock.c; the seam
# XL_TEST_DIE_HOLDING_LOCK kills the sender once it has taken the lock and
# named the socket). The survivors' affected socket fails with ECONNRESET
# and one clear line says why; the parent's other connection still echoes,
# a new one works, nothing hangs. (Before: "the sockets it was using may
# misbehave", and the connection went on in whatever state the dead process
# had left it.)
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve "$IP_B" 9831 ""
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9831' | grep -q 9831"

in_a timeout 60 env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  XL_TEST_DIE_HOLDING_LOCK=77 "$BUILD/tests/die_holding_lock" "$IP_B" 9831 >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
check "the parent ran to its end (exit $rc)" [ "$rc" -eq 0 ]
check "the child died by SIGKILL holding the lock" grep -qx "child: Killed" "$tmp/out"
check "the shared connection fails with ECONNRESET" grep -qx "after: first ECONNRESET" "$tmp/out"
check "one line names the connection and why" \
  bash -c "[ \$(grep -c 'died holding the stack lock while using the TCP connection from port [0-9]* to $IP_B:9831: it is reset (ECONNRESET)' $tmp/err) -eq 1 ]"
check "the parent's other connection still echoes" grep -qx "after: second echoed" "$tmp/out"
check "a new connection works" grep -qx "after: a new connection echoed" "$tmp/out"
check "all on the stack" grep -q "3 tcp and 0 udp sockets accelerated, 0 left with the kernel" "$tmp/err"

# A child killed in accept() on a listener it shares: a listener has no
# connection to reset (resetting it aborted the next process to take the
# lock: lwIP asserts on a listening PCB), and the parent goes on accepting.
cat >"$tmp/client.py" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection((sys.argv[1], 9832), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
s.sendall(b"hi")
print("client got:", s.recv(2).decode(), flush=True)
PY
in_a timeout 60 env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  XL_TEST_DIE_HOLDING_LOCK=-1 "$BUILD/tests/die_holding_lock" accept "$IP_A" 9832 >"$tmp/out2" 2>"$tmp/err2" &
server=$!
wait_for 100 grep -q listening "$tmp/out2"
in_b timeout 20 python3 "$tmp/client.py" "$IP_A" >"$tmp/client.out" 2>&1
wait "$server"
rc=$?
cat "$tmp/out2" "$tmp/err2" "$tmp/client.out"
check "accept: the parent ran to its end (exit $rc)" [ "$rc" -eq 0 ]
check "accept: the child died by SIGKILL holding the lock" grep -qx "child: Killed" "$tmp/out2"
check "accept: the listener still accepts and the connection echoes" \
  bash -c "grep -qx 'accept after: accepted and echoed' $tmp/out2 && grep -qx 'client got: hi' $tmp/client.out"
check "accept: one line says the stack goes on" grep -q "died holding the stack lock while using a socket with no connection to reset; the stack goes on" "$tmp/err2"

# A process killed taking a burst of frames off the receive ring: the rest
# of the burst was in no ring, pool or queue. The survivor gives it back
# (before, those frames were lost to the family for good: the exit line
# counted them as held).
cat >"$tmp/flood.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    for _ in range(20):
        s.sendto(b"x" * 100, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.01)
PY
in_a timeout 60 env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  XL_TEST_DIE_HOLDING_LOCK=-2 "$BUILD/tests/die_holding_lock" burst "$IP_A" 9833 >"$tmp/out3" 2>"$tmp/err3" &
first=$!
wait_for 100 grep -q bound "$tmp/out3"
in_b timeout 20 python3 "$tmp/flood.py" "$IP_A" 9833 4 &
flood=$!
wait "$first"
rc=$?
wait_for 150 grep -q "^child:" "$tmp/out3"
wait "$flood"
# (The child, an orphan now, writes its exit lines as it goes.)
wait_for 50 grep -q "exit: stack holds" "$tmp/err3"
cat "$tmp/out3" "$tmp/err3"
check "burst: the first process died by SIGKILL in a receive burst (status $rc)" \
  bash -c "[ $rc -eq 137 ] && ! grep -q 'parent: still alive' $tmp/out3"
check "burst: the survivor gave back the frames it had in hand" \
  grep -q "frame(s) the process that died holding the stack lock had in hand: given back" "$tmp/err3"
check "burst: the survivor went on receiving" grep -qx "child: its parent gone, it read datagrams after" "$tmp/out3"
check "burst: at exit the stack holds no frame" grep -q "exit: stack holds 0 frames" "$tmp/err3"
finish
