# Signal handlers that leave a blocking call on an accelerated socket by
# siglongjmp (tests/progs/jump_sleepers.c), as alarm()-based timeouts do:
# POSIX allows it, recv(), accept() and poll() being async-signal-safe.
# - A thread jumps out of recv(), poll(), epoll_wait() or accept() and
#   ends (or a handler ends it by pthread_exit in recv()), on a stack the program unmaps once it has joined the thread; the
#   socket is used again. Before, the thread stayed in the socket's wait
#   queue and the next wake-up wrote into its unmapped memory (SIGSEGV).
#   Now a handler that runs while the thread sleeps takes it out of its
#   queues first (SleepExit).
# - A thread jumps out of epoll_wait() on the first of two epoll sets that
#   watch a listener with EPOLLEXCLUSIVE; a connection comes: the second
#   set reports it, as on Linux. Before, the jump left the first set
#   counted as having a sleeper, and the connection was its alone. With a
#   handler that returns instead (EINTR) and the thread asleep on the first
#   set again, the connection is the first set's alone (the count neither
#   stuck nor taken down twice; the second set reports nothing, as Linux's).
# - The main thread jumps out of recv() 30 times, a helper thread sending
#   the signal every 2 ms, run again with the call spinning (XDPLOAD_SPIN_USEC
#   of 100 s): the signal often comes while the thread holds the stack's
#   lock. Before, the jump left the lock held and the program hung. Now
#   such a signal is put back, blocked, and its handler runs as the thread
#   lets go of the lock. The same with a one-shot handler (SA_RESETHAND),
#   which the kernel resets to SIG_DFL as it delivers the signal: it is
#   put back too, under our wrapper, and reset as its handler starts.
# - A helper thread queues 300 realtime signals with values to the main
#   thread while it waits in recv(), asleep and spinning: the handler sees
#   each once (none lost by being put back). The order is logged, not
#   checked: a signal put back goes behind one that comes while it is put
#   back (the instances already pending are taken out and put back after
#   it, which keeps the order in most runs).
# The transcripts must be the kernel's.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT  # (netns_down ends what runs in the namespaces)
bg_b bash -c "udp_echo_server 7450"
# (The relay: each connection to 7453 connects back to the program's 7452.)
bg_b socat TCP4-LISTEN:7453,reuseaddr,fork TCP4:$IP_A:7452
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7453' | grep -q 7453"
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7450' | grep -q 7450"
in_a timeout 60 "$BUILD/tests/jump_sleepers" "$IP_B" 7450 7453 7452 >"$tmp/kernel" 2>"$tmp/kernel.err"
krc=$?
PRELOAD_A env XDPLOAD_LOG=1 timeout 60 "$BUILD/tests/jump_sleepers" "$IP_B" 7450 7453 7452 \
  >"$tmp/xdpload" 2>"$tmp/xdpload.err"
xrc=$?
PRELOAD_A env XDPLOAD_LOG=1 XDPLOAD_SPIN_USEC=100000000 timeout 60 \
  "$BUILD/tests/jump_sleepers" "$IP_B" 7450 7453 7452 >"$tmp/spinning" 2>"$tmp/spinning.err"
src=$?
cat "$tmp/kernel" "$tmp/kernel.err"; cat "$tmp/xdpload.err" "$tmp/spinning.err"
diff "$tmp/kernel" "$tmp/xdpload" && echo "(same transcript)"
diff "$tmp/kernel" "$tmp/spinning" && echo "(same transcript, spinning)"
check "the kernel path ends well (status $krc)" [ $krc -eq 0 ]
check "every thread jumped out, and each socket served after (kernel path)" \
  bash -c '[ "$(grep -c ": jumped out$" "$1")" -eq 5 ] && grep -q "^exclusive epoll_wait, then the other set: 1 event(s)$" "$1" && grep -q "^exclusive epoll_wait, then: accepted$" "$1" && grep -q "^exclusive, a handler returned, the other set: 0 event(s)$" "$1" && grep -q "^exclusive, a handler returned: EINTR, then 1 event(s)$" "$1" && [ "$(grep -c ": echo ping$" "$1")" -eq 6 ] && grep -q "^recv, pthread_exit: exited$" "$1" && grep -q "^accept, then: accepted$" "$1" && grep -q "^main thread: 30 jumps out of recv$" "$1" && grep -q "^main thread, one-shot handler: 30 jumps out of recv, then SIGUSR2 is SIG_DFL$" "$1" && grep -q "^realtime signals: 300, each once$" "$1" && grep -q "^all done$" "$1"' _ "$tmp/kernel"
check "under xdpload the program ends well (status $xrc: 124 hung, 139 crashed)" [ $xrc -eq 0 ]
check "the same transcript under xdpload" cmp -s "$tmp/kernel" "$tmp/xdpload"
check "spinning, the program ends well too (status $src)" [ $src -eq 0 ]
check "spinning, the same transcript" cmp -s "$tmp/kernel" "$tmp/spinning"
check "no thread died holding the stack's lock" \
  bash -c '! grep -q "died holding the stack lock" "$1" "$2"' _ "$tmp/xdpload.err" "$tmp/spinning.err"
check "the sockets were accelerated" grep -q "[1-9] tcp and [1-9] udp sockets accelerated" "$tmp/xdpload.err"
finish
