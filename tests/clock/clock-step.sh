# A +2 s step of CLOCK_REALTIME (clock_settime, stepped back at once) shows in
# the served REALTIME; the served MONOTONIC does not move. (How soon it shows
# is measured in bench/, events section.)
. "$(dirname "$0")/../lib/common.sh"
need_tsc_clock
need_root
out=$(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_LOG=1 "$BUILD/tests/clock_check" step 2>&1)
rc=$?
echo "$out"
[ $rc -eq 77 ] && skip "cannot set the clock here"
anchors=$(sed -n 's/.*exit: clock served from the TSC, \([0-9]*\) anchors.*/\1/p' <<<"$out")
check "the clock was served from the TSC (it re-anchored ${anchors:-0} times)" [ "${anchors:-0}" -gt 0 ]
check "the served REALTIME followed the step, MONOTONIC unaffected" [ $rc -eq 0 ]
finish
