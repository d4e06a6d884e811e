# sockperf server under xdpload (one process serving UDP and TCP), kernel
# sockperf ping-pong client in the other namespace, 10 s each: no errors,
# no drops, and the round trips went through the stack.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
secs=${SOCKPERF_SECONDS:-10}
printf 'U:%s:11111\nT:%s:11112\n' "$IP_A" "$IP_A" >"$tmp/feed"
bg_preload_a sockperf sr -f "$tmp/feed"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :11112' | grep -q 11112"
tcp_before=$(kernel_counter "$NS_A" TcpInSegs)
udp_before=$(kernel_counter "$NS_A" UdpInDatagrams)
for proto in udp tcp; do
  port=11111
  flag=""
  [ $proto = tcp ] && port=11112 && flag=--tcp
  in_b timeout $((secs + 20)) sockperf pp -i "$IP_A" -p $port $flag -t "$secs" -m 64 >"$tmp/$proto.out" 2>&1
  rc=$?
  grep -E "Summary|dropped|percentile 50.000|percentile 99.000" "$tmp/$proto.out"
  check "$proto: sockperf client exits 0" [ $rc -eq 0 ]
  check "$proto: no dropped, duplicated or out-of-order messages" \
    grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" "$tmp/$proto.out"
  check "$proto: no errors reported" bash -c "! grep -qi 'error' $tmp/$proto.out"
done
check "the server is still running" kill -0 "$server"
udp_in=$(xstat_counter "$server" udp_in_datagrams)
zero_copy=$(xstat_counter "$server" tx_zero_copy)
direct=$(xstat_counter "$server" tx_udp_direct)
tcp_in=$(xstat_counter "$server" tcp_in_segs)
tcp_after=$(kernel_counter "$NS_A" TcpInSegs)
udp_after=$(kernel_counter "$NS_A" UdpInDatagrams)
echo "xdpload: udp in $udp_in, tcp in $tcp_in; kernel: TcpInSegs +$((tcp_after - tcp_before)), UdpInDatagrams +$((udp_after - udp_before))"
check "xdpload received the UDP round trips" [ "$udp_in" -gt 10000 ]
check "UDP replies built in their transmit frames, no copy ($zero_copy)" [ "$zero_copy" -gt 10000 ]
check "... by the UDP fast path, not lwIP's output ($direct)" [ "$direct" -gt 10000 ]
check "xdpload received the TCP round trips" [ "$tcp_in" -gt 10000 ]
check "A's kernel saw almost no TCP segments" [ $((tcp_after - tcp_before)) -lt 100 ]
check "A's kernel saw almost no UDP datagrams" [ $((udp_after - udp_before)) -lt 100 ]
finish
