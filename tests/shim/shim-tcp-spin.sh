# A non-blocking TCP server spinning on recv() (sockperf sr --tcp
# --nonblocked, EAGAIN after EAGAIN) against a kernel ping-pong client: every
# message answered, none lost or reordered, and the empty calls answered
# without the stack's lock (polls_lockfree, as UDP's spin is): the lock and a
# poll per empty call were what a spinning reader added to each message.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_preload_a env XDPLOAD_SPIN_USEC=100000 sockperf sr -i "$IP_A" -p 11120 --tcp --nonblocked
server=$BG_PID
wait_for 100 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :11120' | grep -q 11120"
in_b timeout 30 sockperf pp -i "$IP_A" -p 11120 --tcp --nonblocked -t 3 -m 64 >"$tmp/pp.out" 2>&1
rc=$?
grep -E "Summary|dropped|percentile 50.000" "$tmp/pp.out"
sleep 1.5  # the statistics are refreshed once a second
locked=$(xstat_counter "$server" polls_locked)
lockfree=$(xstat_counter "$server" polls_lockfree)
tcp_in=$(xstat_counter "$server" tcp_in_segs)
echo "server: tcp in $tcp_in, receive calls that polled under the lock $locked, answered without it $lockfree"
check "sockperf client exits 0" [ $rc -eq 0 ]
check "no dropped, duplicated or out-of-order messages" \
  grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" "$tmp/pp.out"
check "the round trips went through the stack ($tcp_in segments)" [ "${tcp_in:-0}" -gt 10000 ]
check "most empty calls were answered without the lock ($lockfree vs $locked)" \
  [ "${lockfree:-0}" -gt "${locked:-0}" ]
check "the server is still running" kill -0 "$server"
finish
