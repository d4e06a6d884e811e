# The files xdpload creates and reads are safe against other local users.
# 1. An unprivileged user plants, at every name a root process under the
#    preload could use (its directory /dev/shm/xdpload-0, and the old
#    /dev/shm/xdpload.<pid> names for the next 400 pids): a symbolic link to
#    a root-owned directory, a directory of its own full of links, a plain
#    file. The root process follows and opens none of them, says so in one
#    line, and runs; the targets are untouched.
# 2. xdpload-stat (built with AddressSanitizer and UBSan) over crafted
#    segments: truncated, wrong version, huge counts, unterminated names,
#    another pid, no header, owner mismatches: each ignored with a line, the
#    good one shown, no crash.
# 3. After SIGKILL the next start removes the leftover; another user's
#    leftover is never removed.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
shm=/dev/shm/xdpload-0
nobody_shm=/dev/shm/xdpload-65534
cleanup() {
  rm -rf "$tmp" "$shm" "$nobody_shm"
  find /dev/shm -maxdepth 1 -name 'xdpload.*' -delete 2>/dev/null
  [ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
  [ -n "${nobody_sleeper:-}" ] && kill "$nobody_sleeper" 2>/dev/null
  netns_down
}
trap cleanup EXIT
for d in "$shm" "$nobody_shm"; do
  [ -e "$d" ] && { rmdir "$d" 2>/dev/null || skip "$d is in use by a running xdpload process"; }
done
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

victim=$tmp/victim
mkdir -p "$victim"
echo precious >"$victim/file"
chmod 755 "$tmp" "$victim"
victim_state() { (cd "$victim" && ls -A && stat -c "%n %s %Y %U %a" . file && sha256sum file); }
victim_state >"$tmp/victim.before"

# run_root NAME: a root program under the preload, accelerated (a datagram
# to B starts the stack); its stderr in $tmp/NAME.err.
run_root() {
  PRELOAD_A python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'x', ('$IP_B', 9))
print('sent')" >"$tmp/$1.out" 2>"$tmp/$1.err"
}
# plant_links DIR: links DIR/<pid> (DIR/xdpload.<pid> for /dev/shm) to the
# victim file for the next 400 pids, made by nobody in one process so that
# the planting itself does not use up those pids.
plant_links() {
  local prefix=$1/
  [ "$1" = /dev/shm ] && prefix=/dev/shm/xdpload.
  as_nobody python3 -c "
import os, sys
first = int(open('/proc/sys/kernel/ns_last_pid').read()) + 1
for p in range(first, first + 400):
    try:
        os.symlink(sys.argv[1], sys.argv[2] + str(p))
    except FileExistsError:
        pass" "$victim/file" "$prefix"
}
# The old attack: links at the names of the next pids.
plant_links /dev/shm

planted() {  # planted WHAT PATTERN
  plant_links /dev/shm
  run_root planted
  cat "$tmp/planted.err"
  check "$1: the program ran" grep -qx sent "$tmp/planted.out"
  check "$1: one line says statistics are off, and why" one_line_with "$tmp/planted.err" "$2"
  victim_state >"$tmp/victim.after"
  diff "$tmp/victim.before" "$tmp/victim.after"
  check "$1: the target is untouched" cmp -s "$tmp/victim.before" "$tmp/victim.after"
}
as_nobody ln -s "$victim" "$shm"
planted "symlink to a root directory" "statistics off (xdpload-stat will not list this process): $shm is a symbolic link"
check "symlink: left in place" test -L "$shm"
rm -f "$shm"

as_nobody mkdir -m 777 "$shm"
plant_links "$shm"
planted "another user's directory" "$shm belongs to uid 65534, not 0"
rm -rf "$shm"

as_nobody touch "$shm"
planted "a plain file" "$shm is not a directory"
rm -f "$shm"
check "the old names' links were not followed either" \
  bash -c "[ \$(find /dev/shm -maxdepth 1 -name 'xdpload.*' -type l | wc -l) -ge 400 ] && [ \$(cat $victim/file) = precious ]"
find /dev/shm -maxdepth 1 -name 'xdpload.*' -user nobody -delete

# 2. Crafted segments. A live root process and a live process of nobody.
sleep 60 &
sleeper=$!
setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 60 &
nobody_sleeper=$!
mkdir -m 700 "$shm"
craft() { "$BUILD/tests/craft_segment" "$1" "$shm/$2" "${3:-$2}"; }
craft good "$sleeper"
for kind in truncated version huge unterminated otherpid empty; do
  # Each for a pid that is alive: a short-lived sleep of ours each.
  sleep 60 &
  pids+=("$!")
  craft "$kind" "$!"
  kinds+=("$kind")
done
craft good "$nobody_sleeper"            # a root file claiming nobody's process
sleep 60 &
pids+=("$!")
craft good "$!" && chown nobody "$shm/$!"  # nobody's file in root's directory
mkdir -m 700 "$nobody_shm"                 # root's directory under nobody's name
"$BUILD/tests/craft_segment" good "$nobody_shm/$nobody_sleeper" "$nobody_sleeper"
for x in "$BUILD/tests/xdpload-stat-asan" "$BUILD/xdpload-stat"; do
  ASAN_OPTIONS=abort_on_error=1 "$x" >"$tmp/stat.out" 2>"$tmp/stat.err"
  rc=$?
  ASAN_OPTIONS=abort_on_error=1 "$x" --json >"$tmp/stat.json" 2>/dev/null
  jrc=$?
  cat "$tmp/stat.err"
  name=$(basename "$x")
  check "$name: exits 0 (text $rc, json $jrc)" bash -c "[ $rc -eq 0 ] && [ $jrc -eq 0 ]"
  check "$name: the good segment is shown" grep -qE "^PID $sleeper crafted +xa0 queues 0-1 of 4" "$tmp/stat.out"
  check "$name: --json parses" python3 -c "import json; json.load(open('$tmp/stat.json'))"
  i=0
  for kind in "${kinds[@]}"; do
    pid=${pids[$i]}
    i=$((i + 1))
    check "$name: $kind: ignored with a line" grep -q "ignoring $shm/$pid: " "$tmp/stat.err"
    check "$name: $kind: not shown" bash -c "! grep -q '^PID $pid ' $tmp/stat.out"
  done
  check "$name: a segment naming another user's process: ignored" \
    grep -q "ignoring $shm/$nobody_sleeper: its process runs as another user" "$tmp/stat.err"
  check "$name: another user's file in root's directory: ignored" \
    grep -q "ignoring $shm/${pids[$i]}: owned by another user" "$tmp/stat.err"
  check "$name: a directory under another uid's name: ignored" \
    grep -q "ignoring $nobody_shm belongs to uid 0, not 65534" "$tmp/stat.err"
done
kill "${pids[@]}" 2>/dev/null
rm -rf "$shm" "$nobody_shm"

# 3. Leftovers of killed processes.
bg_preload_a python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'x', ('$IP_B', 9))
time.sleep(60)"
victim_pid=$BG_PID
wait_for 50 test -e "$shm/$victim_pid"
kill -9 "$victim_pid"; wait "$victim_pid" 2>/dev/null
check "SIGKILL leaves a segment behind" test -e "$shm/$victim_pid"
as_nobody mkdir -m 700 "$nobody_shm"
as_nobody cp /dev/null "$nobody_shm/$victim_pid"
run_root restart
check "the next start removed the leftover" test ! -e "$shm/$victim_pid"
check "and left nothing of its own" test ! -e "$shm"
"$BUILD/xdpload-stat" >/dev/null 2>&1
check "another user's leftover is never removed (by a start or xdpload-stat)" \
  test -e "$nobody_shm/$victim_pid"
finish
