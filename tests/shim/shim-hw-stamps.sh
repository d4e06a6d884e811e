# Hardware receive stamps (SOF_TIMESTAMPING_RAW_HARDWARE) on accelerated
# sockets, tests/progs/hw_stamps.c: UDP datagrams from B and a TCP echo, read
# with the hardware flags in several combinations (OPT_PKTINFO, reporting
# only, OPT_RX_FILTER), one line per control message.
# - XDPLOAD_HW_STAMPS=1: the steering program's stamping variant runs,
#   bound to A's veth in driver mode. veth gives no stamp for frames a
#   kernel sent, as a NIC that does not stamp: the output is the kernel's,
#   line for line.
# - With the test fake (XL_TEST_FAKE_HW_STAMP: the XDP program writes
#   CLOCK_MONOTONIC's time where the driver gave none) every datagram and echo
#   carries a hardware stamp between its request and recvmsg's return, in
#   order, with SCM_TIMESTAMPING_PKTINFO (A's interface, the frame's length)
#   under OPT_PKTINFO, and none where Linux filters it out; this is what
#   travels from a NIC's stamp to the program.
# - Without XDPLOAD_HW_STAMPS, the fake set: no stamp, and one line says
#   how to get them. In SKB mode: one line says why there are none.
# - Through a broker started with --hw-stamps 1 (and the fake): the same
#   stamps as a program alone, the key of the records coming in the
#   broker's welcome.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/dgram_source.py" 9801 >"$tmp/source.out" 2>&1
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve "$IP_B" 9812 ""
wait_for 50 grep -q ready "$tmp/source.out"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9812' | grep -q 9812"

run() {  # run NAME [env...]: the program on A, stdout NAME, stderr NAME.err
  local name=$1
  shift
  in_a env "$@" "$BUILD/tests/hw_stamps" "$IP_A" "$IP_B" 9801 9812 "$IF_A" >"$tmp/$name" 2>"$tmp/$name.err"
}
under_xdpload=(LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 XDPLOAD_XDP_MODE=driver)

run kernel
run stamping "${under_xdpload[@]}" XDPLOAD_HW_STAMPS=1
run fake "${under_xdpload[@]}" XDPLOAD_HW_STAMPS=1 XL_TEST_FAKE_HW_STAMP=1
run off "${under_xdpload[@]}" XL_TEST_FAKE_HW_STAMP=1
run skb "${under_xdpload[@]}" XDPLOAD_XDP_MODE=skb XDPLOAD_HW_STAMPS=1 XL_TEST_FAKE_HW_STAMP=1
XL_TEST_FAKE_HW_STAMP=1 broker_up --hw-stamps 1 --xdp-mode driver
run brokered "${under_xdpload[@]}"
for r in stamping fake off skb brokered; do echo "--- $r (stderr)"; cat "$tmp/$r.err"; done
echo "--- broker (stderr)"
cat "$tmp/broker.err"

cases=$(grep -c '^[a-z]' "$tmp/kernel")
check "the kernel run read every datagram and echo" \
  [ "$(grep -c '^  datagram\|^  echo' "$tmp/kernel")" -eq 26 ]
check "the kernel gives no hardware stamp on veth" bash -c "! grep -q 'hardware in range' '$tmp/kernel'"
check "the stamping program ran (the start-up line says so, and nothing says otherwise)" \
  bash -c "grep -q 'XDP driver/copy multi-buffer with hardware receive stamps' '$tmp/stamping.err' &&
           ! grep -q 'no hardware receive stamps' '$tmp/stamping.err'"
check "... and its sockets were all on the stack" \
  grep -q "2 tcp and 5 udp sockets accelerated, 0 left with the kernel" "$tmp/stamping.err"
if diff -u "$tmp/kernel" "$tmp/stamping"; then
  pass "with XDPLOAD_HW_STAMPS=1 and a driver that gives none: the kernel's output in $cases cases"
else
  fail "control messages differ from the kernel's (diff above: - kernel, + xdpload)"
fi

# The fake: stamps where Linux would give a NIC's.
f="$tmp/fake"
section() { sed -n "/^$1\$/,/^[a-z]/p" "$f" | sed '$!b;/^[a-z]/d'; }
check "fake: every datagram and echo was read" [ "$(grep -c '^  datagram\|^  echo' "$f")" -eq 26 ]
s=$(section "udp: software and hardware, with OPT_PKTINFO")
check "fake: software and hardware stamps on each of 4 datagrams, both in range" \
  [ "$(grep -c 'software in range, ts\[1\] zero, hardware in range' <<<"$s")" -eq 4 ]
check "fake: SCM_TIMESTAMPING_PKTINFO right before each, naming A's interface and the 142-byte frame" \
  [ "$(grep -A1 'type 58 len 32: interface ours, length the frame' <<<"$s" | grep -c 'type 37 len 64')" -eq 4 ]
s=$(section "udp: hardware only")
check "fake: hardware flags alone: the hardware stamp, no software one, no PKTINFO" \
  [ "$(grep -c 'software none, ts\[1\] zero, hardware in range' <<<"$s")" -eq 4 -a "$(grep -c 'type 58' <<<"$s")" -eq 0 ]
s=$(section "udp: hardware reporting only")
check "fake: RAW_HARDWARE without RX_HARDWARE still reports" \
  [ "$(grep -c 'hardware in range' <<<"$s")" -eq 4 ]
s=$(section "udp: hardware reporting only, filtered")
check "fake: ... but not with OPT_RX_FILTER (no message at all)" \
  [ "$(grep -c 'cmsg' <<<"$s")" -eq 0 ]
s=$(section "udp: software only")
check "fake: a socket that asks for software stamps gets no hardware one" \
  [ "$(grep -c 'software in range, ts\[1\] zero, hardware none' <<<"$s")" -eq 4 ]
s=$(section "tcp: software and hardware")
check "fake: a TCP read carries both stamps of its last segment" \
  [ "$(grep -c 'software in range, ts\[1\] zero, hardware in range' <<<"$s")" -eq 3 ]
s=$(section "tcp: hardware only")
check "fake: ... and the hardware one alone when only that is asked for" \
  [ "$(grep -c 'software none, ts\[1\] zero, hardware in range' <<<"$s")" -eq 3 ]
check "fake: the hardware stamps never go back" grep -qx "hardware stamps out of order: 0" "$f.err"

check "without XDPLOAD_HW_STAMPS: no hardware stamp" bash -c "! grep -q 'hardware in range' '$tmp/off'"
grep "hardware receive stamps" "$tmp/off.err" >"$tmp/off.said"
check "... and one line says how to get them" one_line_with "$tmp/off.said" "XDPLOAD_HW_STAMPS=1"
grep "hardware receive stamps" "$tmp/skb.err" >"$tmp/skb.said"
check "in SKB mode one line says why there are no hardware stamps" \
  one_line_with "$tmp/skb.said" "need XDP in driver mode"
check "... and the output is the kernel's" diff -q "$tmp/kernel" "$tmp/skb"
check "through the broker, which runs the stamping program" \
  grep -q "XDP driver/copy with hardware receive stamps" "$tmp/broker.err"
check "... the program ran there" grep -q "XDP broker slot .* with hardware receive stamps" "$tmp/brokered.err"
if diff -u "$tmp/fake" "$tmp/brokered"; then
  pass "through the broker: the same stamps as a program alone ($(grep -c 'hardware in range' "$f") messages)"
else
  fail "through the broker the stamps differ (diff above: - alone, + brokered)"
fi
finish
