# Programs killed with SIGKILL do not disturb the others. Two programs under
# the preload serve UDP and TCP echo to a steady client in B, through the
# broker. Fifty times, a third program starts, is served (a UDP echo port
# with traffic pouring in, a TCP connection of its own out to B), and is
# killed with SIGKILL mid-traffic. Each time the broker takes back its
# ports and frames within a second; the steady client sees no error; the
# longest wait for one echo is reported (the issue's target is 100 ms: on
# this 2-core VM it is printed, and only a stall of a second fails the
# test, since timing is not asserted here). The survivors hold no more
# frames than they did (a dead program's frames must not drift to them),
# and at the end every frame of the UMEM is back with the broker.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
echo_peer="python3 $TOP/tests/peers/echo_peer.py"
rounds=${BROKER_KILL_ROUNDS:-50}

broker_up
broker=$BROKER_PID
bg_b $echo_peer serve 0.0.0.0 7000 ""
bg_preload_a $echo_peer serve "$IP_A" "" 9001 2>"$tmp/udp.err"
udp=$BG_PID
bg_preload_a $echo_peer serve "$IP_A" 9011 "" 2>"$tmp/tcp.err"
tcp=$BG_PID
wait_for 50 listening 9001
wait_for 50 listening 9011
wait_programs 2

in_b python3 "$TOP/tests/peers/steady_echo.py" "$IP_A" 9001 9011 "$tmp/stop" >"$tmp/steady.out" 2>&1 &
steady=$!
# A flood of datagrams to the victims' port, so that each dies holding frames.
in_b python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while not os.path.exists(sys.argv[2]):
    for _ in range(5):
        s.sendto(b"v" * 200, (sys.argv[1], 9050))
    time.sleep(0.001)
' "$IP_A" "$tmp/stop" &
flood=$!

slow=0 served=0
for round in $(seq "$rounds"); do
  ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
    $echo_peer serve "$IP_A" "" 9050 2>>"$tmp/victim.err" &
  victim=$!
  wait_for 50 listening 9050
  # Its own TCP connection out, data flowing when it dies.
  ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
    python3 "$TOP/tests/peers/echo_peer.py" tcp "$IP_B" 7000 200000000 >/dev/null 2>&1 &
  victim2=$!
  wait_programs 4 && served=$((served + 1))
  sleep 0.05
  kill -9 $victim $victim2
  wait $victim $victim2 2>/dev/null
  # Within a second (the status is rewritten every 0.2 s): ports and frames back.
  wait_programs 2 12 || slow=$((slow + 1))
done
touch "$tmp/stop"
"$BUILD/xdpload-stat" -p $udp | head -12
wait $steady
rc=$?
wait $flood
cat "$tmp/steady.out"
gap_u=$(sed -n 's/^udp .* max gap \([0-9.]*\) ms/\1/p' "$tmp/steady.out")
gap_t=$(sed -n 's/^tcp .* max gap \([0-9.]*\) ms/\1/p' "$tmp/steady.out")
check "all $rounds victims were served by the broker ($served)" [ "$served" -eq "$rounds" ]
check "the broker let go of every killed program within a second ($slow slower)" [ "$slow" -eq 0 ]
check "the steady client saw no error while programs died" [ "$rc" -eq 0 ]
check "its longest wait for an echo: udp ${gap_u} ms, tcp ${gap_t} ms (under a second)" \
  bash -c "awk 'BEGIN { exit !($gap_u < 1000 && $gap_t < 1000) }'"
check "the survivors are still listed" [ "$(programs_listed)" -eq 2 ]
# Frames of the dead must not drift to the living (each survivor keeps
# about 512 free frames plus what is in flight; its quota is 4096).
grep '^program ' "$BROKER_STATUS"
check "the survivors hold no more frames than before the deaths" \
  awk '/^program / { for (i = 1; i < NF; ++i) if ($i == "held" && $(i + 1) > 1024) bad = 1 } END { exit bad }' "$BROKER_STATUS"
kill $udp $tcp
wait $udp $tcp 2>/dev/null
wait_programs 0
sleep 0.5
cat "$BROKER_STATUS"
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$BROKER_STATUS"
check "the broker's frames add up (free + fill = total)" \
  awk '/^frames/ { exit !($5 + $7 == $3) }' "$BROKER_STATUS"
check "the broker took frames back from the killed programs" \
  awk '/^counters/ { for (i = 1; i < NF; ++i) if ($i == "frames_reclaimed") exit !($(i + 1) > 0) }' "$BROKER_STATUS"
kill $broker
wait $broker
grep -c "took back" "$tmp/broker.err" | sed 's/^/programs whose frames were taken back: /'
tail -n 30 "$tmp/broker.err"
tail -n 10 "$tmp/victim.err"
finish
