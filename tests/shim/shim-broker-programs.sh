# Several programs on one interface through the broker (`xdpload daemon`).
# Without it the second program on an interface runs on the kernel path;
# with it, two and then four programs (UDP and TCP echo servers, a TCP
# client) run accelerated side by side on the 4-queue veth: every byte
# intact, A's kernel TCP and UDP counters flat, each program's frames on
# several queues (its own AF_XDP socket on every queue), the broker lists
# each program, and once they exit every frame is back with the broker.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
NETNS_QUEUES=4 netns_up
tmp=$(mktemp -d)
# The broker's status file is where xdpload-stat reads it: removed here
# whatever happens to the broker (after it is stopped).
BROKER_DEFAULT_STATUS=1
trap 'netns_down; rm -f "${BROKER_STATUS:-}"; rm -rf "$tmp"' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"


# -- without a broker: the first program owns the interface, the second
# says in one line that a broker is needed, and runs on the kernel path.
bg_preload_a $echo_peer serve "$IP_A" "" 9001 2>"$tmp/alone1.err"
alone1=$BG_PID
wait_for 50 listening 9001
in_b $flows udp-echo-clients "$IP_A" 9001 1 5 >/dev/null 2>&1
PRELOAD_A python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9002))' \
  2>"$tmp/alone2.err"
cat "$tmp/alone2.err"
check "without a broker, a second program says to run xdpload daemon, in one line" \
  one_line_with "$tmp/alone2.err" "run \`xdpload daemon --iface $IF_A\`"
kill $alone1
wait $alone1 2>/dev/null

broker_up  # its status where xdpload-stat finds it
broker=$BROKER_PID
status=$BROKER_STATUS
bg_b $echo_peer serve 0.0.0.0 7000 ""

# -- two programs
bg_preload_a env XDPLOAD_LOG=1 $echo_peer serve "$IP_A" "" 9001 2>"$tmp/udp1.err"
udp1=$BG_PID
bg_preload_a env XDPLOAD_LOG=1 $echo_peer serve "$IP_A" 9011 "" 2>"$tmp/tcp1.err"
tcp1=$BG_PID
wait_for 50 listening 9001
wait_for 50 listening 9011
wait_programs 2
check "the broker serves 2 programs" [ "$(programs_listed)" -eq 2 ]
udp_before=$(kernel_counter "$NS_A" UdpInDatagrams)
tcp_before=$(kernel_counter "$NS_A" TcpInSegs)
in_b $flows udp-echo-clients "$IP_A" 9001 16 50 >"$tmp/c1.out" 2>&1
rc_u=$?
in_b $flows tcp-clients "$IP_A" 9011 32 65536 >"$tmp/c2.out" 2>&1
rc_t=$?
udp_d=$(( $(kernel_counter "$NS_A" UdpInDatagrams) - udp_before ))
tcp_d=$(( $(kernel_counter "$NS_A" TcpInSegs) - tcp_before ))
head -n1 "$tmp/c1.out" "$tmp/c2.out"
check "2 programs: UDP echo intact" bash -c "[ $rc_u -eq 0 ]"
check "2 programs: TCP echo intact" bash -c "[ $rc_t -eq 0 ]"
check "2 programs: A's kernel saw none of it (UdpInDatagrams +$udp_d, TcpInSegs +$tcp_d)" \
  [ "$udp_d" -lt 5 -a "$tcp_d" -lt 20 ]
check "2 programs: the UDP server's frames on $(queues_with_rx $udp1) queues (at least 2)" \
  [ "$(queues_with_rx $udp1)" -ge 2 ]
check "2 programs: the TCP server's frames on $(queues_with_rx $tcp1) queues (at least 2)" \
  [ "$(queues_with_rx $tcp1)" -ge 2 ]

# -- four programs at once: two more servers... and a client in A whose
# connections go out while B's clients come in.
bg_preload_a env XDPLOAD_LOG=1 $echo_peer serve "$IP_A" "" 9002 2>"$tmp/udp2.err"
udp2=$BG_PID
wait_for 50 listening 9002
udp_before=$(kernel_counter "$NS_A" UdpInDatagrams)
tcp_before=$(kernel_counter "$NS_A" TcpInSegs)
bg_preload_a env XDPLOAD_LOG=1 $flows tcp-clients "$IP_B" 7000 32 65536 --hold "$tmp/release" \
  >"$tmp/client.out" 2>"$tmp/client.err"
client=$BG_PID
in_b $flows udp-echo-clients "$IP_A" 9001 16 50 >"$tmp/c3.out" 2>&1 &
c3=$!
in_b $flows udp-echo-clients "$IP_A" 9002 16 50 >"$tmp/c4.out" 2>&1 &
c4=$!
in_b $flows tcp-clients "$IP_A" 9011 32 65536 >"$tmp/c5.out" 2>&1
rc5=$?
wait $c3; rc3=$?
wait $c4; rc4=$?
wait_for 600 grep -q '^done' "$tmp/client.out"
# The status is rewritten five times a second.
wait_programs 4 20
listed=$(programs_listed)
# The four at this moment (the client leaves before the checks below).
grep '^program ' "$status" | tee "$tmp/four"
udp_d=$(( $(kernel_counter "$NS_A" UdpInDatagrams) - udp_before ))
tcp_d=$(( $(kernel_counter "$NS_A" TcpInSegs) - tcp_before ))
client_queues=$(queues_with_rx $client)
udp2_queues=$(queues_with_rx $udp2)
"$BUILD/xdpload-stat" --all --json >"$tmp/stat.json"
head -c 600 "$tmp/stat.json"; echo
check "xdpload-stat shows the broker with its 4 programs" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
b = [b for b in d["brokers"] if b["pid"] == int(sys.argv[2])]
sys.exit(0 if b and len(b[0]["programs"]) == 4 else 1)' "$tmp/stat.json" "$broker"
check "xdpload-stat shows each program running through the broker" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
pids = {int(p) for p in sys.argv[2:]}
modes = {p["pid"]: p["mode"] for p in d["processes"] if p["pid"] in pids}
print(modes)
sys.exit(0 if len(modes) == 4 and all(m.startswith("broker slot") for m in modes.values()) else 1)' \
  "$tmp/stat.json" $udp1 $tcp1 $udp2 $client
touch "$tmp/release"
wait $client
rc_c=$?
head -n1 "$tmp/c3.out" "$tmp/c4.out" "$tmp/c5.out" "$tmp/client.out"
check "4 programs: the broker served 4 at once ($listed)" [ "$listed" -eq 4 ]
check "4 programs: each in a slot of its own" \
  bash -c "[ \$(awk '/^program / {print \$3}' $tmp/four | sort -u | wc -l) -eq 4 ]"
check "4 programs: both UDP echo servers intact" bash -c "[ $rc3 -eq 0 -a $rc4 -eq 0 ]"
check "4 programs: the TCP echo server intact" [ "$rc5" -eq 0 ]
check "4 programs: the accelerated client's 32 connections intact" \
  bash -c "[ $rc_c -eq 0 ] && grep -q '^tcp 32 of 32' $tmp/client.out"
check "4 programs: A's kernel saw none of it (UdpInDatagrams +$udp_d, TcpInSegs +$tcp_d)" \
  [ "$udp_d" -lt 5 -a "$tcp_d" -lt 20 ]
check "4 programs: the client's frames on $client_queues queues, the second UDP server's on $udp2_queues (at least 2 each)" \
  [ "$client_queues" -ge 2 -a "$udp2_queues" -ge 2 ]
check "each program said it runs through the broker" \
  bash -c "grep -l 'broker slot' $tmp/udp1.err $tmp/tcp1.err $tmp/udp2.err $tmp/client.err | wc -l | grep -qx 4"

# -- they exit: the broker takes every frame back.
kill $udp1 $tcp1 $udp2
wait $udp1 $tcp1 $udp2 2>/dev/null
wait_programs 0
sleep 0.5
cat "$status"
check "no program left with the broker" [ "$(programs_listed)" -eq 0 ]
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$status"
check "no frame was given back by a program not holding it" grep -q 'refused_returns 0 ' "$status"
kill $broker
wait $broker
check "the broker stops cleanly on SIGTERM" [ $? -eq 0 ]
check "and removes its status file" [ ! -e "$status" ]
check "its XDP program went with it" bash -c "! xdp_attached $NS_A $IF_A"
cat "$tmp/broker.err" 2>/dev/null
finish
