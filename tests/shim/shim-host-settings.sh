# xdpload --rt, --mlock, --numa, --progress-cpu: seen from inside the
# program (tests/progs/host_settings_probe.py), and the host refusing each
# one: one line, the program runs without it (XDPLOAD_STRICT=1: exits).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"; netns_down' EXIT
probe=$tmp/probe.py
cp "$TOP/tests/progs/host_settings_probe.py" "$probe"
chmod 644 "$probe"
chmod o+rx "$BUILD" 2>/dev/null
# field FILE EXPR: a value of the probe's JSON (EXPR indexes d).
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# Without the settings: what the checks below must tell apart.
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" python3 "$probe" "$IP_A" >"$tmp/plain.json" 2>"$tmp/plain.err"
cat "$tmp/plain.json" "$tmp/plain.err"
check "plain: SCHED_OTHER, no memory policy, nothing locked" \
  [ "$(field "$tmp/plain.json" 'd["main"], d["mempolicy"], d["vmlck_kb"], d["progress"][:2]')" = "[0, 0] [0, 0] 0 [0, 0]" ]

# The program on CPU 0 (--cpu), its progress thread beside it on CPU 1.
in_a "$TOP/tools/xdpload" --iface "$IF_A" --cpu 0 --rt 10 --mlock --numa 0 --progress-cpu 1 -- \
  python3 "$probe" "$IP_A" >"$tmp/set.json" 2>"$tmp/set.err"
rc=$?
cat "$tmp/set.json" "$tmp/set.err"
check "settings: the program runs (status $rc), nothing said" bash -c "[ $rc -eq 0 ] && [ ! -s $tmp/set.err ]"
check "--rt 10: the main thread is SCHED_FIFO 10" [ "$(field "$tmp/set.json" 'd["main"]')" = "[1, 10]" ]
check "--rt 10: a thread it creates too" [ "$(field "$tmp/set.json" 'd["thread"]')" = "[1, 10]" ]
check "--rt 10 --progress-cpu 1: the progress thread SCHED_FIFO 11 on CPU 1 alone" \
  [ "$(field "$tmp/set.json" 'd["progress"]')" = "[1, 11, [1]]" ]
check "--cpu 0: the program's threads on CPU 0" [ "$(field "$tmp/set.json" 'd["main_cpus"]')" = "[0]" ]
check "--mlock: VmLck in /proc/self/status" [ "$(field "$tmp/set.json" 'd["vmlck_kb"] > 0')" = True ]
check "--mlock: in a forked child as well" [ "$(field "$tmp/set.json" 'd["child_vmlck_kb"] > 0')" = True ]
check "--numa 0: the program's memory policy binds to node 0" \
  [ "$(field "$tmp/set.json" 'd["mempolicy"]')" = "[2, 1]" ]
check "--numa 0: the UMEM (64 MiB: 16384 pages) is bound to node 0 and there" \
  [ "$(field "$tmp/set.json" '["bind:0", "N0=16384"] in d["umem"]')" = True ]
# The family arena is a 4 GiB reservation: --mlock must not fill it.
rss_ok=$(field "$tmp/set.json" 'all(int(w[3:]) < 65536 for u in d["umem"] for w in u if w.startswith("N0=") and w != "N0=16384")')
check "--mlock: no other shared mapping filled (the 4 GiB arena stays sparse)" [ "$rss_ok" = True ]
check "--mlock: nor in a child forked once the stack runs ($(field "$tmp/set.json" 'd["child_shared_pages"]') pages)" \
  [ "$(field "$tmp/set.json" '0 <= d["child_shared_pages"] < 65536')" = True ]

# Refused: run as nobody (no CAP_SYS_NICE, RLIMIT_RTPRIO 0, RLIMIT_MEMLOCK
# finite), a node and a CPU this machine lacks.
as_nobody() { ip netns exec "$NS_A" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# The line comes with the first TCP or UDP socket, from the process that
# makes it (here python, not taskset before it), as configuration errors do.
refused() {  # NAME VAR=VALUE TEXT: one line with TEXT, program ran, setting not applied
  local name=$1 setting=$2 text=$3
  as_nobody env LD_PRELOAD="$PRELOAD_LIB" "$setting" taskset -c 0,1 python3 "$probe" - \
    >"$tmp/$name.json" 2>"$tmp/$name.err"
  local rc=$?
  cat "$tmp/$name.err"
  check "$name refused: the program runs (status $rc)" [ $rc -eq 0 ]
  check "$name refused: one line naming the fix" one_line_with "$tmp/$name.err" "$text"
}
refused rt XDPLOAD_RT_PRIO=10 "XDPLOAD_RT_PRIO=10: SCHED_FIFO refused (Operation not permitted): it needs CAP_SYS_NICE or RLIMIT_RTPRIO"
check "rt refused: SCHED_OTHER" [ "$(field "$tmp/rt.json" 'd["main"]')" = "[0, 0]" ]
refused mlock XDPLOAD_MLOCK=1 "XDPLOAD_MLOCK: RLIMIT_MEMLOCK is"
check "mlock refused: nothing locked" [ "$(field "$tmp/mlock.json" 'd["vmlck_kb"]')" = 0 ]
refused numa XDPLOAD_NUMA=9 "XDPLOAD_NUMA=9: no NUMA node 9 with memory"
check "numa refused: no memory policy" [ "$(field "$tmp/numa.json" 'd["mempolicy"]')" = "[0, 0]" ]
refused cpu XDPLOAD_PROGRESS_CPU=7 "XDPLOAD_PROGRESS_CPU=7: no such CPU online (CPUs 0-1)"

# A bad value is a usage error of the wrapper, before anything runs.
"$TOP/tools/xdpload" --rt 100 -- true 2>"$tmp/usage.err"
rc=$?
cat "$tmp/usage.err"
check "--rt 100: usage error (status $rc)" bash -c "[ $rc -eq 2 ] && grep -q 'XDPLOAD_RT_PRIO=100 is out of range (0..99)' $tmp/usage.err"
"$TOP/tools/xdpload" --numa far -- true 2>"$tmp/usage.err"
rc=$?
check "--numa far: usage error (status $rc)" bash -c "[ $rc -eq 2 ] && grep -q 'XDPLOAD_NUMA=far is not auto or a NUMA node' $tmp/usage.err"

# Strict: a refused setting ends the program at start.
as_nobody env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_RT_PRIO=10 XDPLOAD_STRICT=1 python3 -c 'print("ran")' \
  >"$tmp/strict.out" 2>"$tmp/strict.err"
rc=$?
cat "$tmp/strict.err"
check "strict: exits with an error before the program runs (status $rc)" \
  bash -c "[ $rc -ne 0 ] && [ ! -s $tmp/strict.out ]"
check "strict: says so" grep -q "xdpload: fatal: XDPLOAD_RT_PRIO=10: SCHED_FIFO refused.*(XDPLOAD_STRICT=1)" "$tmp/strict.err"
finish
