# A connection that reaches TIME_WAIT while the program still holds its
# socket (it shut its side, read to the end, and has not closed yet): when
# lwIP frees the PCB (TIME_WAIT over; here at once, A's tcp_max_tw_buckets
# being 0), the socket must forget it. Before, it kept the pointer: reading
# TCP_INFO read freed memory (here scribbled over, XL_TEST_SCRIBBLE_FREED:
# an MSS of 0xdbdb), and closing the socket wrote into it (or into a new
# connection's PCB that had taken its place). A new connection echoes
# before and after the old socket closes.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve "$IP_B" 9841 ""
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9841' | grep -q 9841"
in_a sysctl -qw net.ipv4.tcp_max_tw_buckets=0
cat >"$tmp/held.py" <<'PY'
import socket, struct, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
c1 = socket.create_connection((ip, port))
c1.shutdown(socket.SHUT_WR)
while c1.recv(100):
    pass
time.sleep(1.5)  # TIME_WAIT: over the bound, lwIP frees the PCB at its next slow tick
mss = struct.unpack_from("I", c1.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 24), 16)[0]
print("old socket's mss:", "sane" if mss <= 9000 else hex(mss), flush=True)
c2 = socket.create_connection((ip, port))
c2.settimeout(3)
c2.sendall(b"first")
print("first:", c2.recv(100).decode(), flush=True)
c1.close()
c2.sendall(b"second")
try:
    print("second:", c2.recv(100).decode(), flush=True)
except OSError as e:
    print("second:", type(e).__name__, flush=True)
c2.close()
PY
in_a timeout 30 env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 XL_TEST_SCRIBBLE_FREED=1 \
  python3 "$tmp/held.py" "$IP_B" 9841 >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
check "the program ran to its end (exit $rc)" [ "$rc" -eq 0 ]
check "the old socket's TCP_INFO read no freed memory" grep -qx "old socket's mss: sane" "$tmp/out"
check "the new connection echoes before the old socket closes" grep -qx "first: first" "$tmp/out"
check "and after it" grep -qx "second: second" "$tmp/out"
check "both on the stack" grep -q "2 tcp and 0 udp sockets accelerated, 0 left with the kernel" "$tmp/err"
finish
