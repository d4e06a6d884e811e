# Bad input to XskPort::open: a clear error to the caller, no crash, nothing
# left attached to the interface; a foreign XDP program is refused, not replaced.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
probe() { in_a "$BUILD/tests/xsk_probe" --iface "$IF_A" "$@"; }
expect() {  # expect WHAT PATTERN PROBE-ARGS...
  local what=$1 pat=$2 out rc
  shift 2
  out=$(probe "$@" 2>&1)
  rc=$?
  echo "  [$what] rc=$rc $out"
  check "$what: fails cleanly with '$pat'" bash -c "[ $rc -eq 1 ] && grep -q -- '$pat' <<<'$out'"
  check "$what: nothing left attached" bash -c "! xdp_attached $NS_A $IF_A"
}

check "a good port opens" bash -c "ip netns exec $NS_A $BUILD/tests/xsk_probe --iface $IF_A | grep -q '^ok'"
out=$(in_a "$BUILD/tests/xsk_probe" --iface no-such-if 2>&1)
echo "  [missing interface] $out"
check "missing interface: ENODEV with its name" grep -q "ENODEV.*no-such-if" <<<"$out"
expect "queue out of range" "EINVAL: queue 5 is out of range" --queue 5
expect "frame count 0" "EINVAL: UMEM frame count 0" --frames 0
expect "absurd frame count" "EINVAL: UMEM frame count 4294967295" --frames 4294967295
expect "frame size" "EINVAL: UMEM frame size 1000" --frame-size 1000
expect "ring size" "EINVAL: ring size 100" --ring 100
expect "frames too few for the rings" "EINVAL: 128 frames cannot feed" --frames 128

# No privilege: an unprivileged user.
chmod o+rx "$BUILD" "$BUILD/tests" 2>/dev/null
out=$(ip netns exec "$NS_A" setpriv --reuid=nobody --regid=nogroup --clear-groups \
  "$BUILD/tests/xsk_probe" --iface "$IF_A" 2>&1)
rc=$?
echo "  [unprivileged] rc=$rc $out"
check "unprivileged: EPERM, says to run as root" bash -c "[ $rc -eq 1 ] && grep -q 'EPERM.*root' <<<'$out'"
check "unprivileged: nothing left attached" bash -c "! xdp_attached $NS_A $IF_A"

# Someone else's XDP program is on the interface: refused, and left in place.
in_a ip link set dev "$IF_A" xdpgeneric obj "$BUILD/tests/xdp_pass.bpf.o" sec xdp
check "setup: the foreign program is attached" xdp_attached "$NS_A" "$IF_A"
out=$(probe 2>&1)
rc=$?
echo "  [foreign program] rc=$rc $out"
check "foreign XDP program: EBUSY, not replaced" bash -c "[ $rc -eq 1 ] && grep -q 'EBUSY.*already has an XDP program' <<<'$out'"
check "foreign XDP program still attached" xdp_attached "$NS_A" "$IF_A"
in_a ip link set dev "$IF_A" xdpgeneric off
finish
