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
finish
