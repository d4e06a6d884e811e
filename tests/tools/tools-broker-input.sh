# Bad input to the broker's socket: garbage, wrong magic and version,
# truncated and oversized messages, claims before Hello, claims without
# proof or for ports the caller does not hold, a flood of connections that
# never say Hello. Each gets an error answer and a log line; the broker
# keeps serving: afterwards a program under the preload is still served and
# accelerated, and every frame is accounted for.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
echo_peer="python3 $TOP/tests/peers/echo_peer.py"

broker_up
broker=$BROKER_PID

in_a python3 "$TOP/tests/peers/broker_abuser.py" "$IF_A" >"$tmp/abuse.out" 2>&1
rc=$?
cat "$tmp/abuse.out"
check "every malformed message got an error answer, the broker kept serving" [ "$rc" -eq 0 ]
check "the broker is still running" kill -0 "$broker"
check "the broker logged the malformed messages" \
  bash -c "[ \$(grep -c 'refused' $tmp/broker.err) -ge 10 ]"

# A real program is still served, and accelerated.
bg_preload_a $echo_peer serve "$IP_A" "" 9001 2>"$tmp/prog.err"
prog=$BG_PID
wait_for 50 listening 9001
udp_echo_from_b 9001 4 50 "$tmp/u.out"
check "a program after the abuse: echo intact and accelerated (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]
kill $prog
wait $prog 2>/dev/null
wait_for 50 bash -c "! grep -q '^program ' $BROKER_STATUS"
sleep 0.5
cat "$BROKER_STATUS"
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$BROKER_STATUS"
check "the broker counted the bad messages" \
  awk '/^counters/ { for (i = 1; i < NF; ++i) if ($i == "bad_messages") exit !($(i + 1) >= 7) }' "$BROKER_STATUS"
kill $broker
wait $broker
tail -n 5 "$tmp/broker.err"
finish
