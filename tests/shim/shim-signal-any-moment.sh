# A program under the preload ended by SIGTERM or SIGHUP (default action)
# at any moment of its work: it dies by the signal within 5 s, as on the
# kernel path, never hangs. Six shapes (tests/peers/signal_target.py:
# streaming TCP, UDP ping-pong, short connections, a forked pair, fork and
# exec loops, an exit() still delivering to a peer that does not read),
# each signalled at three moments after its first socket: the
# signal lands in a send, a wait, a connect, a close, a fork or an exit.
# Hangs of this kind were found by the same loop with random moments: a
# SIGALRM during exit()'s finishing of a connection left the ending thread
# stopped and the progress thread parked, for good (55d0ec3; the exit
# shape here hangs without it).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
target=$TOP/tests/peers/signal_target.py

bg_b socat -u TCP-LISTEN:7600,fork,reuseaddr OPEN:/dev/null
bg_b bash -c "udp_echo_server 7601"
# Accepts and never reads.
bg_b python3 -c '
import socket, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7602))
l.listen(16)
held = []
while True:
    held.append(l.accept()[0])
'
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7600' | grep -q 7600"
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7601' | grep -q 7601"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7602' | grep -q 7602"

out=$(mktemp)
trap 'rm -f "$out"; netns_down' EXIT
for mode in tcp udp short forked forkloop execloop exit; do
  for delay in 0.02 0.12 0.3; do
    case $delay in 0.12) sig=HUP ;; *) sig=TERM ;; esac
    : >"$out"
    # (ip netns exec itself, not a function: $! must be the program)
    ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
      python3 "$target" "$mode" "$IP_B" >"$out" 2>&1 &
    pid=$!
    wait_for 100 grep -q "^ready" "$out"
    sleep "$delay"
    kill -"$sig" "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    alive=no
    if kill -0 "$pid" 2>/dev/null; then alive=yes; kill -9 "$pid"; fi
    wait "$pid" 2>/dev/null
    rc=$?
    check "$mode, SIG$sig $delay s after its first socket: gone within 5 s (still alive: $alive)" \
      [ "$alive" = no ]
    check "$mode, SIG$sig: died by the signal (status $rc)" [ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
    # A forked child (not signalled) goes on, as on the kernel path: ended
    # here before the next round.
    for p in $(ip netns pids "$NS_A"); do kill -9 "$p" 2>/dev/null; done
    grep -v "^ready" "$out" | head -5
  done
done
finish
