# A Python asyncio echo server, unmodified, under xdpload; 200 concurrent
# clients from the other namespace, each with 50 checked round trips of
# varying size.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
bg_preload_a python3 "$TOP/tests/peers/asyncio_echo_server.py" 0.0.0.0 8888
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8888' | grep -q 8888"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
out=$(in_b timeout 120 python3 "$TOP/tests/peers/asyncio_echo_clients.py" "$IP_A" 8888 200 50)
rc=$?
echo "$out"
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
rx=$(xstat_counter "$server" rx_frames)
echo "xdpload rx frames $rx; A's kernel TcpInSegs +$((segs_after - segs_before))"
check "200 clients x 50 rounds, no error" bash -c "[ $rc -eq 0 ] && grep -q '200 clients x 50 rounds: 0 errors' <<<'$out'"
check "through xdpload, not A's kernel" bash -c "[ $rx -gt 10000 ] && [ $((segs_after - segs_before)) -lt 100 ]"
finish
