# After kill -9 of the process that owns the port, its XDP program goes
# (bpf_link: the kernel detaches it with the last reference; how long that
# takes is measured in bench/, events section) and the kernel socket on the
# port receives again.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
P=9500
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT

bg_a socat -u UDP4-RECV:$P,reuseaddr OPEN:$tmp/kernel-udp,creat,append
bg_a "$BUILD/tests/xsk_exchange" --iface "$IF_A" --port $P --hold >"$tmp/hold.out" 2>&1
holder=$BG_PID
wait_for 50 grep -q "port open" "$tmp/hold.out" || fail "holder did not start"
check "XDP attached while the holder runs" xdp_attached "$NS_A" "$IF_A"
in_b bash -c "echo before | socat -u - UDP4-SENDTO:$IP_A:$P"
wait_for 30 grep -q "held 1 frames" "$tmp/hold.out"
check "steered while held" [ ! -s "$tmp/kernel-udp" ]

kill -9 "$holder"
wait "$holder" 2>/dev/null
# No deadline of ours: a program that never goes is caught by the runner's.
t0=$(date +%s%N)
while xdp_attached "$NS_A" "$IF_A"; do sleep 0.05; done
pass "XDP program gone after kill -9 ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"

in_b bash -c "echo after | socat -u - UDP4-SENDTO:$IP_A:$P"
wait_for 20 grep -q after "$tmp/kernel-udp"
check "kernel socket on P receives again" grep -q after "$tmp/kernel-udp"
check "and never saw the steered datagram" bash -c "! grep -q before $tmp/kernel-udp"
finish
