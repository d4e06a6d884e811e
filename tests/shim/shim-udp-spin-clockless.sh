# A spinning non-blocking UDP receiver that never reads the time
# (bench/udp_pingpong echo: a recvfrom() spin and a sendto()) still gets its
# empty calls answered without the stack's lock: the spin's throttle for
# looking at the kernel socket used the TSC's rate, which the served clock
# learns only as it is read, and without it every empty call took the lock
# and polled (70 ns instead of 20). Its echoes come back, all of them.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_preload_a env XDPLOAD_SPIN_USEC=100000 "$BUILD/bench/udp_pingpong" echo 9610
server=$BG_PID
wait_for 100 bash -c "ip netns exec $NS_A ss -lunH 'sport = :9610' | grep -q 9610"
sleep 2.5  # idle spinning; the statistics are refreshed once a second
locked=$(xstat_counter "$server" polls_locked)
lockfree=$(xstat_counter "$server" polls_lockfree)
echo "idle receiver: calls that polled under the lock $locked, answered without it $lockfree"
check "idle, the empty calls were answered without the lock ($lockfree vs $locked)" \
  [ "${lockfree:-0}" -gt $(( ${locked:-0} * 10 )) ]
in_b python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
ok = 0
for i in range(100):
    s.sendto(b'%d' % i + b'x' * 60, ('$IP_A', 9610))
    try:
        d = s.recv(100)
        ok += d.startswith(b'%d' % i)
    except socket.timeout:
        pass
print('echoed', ok)
" >"$tmp/client.out"
cat "$tmp/client.out"
check "every datagram echoed" grep -q "echoed 100" "$tmp/client.out"
check "the receiver is still running" kill -0 "$server"
finish
