# Accuracy: the served REALTIME and MONOTONIC against the real vDSO clock for
# 60 s: within 1 us at the 99.9th percentile, never beyond 10 us.
. "$(dirname "$0")/../lib/common.sh"
need_tsc_clock
secs=${CLOCK_ACCURACY_SECONDS:-60}
out=$(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_LOG=1 "$BUILD/tests/clock_check" accuracy "$secs" 2>&1)
rc=$?
echo "$out"
anchors=$(sed -n 's/.*exit: clock served from the TSC, \([0-9]*\) anchors.*/\1/p' <<<"$out")
check "the clock was served from the TSC (it re-anchored ${anchors:-0} times)" [ "${anchors:-0}" -gt 0 ]
check "p99.9 within 1 us and max within 10 us, REALTIME and MONOTONIC" [ $rc -eq 0 ]
finish
