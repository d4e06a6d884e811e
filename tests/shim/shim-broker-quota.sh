# A program that hoards frames cannot starve the others. The broker runs
# with a quota of 256 frames a program. A program's own safeguards keep it
# far below that (queued UDP datagrams and TCP data are copied out of their
# frames when it runs short), so the hoarder is a UDP echo server that
# leaks: it gives no frame back until a file exists (a test seam,
# XL_TEST_BROKER_HOARD_UNTIL). Flooded, it passes its quota; the broker
# pauses it (the XDP program drops its frames), and the other program's
# echo goes on intact and accelerated; once it gives its frames back it is
# unpaused and echoes again; at the end every frame is back with the broker.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"
field() { awk -v k="$2" '{ for (i = 1; i < NF; ++i) if ($i == k) print $(i + 1) }' <<<"$1"; }

broker_up --quota 256
bg_preload_a $echo_peer serve "$IP_A" "" 9001 2>"$tmp/echo.err"
echo_pid=$BG_PID
bg_preload_a env XL_TEST_BROKER_HOARD_UNTIL="$tmp/give-back" $echo_peer serve "$IP_A" "" 9005 \
  2>"$tmp/hoarder.err"
hoarder=$BG_PID
wait_for 50 listening 9001
wait_for 50 listening 9005
wait_programs 2

in_b $flows udp-senders "$IP_A" 9005 4 200 >/dev/null 2>&1
wait_for 20 grep -q 'paused 1' "$BROKER_STATUS"
hoard_line=$(grep "^program .* pid $hoarder " "$BROKER_STATUS")
echo "$hoard_line"
check "the hoarder was paused over its quota (held $(field "$hoard_line" held))" \
  bash -c "grep -q 'pauses [1-9]' $BROKER_STATUS && grep -q 'over its quota' $tmp/broker.err"

udp_echo_from_b 9001 8 50 "$tmp/u.out"
check "meanwhile the other program's echo is intact and accelerated (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]

touch "$tmp/give-back"
wait_for 20 bash -c "grep '^program .* pid $hoarder ' $BROKER_STATUS | grep -q 'paused 0'"
hoard_line=$(grep "^program .* pid $hoarder " "$BROKER_STATUS")
echo "$hoard_line"
check "having given its frames back, the hoarder is unpaused" grep -q 'is back under its quota' "$tmp/broker.err"
udp_echo_from_b 9005 2 20 "$tmp/h.out"
check "and echoes again" [ "$ECHO_RC" -eq 0 ]
kill $hoarder $echo_pid
wait $hoarder $echo_pid 2>/dev/null
wait_for 50 bash -c "! grep -q '^program ' $BROKER_STATUS"
sleep 0.5
cat "$BROKER_STATUS"
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$BROKER_STATUS"
cat "$tmp/broker.err"
finish
