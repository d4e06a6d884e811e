# A descriptor closed by one thread while another waits on it, then new
# sockets made at once (tests/progs/close_race.c): a TCP recv, a UDP recv,
# a poll, and a TCP recvmsg(MSG_WAITALL) that has part of its data, each
# waiting while the main thread closes the descriptor and
# runs 20 echo exchanges on fresh sockets. Under xdpload the waits spin
# (XDPLOAD_SPIN_USEC: 5 s, so the close comes mid-spin, when the stack's
# lock is free between two turns) and again with no spin (asleep), with
# freed family memory scribbled over (XL_TEST_SCRIBBLE_FREED): a wait that
# went on reading a freed socket would read garbage (before the fix: a
# segmentation fault in the spinning TCP recv). Each wait must end (EBADF
# for a recv; for the poll an event: POLLNVAL, or what one of the new
# sockets shows once it has taken the number), every exchange be intact,
# the program exit 0.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve "$IP_B" 9821 9822
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9821' | grep -q 9821"

for spin in 5000000 0; do
  in_a timeout 60 env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
    XDPLOAD_SPIN_USEC=$spin XL_TEST_SCRIBBLE_FREED=1 \
    "$BUILD/tests/close_race" "$IP_B" 9821 9822 >"$tmp/out.$spin" 2>"$tmp/err.$spin"
  rc=$?
  cat "$tmp/out.$spin" "$tmp/err.$spin"
  check "spin $spin us: the program ran to its end (exit $rc)" \
    bash -c "[ $rc -eq 0 ] && grep -qx done $tmp/out.$spin"
  check "spin $spin us: each wait ended (EBADF, a poll event) and every exchange was intact" \
    bash -c "grep -q '^tcp recv: the wait ended (-1 EBADF revents 0x0); 20 of 20' $tmp/out.$spin &&
             grep -q '^udp recv: the wait ended (-1 EBADF revents 0x0); 20 of 20' $tmp/out.$spin &&
             grep -Eq '^tcp poll: the wait ended \(1  revents 0x[0-9a-f]+\); 20 of 20' $tmp/out.$spin &&
             grep -q '^tcp recvmsg waitall: the wait ended (10  revents 0x0); 20 of 20' $tmp/out.$spin"
  check "spin $spin us: a read that returns part of its data after the close reads nothing freed (no control messages)" \
    grep -qx "tcp recvmsg waitall: 0 bytes of control messages" "$tmp/out.$spin"
  check "spin $spin us: the sockets were on the stack" \
    grep -q "63 tcp and 21 udp sockets accelerated, 0 left with the kernel" "$tmp/err.$spin"
done
finish
