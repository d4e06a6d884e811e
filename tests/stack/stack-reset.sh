# lwIP over AF_XDP: a connect to a port nobody listens on, and a peer that
# resets an established connection, are both reported as a reset.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
bg_b bash -c "tcp_reset_server 7103"
wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7103' | grep -q 7103"
out=$(in_a "$BUILD/tests/stack_peer" --iface "$IF_A" --peer "$IP_B" --port 7104 refused)
rc=$?
echo "$out"
check "refused connect reported as a reset" bash -c "[ $rc -eq 0 ] && grep -q 'err -14 (reset)' <<<'$out'"
out=$(in_a "$BUILD/tests/stack_peer" --iface "$IF_A" --peer "$IP_B" --port 7103 reset)
rc=$?
echo "$out"
check "reset of an open connection reported as a reset" bash -c "[ $rc -eq 0 ] && grep -q 'err -14 (reset)' <<<'$out'"
finish
