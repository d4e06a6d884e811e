# Profiles and precedence (defaults < profiles, in order < environment <
# flags; --profile-wins puts profiles above the environment), and what the
# library makes of the result: the start-up banner shows the effective
# options, a profile's XDP mode is the one the port gets, an unknown
# XDPLOAD_* variable is named with its closest valid name, a bad value is one
# line and the kernel path (the transfer still works), XDPLOAD_STRICT=1 makes
# it fatal.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
x="$TOP/tools/xdpload"

# value DRY-RUN-OUTPUT NAME: the value the wrapper would set, and its source.
value() { sed -n "s/^$2=\\([^\t]*\\)\t# \\(.*\\)/\\1 (\\2)/p" "$1"; }

"$x" --dry-run true >"$tmp/d"
check "no --profile: balanced ($(value "$tmp/d" XDPLOAD_PROFILE))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "0 (profile balanced)" ]
"$x" --dry-run --profile latency true >"$tmp/d"
check "latency profile spins ($(value "$tmp/d" XDPLOAD_SPIN_USEC))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "100000 (profile latency)" ]
"$x" --dry-run --profile latency,throughput true >"$tmp/d"
check "later profile wins ($(value "$tmp/d" XDPLOAD_SPIN_USEC))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "50 (profile throughput)" ]
XDPLOAD_SPIN_USEC=5 "$x" --dry-run --profile latency true >"$tmp/d"
check "environment beats profile ($(value "$tmp/d" XDPLOAD_SPIN_USEC))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "5 (environment)" ]
XDPLOAD_SPIN_USEC=5 "$x" --dry-run --profile latency --profile-wins true >"$tmp/d"
check "--profile-wins: profile beats environment ($(value "$tmp/d" XDPLOAD_SPIN_USEC))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "100000 (profile latency)" ]
XDPLOAD_SPIN_USEC=5 "$x" --dry-run --profile latency --profile-wins --spin 7 true >"$tmp/d"
check "flag beats everything ($(value "$tmp/d" XDPLOAD_SPIN_USEC))" \
  [ "$(value "$tmp/d" XDPLOAD_SPIN_USEC)" = "7 (command line)" ]
"$x" -v --profile safe true 2>"$tmp/v"
check "-v prints every option, defaults included" \
  bash -c "[ \$(grep -c '^XDPLOAD_' $tmp/v) -ge $(grep -c '^XDPLOAD_OPTION(' "$TOP/shim/runtime/options.def") ] && grep -q '^XDPLOAD_QUEUES=all.*# default' $tmp/v"
printf '# mine\nXDPLOAD_RING_SIZE=512 # small\n\n' >"$tmp/mine.conf"
"$x" --dry-run --profile "$tmp/mine.conf" true >"$tmp/d"
check "a profile given as a file path" [ "$(value "$tmp/d" XDPLOAD_RING_SIZE)" = "512 (profile $tmp/mine.conf)" ]

# Misuse of profiles: exit 2 before anything runs.
"$x" --profile nosuch true 2>"$tmp/err"; rc=$?
check "unknown profile: 2, and the known ones listed" \
  bash -c "[ $rc -eq 2 ] && grep -q 'latency' $tmp/err && grep -q 'safe' $tmp/err"
printf 'XDPLOAD_SPIN_USEC=1\nspin = 3\n' >"$tmp/broken.conf"
"$x" --profile "$tmp/broken.conf" true 2>"$tmp/err"; rc=$?
check "malformed profile line: 2, naming file and line" \
  bash -c "[ $rc -eq 2 ] && grep -q 'broken.conf:2' $tmp/err"
"$x" --spin abc true 2>"$tmp/err"; rc=$?
check "bad flag value: 2 and the reason" \
  bash -c "[ $rc -eq 2 ] && grep -q 'XDPLOAD_SPIN_USEC=abc is not a whole number' $tmp/err"

# What the library does with it, in namespace A, on a short TCP transfer.
bg_b bash -c "while nc -l -N 7000 >/dev/null </dev/null; do :; done"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"
head -c 300000 /dev/urandom >"$tmp/in"
# transfer ERRFILE WRAPPER-ARGS...: nc from A to B under the wrapper.
transfer() {
  local err=$1
  shift
  in_a env "${ENVS[@]}" "$x" --iface "$IF_A" "$@" -- nc -N "$IP_B" 7000 <"$tmp/in" 2>"$err"
}
ENVS=()
transfer "$tmp/thr" --profile throughput --log 1; rc=$?
cat "$tmp/thr"
check "throughput: transfer ok" [ $rc -eq 0 ]
check "throughput: the banner lists the profile's options" \
  bash -c "grep 'accelerating' $tmp/thr | grep -q 'XDPLOAD_FRAMES=32768' && grep 'accelerating' $tmp/thr | grep -q 'XDPLOAD_SPIN_USEC=50' && grep -q '32768 frames of 4096 bytes' $tmp/thr"
transfer "$tmp/safe" --profile safe --log 1; rc=$?
cat "$tmp/safe"
check "safe: transfer ok" [ $rc -eq 0 ]
check "safe: generic (SKB) XDP in copy mode" grep -q "XDP skb/copy" "$tmp/safe"
check "safe: the kernel's clock" grep -q "clock: the real clock_gettime (XDPLOAD_CLOCK=vdso)" "$tmp/safe"

ENVS=(XDPLOAD_SPINUSEC=10)
transfer "$tmp/typo"; rc=$?
cat "$tmp/typo"
check "unknown variable: transfer ok" [ $rc -eq 0 ]
check "unknown variable: named, with the closest valid one" \
  grep -q "unknown variable XDPLOAD_SPINUSEC ignored; did you mean XDPLOAD_SPIN_USEC?" "$tmp/typo"

ENVS=(XDPLOAD_FRAMES=lots)
before=$(kernel_counter "$NS_A" TcpOutSegs)
transfer "$tmp/bad"; rc=$?
after=$(kernel_counter "$NS_A" TcpOutSegs)
cat "$tmp/bad"
check "bad value: transfer ok" [ $rc -eq 0 ]
check "bad value: one line, with the reason" \
  bash -c "[ \$(wc -l <$tmp/bad) -eq 1 ] && grep -q 'acceleration off, running on the kernel path: XDPLOAD_FRAMES=lots is not a whole number' $tmp/bad"
check "bad value: the kernel carried it (TcpOutSegs +$((after - before)))" [ $((after - before)) -gt 50 ]
ENVS=(XDPLOAD_RING_SIZE=100000)
transfer "$tmp/range"; rc=$?
cat "$tmp/range"
check "out of range: named with the range, transfer ok" \
  bash -c "[ $rc -eq 0 ] && grep -q 'XDPLOAD_RING_SIZE=100000 is out of range (64..32768)' $tmp/range"
ENVS=(XDPLOAD_RING_SIZE=1000)
transfer "$tmp/pow2"; rc=$?
cat "$tmp/pow2"
check "ring size not a power of two: one line naming it, transfer ok" \
  bash -c "[ $rc -eq 0 ] && [ \$(wc -l <$tmp/pow2) -eq 1 ] && grep -q 'XDPLOAD_RING_SIZE=1000 is not a power of two' $tmp/pow2"
ENVS=(XDPLOAD_FRAMES=lots XDPLOAD_STRICT=1)
opens0=$(kernel_counter "$NS_B" TcpPassiveOpens) out0=$(kernel_counter "$NS_A" TcpOutSegs)
transfer "$tmp/strict"; rc=$?
opens1=$(kernel_counter "$NS_B" TcpPassiveOpens) out1=$(kernel_counter "$NS_A" TcpOutSegs)
cat "$tmp/strict"
check "XDPLOAD_STRICT=1 and a bad value: the program exits 1" \
  bash -c "[ $rc -eq 1 ] && grep -q 'fatal: XDPLOAD_FRAMES=lots' $tmp/strict"
# Nothing sent by either path: B's listener saw no connection, A's kernel
# sent no segment.
check "... and sent nothing (B's passive opens +$((opens1 - opens0)), A's TcpOutSegs +$((out1 - out0)))" \
  [ "$((opens1 - opens0))/$((out1 - out0))" = 0/0 ]
finish
