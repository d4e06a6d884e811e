# The broker dies (SIGKILL) under a program that runs through it. Its XDP
# program goes with it, so steering stops: the program's accelerated TCP
# connection ends with ECONNRESET (not a hang), its UDP socket goes on
# working on the kernel path, a socket it opens afterwards is on the kernel
# path, one line says what happened; a restarted broker serves the next
# program, and the surviving program's next socket too.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
echo_peer="python3 $TOP/tests/peers/echo_peer.py"

broker_up
broker=$BROKER_PID
bg_b $echo_peer serve 0.0.0.0 7000 ""
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"

bg_preload_a python3 "$TOP/tests/peers/broker_loss_client.py" "$IP_B" 7000 9001 9003 "$tmp/go" 9004 "$tmp/go2" \
  >"$tmp/prog.out" 2>"$tmp/prog.err"
prog=$BG_PID
wait_for 100 grep -q connected "$tmp/prog.out"
udp_echo_from_b 9001 2 20 "$tmp/u1.out"
check "before: the program's UDP echo is accelerated (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]

kill -9 $broker
wait $broker 2>/dev/null
touch "$tmp/go"
wait_for 100 grep -q '^new socket ready' "$tmp/prog.out"
cat "$tmp/prog.out" "$tmp/prog.err"
check "the accelerated TCP connection ended with ECONNRESET" grep -qx 'tcp: ECONNRESET' "$tmp/prog.out"
check "one line says the broker is gone" one_line_with "$tmp/prog.err" "the xdpload broker of $IF_A is gone"
check "the XDP program went with the broker" bash -c "! xdp_attached $NS_A $IF_A"
for port in 9001 9003; do
  udp_echo_from_b $port 2 20 "$tmp/u$port.out"
  check "after: UDP echo on $port intact, on the kernel path (UdpInDatagrams +$UDP_DELTA)" \
    [ $ECHO_RC -eq 0 -a $UDP_DELTA -ge 40 ]
done
check "the program is still running" kill -0 $prog

# A restarted broker serves the next program.
broker_up
bg_preload_a $echo_peer serve "$IP_A" "" 9002 2>"$tmp/next.err"
wait_for 50 listening 9002
udp_echo_from_b 9002 2 20 "$tmp/u9002.out"
check "a restarted broker accelerates the next program (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]

# The program that lived through the broker's death finds it again for a
# new socket.
sleep 1  # it looks for the broker at most once a second
touch "$tmp/go2"
wait_for 100 grep -q '^third socket ready' "$tmp/prog.out"
udp_echo_from_b 9004 2 20 "$tmp/u9004.out"
cat "$tmp/prog.err"
check "the surviving program's new socket is accelerated again (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]
check "and it said so, once" bash -c "[ \$(grep -c 'broker of $IF_A is back' $tmp/prog.err) -eq 1 ]"
finish
