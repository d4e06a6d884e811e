# The statistics xdpload publishes are safe against other local users.
# 1. An unprivileged user plants, at every name in /dev/shm a root process
#    under the preload once used (the directory /dev/shm/xdpload-0, and the
#    old /dev/shm/xdpload.<pid> names for the next 400 pids): a symbolic
#    link to a root-owned directory, a directory of its own full of links,
#    a plain file. The root process uses no name there at all (its segment
#    is System V shared memory, shim/stats/stat_shm.h): it runs with its
#    statistics, says nothing of them, and the targets are untouched.
# 2. xdpload-stat (built with AddressSanitizer and UBSan) over crafted
#    segments: truncated, wrong version, huge counts, unterminated names, no
#    header, a root segment naming nobody's process, nobody's naming root's,
#    nobody's given to root (IPC_SET) naming its own process, one naming a
#    process that does not have it attached: each ignored (with a line where
#    it claims to be a segment), the good one shown, no crash.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
shm=/dev/shm/xdpload-0
crafted=()
pids=()
cleanup() {
  [ ${#crafted[@]} -gt 0 ] && kill "${crafted[@]}" 2>/dev/null
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  rm -rf "$tmp"
  [ -L "$shm" ] || [ -f "$shm" ] && rm -f "$shm"
  [ -d "$shm" ] && [ "$(stat -c %u "$shm")" = 65534 ] && rm -rf "$shm"
  find /dev/shm -maxdepth 1 -name 'xdpload.*' -user nobody -delete 2>/dev/null
  [ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
  [ -n "${nobody_sleeper:-}" ] && kill "$nobody_sleeper" 2>/dev/null
  netns_down
}
trap cleanup EXIT
[ -e "$shm" ] && skip "$shm exists (an older xdpload's, or planted): this test plants its own"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

victim=$tmp/victim
mkdir -p "$victim"
echo precious >"$victim/file"
chmod 755 "$tmp" "$victim"
victim_state() { (cd "$victim" && ls -A && stat -c "%n %s %Y %U %a" . file && sha256sum file); }
victim_state >"$tmp/victim.before"

# run_root NAME: a root program under the preload, accelerated (a datagram
# to B starts the stack), that says how many statistics segments it created
# (/proc/sysvipc/shm); its stderr in $tmp/NAME.err.
run_root() {
  PRELOAD_A python3 -c "
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'x', ('$IP_B', 9))
print('sent')
print(sum(1 for l in open('/proc/sysvipc/shm').readlines()[1:] if int(l.split()[4]) == os.getpid()))" \
    >"$tmp/$1.out" 2>"$tmp/$1.err"
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

planted() {  # planted WHAT
  plant_links /dev/shm
  run_root planted
  cat "$tmp/planted.out" "$tmp/planted.err"
  check "$1: the program ran" grep -qx sent "$tmp/planted.out"
  check "$1: with its statistics segment, and nothing said of it" \
    bash -c "[ \"\$(sed -n 2p $tmp/planted.out)\" = 1 ] && ! grep -q statistics $tmp/planted.err"
  victim_state >"$tmp/victim.after"
  diff "$tmp/victim.before" "$tmp/victim.after"
  check "$1: the target is untouched" cmp -s "$tmp/victim.before" "$tmp/victim.after"
}
as_nobody ln -s "$victim" "$shm"
planted "symlink to a root directory"
check "symlink: left in place" test -L "$shm"
rm -f "$shm"

as_nobody mkdir -m 777 "$shm"
plant_links "$shm"
planted "another user's directory"
rm -rf "$shm"

as_nobody touch "$shm"
planted "a plain file"
rm -f "$shm"
check "the old names' links were not followed either" \
  bash -c "[ \$(find /dev/shm -maxdepth 1 -name 'xdpload.*' -type l | wc -l) -ge 400 ] && [ \$(cat $victim/file) = precious ]"
find /dev/shm -maxdepth 1 -name 'xdpload.*' -user nobody -delete

# 2. Crafted segments. A live root process and a live process of nobody.
sleep 60 &
sleeper=$!
setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 60 &
nobody_sleeper=$!
# craft [nobody] KIND PID|self [GIVE_UID]: a crafted segment, held by a
# craft_segment process (killed at the end: the kernel removes its segment
# then); its id in $CRAFTED_ID, the pid it names in $CRAFTED_PID.
craft() {
  local as=()
  [ "$1" = nobody ] && { as=(setpriv --reuid=nobody --regid=nogroup --clear-groups); shift; }
  : >"$tmp/craft.out"
  ${as[@]+"${as[@]}"} "$BUILD/tests/craft_segment" "$@" >"$tmp/craft.out" &
  crafted+=("$!")
  wait_for 50 grep -q ready "$tmp/craft.out"
  CRAFTED_ID=$(awk '{print $2}' "$tmp/craft.out")
  CRAFTED_PID=$(awk '{print $3}' "$tmp/craft.out")
}
craft good self                          # a segment its own process holds
good=$CRAFTED_PID
kinds=() ids=()
for kind in truncated version huge unterminated empty; do
  craft "$kind" self
  pids+=("$CRAFTED_PID")
  kinds+=("$kind")
  ids+=("$CRAFTED_ID")
done
craft good "$nobody_sleeper"             # a root segment naming nobody's process
root_claims_nobody=$CRAFTED_ID
craft nobody good "$sleeper"             # nobody's segment naming root's process
nobody_claims_root=$CRAFTED_ID
craft nobody good self 0                 # nobody's, given to root, naming its own process
given_to_root=$CRAFTED_ID
craft good "$sleeper"                    # naming a live root process that does not hold it
not_attached=$CRAFTED_ID
for x in "$BUILD/tests/xdpload-stat-asan" "$BUILD/xdpload-stat"; do
  ASAN_OPTIONS=abort_on_error=1 "$x" >"$tmp/stat.out" 2>"$tmp/stat.err"
  rc=$?
  ASAN_OPTIONS=abort_on_error=1 "$x" --json >"$tmp/stat.json" 2>/dev/null
  jrc=$?
  cat "$tmp/stat.err"
  name=$(basename "$x")
  check "$name: exits 0 (text $rc, json $jrc)" bash -c "[ $rc -eq 0 ] && [ $jrc -eq 0 ]"
  check "$name: the good segment is shown" grep -qE "^PID $good crafted +xa0 queues 0-1 of 4" "$tmp/stat.out"
  check "$name: --json parses" python3 -c "import json; json.load(open('$tmp/stat.json'))"
  i=0
  for kind in "${kinds[@]}"; do
    pid=${pids[$i]} id=${ids[$i]}
    i=$((i + 1))
    case $kind in
      truncated | empty) ;;  # (not a segment's size, or no header: another program's, passed over)
      *) check "$name: $kind: ignored with a line" grep -q "ignoring the statistics segment $id " "$tmp/stat.err" ;;
    esac
    check "$name: $kind: not shown" bash -c "! grep -q '^PID $pid ' $tmp/stat.out"
  done
  check "$name: a root segment naming nobody's process: ignored" \
    grep -q "ignoring the statistics segment $root_claims_nobody .*: its process runs as another user" "$tmp/stat.err"
  check "$name: nobody's segment naming root's process: ignored" \
    grep -q "ignoring the statistics segment $nobody_claims_root (System V shared memory of uid 65534): its process runs as another user" "$tmp/stat.err"
  check "$name: nobody's segment given to root: ignored" \
    grep -q "ignoring the statistics segment $given_to_root (System V shared memory of uid 0): made by another user than its owner" "$tmp/stat.err"
  check "$name: a segment naming a process that does not hold it: ignored" \
    grep -q "ignoring the statistics segment $not_attached .*: its process does not have it attached" "$tmp/stat.err"
  check "$name: the good segment shown once, nothing else" \
    bash -c "[ \$(grep -c '^PID $good ' $tmp/stat.out) -eq 1 ] && [ \$(grep -c '^PID ' $tmp/stat.out) -eq 1 ]"
done
kill "${crafted[@]}" 2>/dev/null
crafted=() pids=()
finish
