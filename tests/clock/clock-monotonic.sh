# The served CLOCK_MONOTONIC never goes backwards, within a thread and
# across threads comparing through a shared sequence: 4 threads, 10 s.
. "$(dirname "$0")/../lib/common.sh"
need_tsc_clock
secs=${CLOCK_MONOTONIC_SECONDS:-10}
out=$(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_LOG=1 "$BUILD/tests/clock_check" monotonic "$secs" 4 2>&1)
rc=$?
echo "$out"
anchors=$(sed -n 's/.*exit: clock served from the TSC, \([0-9]*\) anchors.*/\1/p' <<<"$out")
check "the clock was served from the TSC (it re-anchored ${anchors:-0} times)" [ "${anchors:-0}" -gt 0 ]
check "never backwards over $secs s, 4 threads" [ $rc -eq 0 ]
finish
