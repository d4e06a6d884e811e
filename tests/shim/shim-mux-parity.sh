# poll, ppoll, select and epoll semantics, with and without xdpload
# (tests/progs/mux_parity.c): level and edge triggered, EPOLLONESHOT,
# EPOLLRDHUP, HUP/ERR on reset, EPOLLOUT when a full buffer drains or
# TCP_NOTSENT_LOWAT is cleared, a shutdown recorded before a connect, a
# listener readable when a connection waits, one descriptor in two sets, an
# epoll set inside another and inside poll, close() of duplicates, select
# over a pipe and a socket, epoll_ctl errors, EPOLLEXCLUSIVE, timeouts and
# signal masks, UDP. Every line must be the same.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/remote_peer.py" >"$tmp/peer.out" 2>&1
wait_for 50 grep -q ready "$tmp/peer.out"
in_a "$BUILD/tests/mux_parity" "$IP_B" "$IP_A" >"$tmp/kernel" 2>&1
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  "$BUILD/tests/mux_parity" "$IP_B" "$IP_A" >"$tmp/xdpload" 2>"$tmp/xdpload.err"
cat "$tmp/xdpload.err"
check "the kernel run completed" grep -q "udp poll POLLOUT" "$tmp/kernel"
# The TCP_NOTSENT_LOWAT case means something only if the window did shut
# (the socket not writable under the mark) and Linux then reported EPOLLOUT.
check "the kernel run held unsent bytes under TCP_NOTSENT_LOWAT" \
  grep -q "unsent bytes held by the shut window  *1$" "$tmp/kernel"
check "the kernel run reported EPOLLOUT when the mark was cleared" \
  grep -q "once TCP_NOTSENT_LOWAT is cleared  *1 \\[14: OUT \\]" "$tmp/kernel"
check "the kernel run reported the shut reading side while connecting" \
  grep -q "connecting, shut for reading  *1 \\[15: IN RDHUP \\]" "$tmp/kernel"
check "the kernel run reported the edge not collected before the connect" \
  grep -q "epoll ET, connecting, shut for reading  *1 \\[16: IN RDHUP \\]" "$tmp/kernel"
check "the kernel run kept the one shot used before the connect disarmed" \
  grep -q "epoll ONESHOT, connecting, disarmed  *0$" "$tmp/kernel"
check "the xdpload run was accelerated" grep -q "accelerating $IF_A" "$tmp/xdpload.err"
# Every socket the program makes is accelerated (16 TCP, 1 UDP): one
# quietly handed to the kernel would make the two runs match trivially.
check "every socket accelerated (16 tcp and 1 udp sockets accelerated, 0 left with the kernel)" \
  grep -q "16 tcp and 1 udp sockets accelerated, 0 left with the kernel" "$tmp/xdpload.err"
if diff -u "$tmp/kernel" "$tmp/xdpload"; then
  pass "identical results on $(wc -l <"$tmp/kernel") cases"
else
  fail "results differ (diff above: - kernel, + xdpload)"
fi
finish
