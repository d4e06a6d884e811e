# tests/lib/common.sh: what every test script shares.
# Exit codes: 0 pass, 1 fail, 77 skip.
set -u
# The Debian programs the tests are written against, not a developer's
# shims (pyenv and the like run extra processes under the preload).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${XL_TEST_BUILD:-$TOP/build}
export BUILD
. "$TOP/tests/lib/netns.sh"
. "$TOP/tests/lib/peers.sh"
. "$TOP/tests/lib/nginx.sh"

_fails=0
fail() { echo "FAIL: $*"; _fails=$((_fails + 1)); }
pass() { echo "ok: $*"; }
skip() { echo "skip: $*"; exit 77; }
# check DESCRIPTION CMD...: runs CMD, records pass or fail.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"; }
# need_tsc_clock: the clock tests measure the clock the library serves from
# the TSC, which it does only where the kernel's clocksource is tsc. A host
# whose kernel keeps another one (a VM booted with clocksource=kvm-clock
# tsc=unstable) while its CPU's TSC is invariant (constant_tsc and
# nonstop_tsc) is told it is tsc through the library's test seam
# XL_TEST_CLOCKSOURCE, and the TSC clock is measured against the kernel's
# own all the same. Without an invariant TSC: skipped (the library serves
# the real clock there: tests/clock/clock-passthrough.sh).
need_tsc_clock() {
  local cs
  cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
  [ "$cs" = tsc ] && return 0
  grep -qw constant_tsc /proc/cpuinfo && grep -qw nonstop_tsc /proc/cpuinfo ||
    skip "the kernel's clocksource is ${cs:-unknown} and the TSC is not invariant: no TSC clock to test"
  echo tsc >"$BUILD/test-clocksource-tsc"
  export XL_TEST_CLOCKSOURCE="$BUILD/test-clocksource-tsc"
  echo "note: the kernel's clocksource is ${cs:-unknown}: the library is told it is tsc (XL_TEST_CLOCKSOURCE), the CPU's TSC being invariant"
}
finish() {
  if [ "$_fails" -gt 0 ]; then
    echo "$_fails check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
# XDP program attached to an interface inside a namespace?
xdp_attached() { ip netns exec "$1" ip link show "$2" | grep -q 'prog/xdp'; }
export -f xdp_attached

# one_line_with FILE TEXT: FILE has exactly one line, and it contains TEXT
# (the "one clear line" xdpload owes for each refusal).
one_line_with() { [ "$(grep -c . "$1")" -eq 1 ] && grep -qF -- "$2" "$1"; }
export -f one_line_with

# load_forked_server URL WANT: loads a forked HTTP server in A from B: one
# request (not counted: a server whose listener is handed to the kernel
# resets what waited on it), then 5 requests whose bodies must equal file
# WANT (how many did: FETCHED_OK), then wrk -t1 -c8 for WRK_SECONDS (2)
# into $tmp/wrk.out (requests made: WRK_REQUESTS).
load_forked_server() {
  in_b curl -sS --max-time 10 -o /dev/null "$1"
  FETCHED_OK=0
  local i
  for i in 1 2 3 4 5; do
    in_b curl -sS --max-time 10 -o "$tmp/got" "$1" && cmp -s "$tmp/got" "$2" &&
      FETCHED_OK=$((FETCHED_OK + 1))
  done
  local secs=${WRK_SECONDS:-2}
  in_b timeout $((secs + 30)) wrk -t1 -c8 -d"${secs}s" "$1" >"$tmp/wrk.out" 2>&1
  WRK_REQUESTS=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
}

# Statistics segments (System V shared memory, shim/stats/stat_shm.h):
# has_segment PID: xdpload-stat lists process PID (its family's segment is
# held by it); segments_created_by PID...: how many segments processes PID...
# created are still there (the kernel removes one with the last process
# that has it attached: 0 once the family is gone, however it ended).
has_segment() { "$BUILD/xdpload-stat" -p "$1" 2>/dev/null | grep -q "^PID $1 "; }
segments_created_by() {
  awk -v pids=" $* " 'NR > 1 && index(pids, " " $5 " ") {n++} END {print n + 0}' /proc/sysvipc/shm
}
# xdpload_segments: how many segments of a statistics segment's size there
# are, whatever their state (one never marked for removal too).
xdpload_segments() {
  awk -v size="$("$BUILD/tests/craft_segment" size)" 'NR > 1 && $4 == size {n++} END {print n + 0}' \
    /proc/sysvipc/shm
}
export -f has_segment segments_created_by xdpload_segments

# Absolute value of a kernel SNMP counter in a namespace (nstat name).
kernel_counter() { ip netns exec "$1" nstat -az "$2" | awk -v n="$2" '$1 == n {print $2}'; }

# The library, preloaded, accelerating the test interface of namespace A.
# XL_PRELOAD replaces it (make test-asan: the ASan runtime, then the
# library built with it).
PRELOAD_LIB=${XL_PRELOAD:-$BUILD/libxdpload.so}
export PRELOAD_LIB
PRELOAD_A() { ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$@"; }
PRELOAD_B() { ip netns exec "$NS_B" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_B" "$@"; }
bg_preload_a() {
  ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$@" &
  BG_PID=$!
}
# kernel_at_least MAJOR MINOR: the running kernel is that version or newer.
kernel_at_least() {
  local v maj min
  v=$(uname -r)
  maj=${v%%.*}
  v=${v#*.}
  min=${v%%[!0-9]*}
  [ "$maj" -gt "$1" ] || { [ "$maj" -eq "$1" ] && [ "$min" -ge "$2" ]; }
}
# xdpload-stat --json of process PID, one counter.
xstat_counter() {
  "$BUILD/xdpload-stat" -p "$1" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["processes"]; print(d[0]["counters"][sys.argv[1]] if d else -1)' "$2"
}
# queues_with_rx PID: how many of the process's receive queues got frames
# (xdpload-stat); the per-queue counts go to stderr.
queues_with_rx() {
  "$BUILD/xdpload-stat" -p "$1" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["processes"][0]
print(" ".join("q%d:%d" % (q["queue"], q["rx_frames"]) for q in p["queues"]), file=sys.stderr)
print(sum(1 for q in p["queues"] if q["rx_frames"] > 0))'
}
# queues_with_tx PID [skip-first]: how many of the family's transmit rings
# sent frames (xdpload-stat), not counting the first queue's with
# skip-first; the per-queue counts go to stderr.
queues_with_tx() {
  "$BUILD/xdpload-stat" -p "$1" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["processes"][0]
print(" ".join("q%d:%d" % (q["queue"], q["tx_frames"]) for q in p["queues"]), file=sys.stderr)
qs = p["queues"][1:] if sys.argv[1] == "skip-first" else p["queues"]
print(sum(1 for q in qs if q["tx_frames"] > 0))' "${2:-}"
}
# Bytes received on the stack, from the exit line of a program run with XDPLOAD_LOG=1.
exit_rx_bytes() { sed -n 's/.*exit: rx [0-9]* frames (\([0-9]*\) bytes).*/\1/p' "$1" | tail -1; }
exit_tx_bytes() { sed -n 's/.*tx [0-9]* frames (\([0-9]*\) bytes).*/\1/p' "$1" | tail -1; }
# tc_wire_b: B's veth made ready for a tc program acting as the wire (loss,
# reordering): a clsact qdisc, and wire-sized packets from B's kernel. TSO
# and GSO off are not enough: TCP builds GSO packets whatever the device
# offers and splits them in software after the tc egress hook; a device
# limit of one segment per packet makes it build wire-sized ones (seen at
# the hook: 2450 of 2706 packets of a 50 MB transfer were larger than the
# MTU without it, none with it). Without it a dropped or held "frame" was
# tens of segments.
tc_wire_b() {
  in_b tc qdisc add dev "$IF_B" clsact
  in_b ethtool -K "$IF_B" tso off gso off >/dev/null
  in_b ip link set dev "$IF_B" gso_max_segs 1
}
# nc_a_to_b FILE PORT GOT ERR: nc under the preload in A (XDPLOAD_LOG=1, its
# stderr to ERR) sends FILE to a kernel nc in B listening on PORT, which
# writes what it got to GOT. Returns A's nc's status.
nc_a_to_b() {
  local file=$1 port=$2 got=$3 err=$4 server rc
  bg_b bash -c "nc -l -N $port >$got"
  server=$BG_PID
  wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$port' | grep -q $port"
  PRELOAD_A env XDPLOAD_LOG=1 nc -N "$IP_B" "$port" <"$file" 2>"$err"
  rc=$?
  wait "$server"
  return $rc
}
# nc_b_to_a FILE PORT GOT ERR: the other way: a kernel nc in B sends FILE to
# nc under the preload in A listening on PORT (GOT, ERR as above).
nc_b_to_a() {
  local file=$1 port=$2 got=$3 err=$4 server
  bg_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
    bash -c "nc -l -N $port >$got 2>$err"
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :$port' | grep -q $port"
  in_b nc -N "$IP_A" "$port" <"$file"
  wait "$server"
}
# From the exit line "exit: tcp R fast recoveries (S segments sent again),
# T timeouts, ..., U undone as needless, ...": R, T and U.
exit_recoveries() { sed -nE 's/.*exit: tcp ([0-9]+) fast recoveries.*/\1/p' "$1" | tail -1; }
exit_timeouts() { sed -nE 's/.*exit: tcp .*, ([0-9]+) timeouts.*/\1/p' "$1" | tail -1; }
exit_undone() { sed -nE 's/.*exit: tcp .*, ([0-9]+) undone as needless.*/\1/p' "$1" | tail -1; }
export -f kernel_counter
