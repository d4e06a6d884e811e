# XDPLOAD_CLOCK=tsc-fast (unfenced TSC reads): as accurate as the ordered
# clock, and monotonic within a thread (the across-threads guarantee is the
# ordered mode's).
. "$(dirname "$0")/../lib/common.sh"
need_tsc_clock
secs=${CLOCK_FAST_SECONDS:-10}
out=$(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_LOG=1 XDPLOAD_CLOCK=tsc-fast \
  "$BUILD/tests/clock_check" accuracy "$secs" 2>&1)
rc=$?
echo "$out"
anchors=$(sed -n 's/.*exit: clock served from the TSC, \([0-9]*\) anchors.*/\1/p' <<<"$out")
check "served unfenced" grep -q "tsc-fast: unfenced reads" <<<"$out"
check "the clock was served from the TSC (it re-anchored ${anchors:-0} times)" [ "${anchors:-0}" -gt 0 ]
check "p99.9 within 1 us and max within 10 us" [ $rc -eq 0 ]
out=$(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_CLOCK=tsc-fast \
  "$BUILD/tests/clock_check" monotonic 3 1 2>&1)
rc=$?
echo "$out"
check "monotonic within a thread" [ $rc -eq 0 ]
finish
