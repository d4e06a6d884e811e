# Threads cancelled (pthread_cancel) while they block in an accelerated
# socket call: recv() on UDP and TCP, accept(), poll(), epoll_wait(), and a
# second sleeper cancelled while another sleeps (tests/progs/
# cancel_sleepers.c), and a send() by a thread whose cancellation was
# asked for before it. Each thread runs on a stack the program unmaps once
# it has joined it. On Linux the thread ends in the call, and the program
# goes on using the sockets. Under xdpload the same: the sleep is where
# the cancellation takes effect, and the thread leaves every wait queue it
# was in as it unwinds (nothing later wakes a waiter that is gone), with
# the stack's lock let go (a cleanup handler: the frames the cancellation
# unwinds run no destructors, the library being built without exceptions);
# a cancellation asked for before a call takes effect at its start, nothing
# sent. Run again with threads that spin in their calls (XDPLOAD_SPIN_USEC
# of 100 s): the spin looks for a cancellation every millisecond. A hundred
# polls cancelled in a row leave the heap as it was (poll() kept its lists
# on the heap, which a cancelled call never freed), and so do a hundred
# polls of 24 entries, past what poll() keeps off the heap.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT  # (netns_down ends what runs in the namespaces)
bg_b bash -c "udp_echo_server 7440"
bg_b socat TCP4-LISTEN:7441,reuseaddr,fork PIPE
# (The relay: each connection to 7443 connects back to the program's 7442.)
bg_b socat TCP4-LISTEN:7443,reuseaddr,fork TCP4:$IP_A:7442
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7441' | grep -q 7441"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7443' | grep -q 7443"
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7440' | grep -q 7440"
in_a timeout 60 "$BUILD/tests/cancel_sleepers" "$IP_B" 7440 7441 7443 7442 >"$tmp/kernel" 2>"$tmp/kernel.err"
krc=$?
PRELOAD_A env XDPLOAD_LOG=1 timeout 60 "$BUILD/tests/cancel_sleepers" "$IP_B" 7440 7441 7443 7442 \
  >"$tmp/xdpload" 2>"$tmp/xdpload.err"
xrc=$?
# The same with threads that spin in their calls instead of sleeping
# (100 s: cancelled at the spin's look, every millisecond, or never).
PRELOAD_A env XDPLOAD_LOG=1 XDPLOAD_SPIN_USEC=100000000 timeout 60 \
  "$BUILD/tests/cancel_sleepers" "$IP_B" 7440 7441 7443 7442 >"$tmp/spinning" 2>"$tmp/spinning.err"
src=$?
cat "$tmp/xdpload" "$tmp/kernel.err" "$tmp/xdpload.err" "$tmp/spinning.err"
diff "$tmp/kernel" "$tmp/spinning" && echo "(same transcript, spinning)"
diff "$tmp/kernel" "$tmp/xdpload" && echo "(same transcript)"
check "the kernel path ends well (status $krc)" [ $krc -eq 0 ]
check "under xdpload the program ends well (status $xrc: 124 hung, 139 crashed)" [ $xrc -eq 0 ]
check "every cancelled thread was cancelled, and each socket served after (kernel path)" \
  bash -c '[ "$(grep -c ": cancelled$" "$1")" -eq 7 ] && [ "$(grep -c ": echo ping$" "$1")" -eq 7 ] && grep -q "^accept, then: accepted$" "$1" && grep -q "^100 polls cancelled: heap steady$" "$1" && grep -q "^100 wide polls cancelled: heap steady$" "$1" && grep -q "^all done$" "$1"' _ "$tmp/kernel"
check "the same transcript under xdpload" cmp -s "$tmp/kernel" "$tmp/xdpload"
check "spinning, the program ends well too (status $src)" [ $src -eq 0 ]
check "spinning, the same transcript" cmp -s "$tmp/kernel" "$tmp/spinning"
check "no thread died holding the stack's lock" \
  bash -c '! grep -q "died holding the stack lock" "$1" "$2"' _ "$tmp/xdpload.err" "$tmp/spinning.err"
check "the sockets were accelerated" grep -q "2 tcp and 2 udp sockets accelerated\|[1-9] tcp and [1-9] udp sockets accelerated" "$tmp/xdpload.err"
finish
