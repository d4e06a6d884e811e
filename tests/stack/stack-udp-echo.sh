# lwIP over AF_XDP: 10,000 UDP datagrams of 8 to 1407 bytes, each echoed by a
# kernel socket in the other namespace and compared.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
bg_b bash -c "udp_echo_server 7101"
wait_for 30 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7101' | grep -q 7101"
out=$(in_a "$BUILD/tests/stack_peer" --iface "$IF_A" --peer "$IP_B" --port 7101 udp-echo 10000)
rc=$?
echo "$out"
check "10,000 datagrams echoed intact" bash -c "[ $rc -eq 0 ] && grep -q '10000 echoed intact, 0 corrupted, 0 lost' <<<'$out'"
finish
