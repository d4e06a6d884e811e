# Bad input to the broker's socket: garbage, wrong magic and version,
# truncated and oversized messages, claims before Hello, claims without
# proof or for ports the caller does not hold, a flood of connections that
# never say Hello. Each gets an error answer and a log line; the broker
# keeps serving: afterwards a program under the preload is still served and
# accelerated, and every frame is accounted for.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"
listening() { ip netns exec "$NS_A" ss -lntuH | grep -q ":$1 "; }

bg_a "$TOP/tools/xdpload" daemon --iface "$IF_A" --status "$tmp/status" 2>"$tmp/broker.err"
broker=$BG_PID
wait_for 50 test -f "$tmp/status"

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
before=$(kernel_counter "$NS_A" UdpInDatagrams)
in_b $flows udp-echo-clients "$IP_A" 9001 4 50 >"$tmp/u.out" 2>&1
rc=$?
delta=$(( $(kernel_counter "$NS_A" UdpInDatagrams) - before ))
head -n1 "$tmp/u.out"
check "a program after the abuse: echo intact and accelerated (UdpInDatagrams +$delta)" \
  bash -c "[ $rc -eq 0 -a $delta -lt 5 ]"
kill $prog
wait $prog 2>/dev/null
wait_for 50 bash -c "! grep -q '^program ' $tmp/status"
sleep 0.5
cat "$tmp/status"
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$tmp/status"
check "the broker counted the bad messages" \
  awk '/^counters/ { for (i = 1; i < NF; ++i) if ($i == "bad_messages") exit !($(i + 1) >= 7) }' "$tmp/status"
kill $broker
wait $broker
tail -n 5 "$tmp/broker.err"
finish
