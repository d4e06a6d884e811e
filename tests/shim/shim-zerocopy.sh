# MSG_ZEROCOPY (tests/progs/zerocopy_parity.c): with SO_ZEROCOPY, every send
# with the flag is notified on the error queue (POLLERR; 0 bytes, an
# IP_RECVERR with origin ZEROCOPY and the ids, merged when they follow on),
# on TCP and connected UDP; without SO_ZEROCOPY the flag is ignored. The
# same program on the kernel and under xdpload, against the same kernel
# sinks in B: every line the same, and under xdpload the sockets were on the
# stack. Before, a program waiting for its completions under xdpload waited
# forever (none came).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b socat -u TCP4-LISTEN:9900,reuseaddr,fork OPEN:/dev/null
bg_b socat -u UDP4-RECV:9901 OPEN:/dev/null
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9900' | grep -q 9900"
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :9901' | grep -q 9901"

in_a "$BUILD/tests/zerocopy_parity" "$IP_B" 9900 9901 >"$tmp/kernel" 2>"$tmp/kernel.err"
cat "$tmp/kernel.err"
segs0=$(kernel_counter "$NS_A" TcpOutSegs) dg0=$(kernel_counter "$NS_A" UdpOutDatagrams)
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  "$BUILD/tests/zerocopy_parity" "$IP_B" 9900 9901 >"$tmp/xdpload" 2>"$tmp/xdpload.err"
segs1=$(kernel_counter "$NS_A" TcpOutSegs) dg1=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/xdpload.err"
check "the kernel run notified every send" \
  bash -c "grep -q 'tcp: 128 sends, every id notified: yes, none twice: yes' $tmp/kernel && grep -q 'udp: 64 sends, every id notified: yes' $tmp/kernel"
check "under xdpload the sockets were on the stack (A's kernel sent TCP +$((segs1 - segs0)), UDP +$((dg1 - dg0)))" \
  bash -c "[ $segs1 -eq $segs0 ] && [ $dg1 -eq $dg0 ] && grep -q '2 tcp and 1 udp sockets accelerated, 0 left with the kernel' $tmp/xdpload.err"
if diff -u "$tmp/kernel" "$tmp/xdpload"; then
  pass "identical results ($(wc -l <"$tmp/kernel") lines)"
else
  fail "results differ (diff above: - kernel, + xdpload)"
fi
finish
