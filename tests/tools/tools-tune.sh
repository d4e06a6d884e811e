# xdpload tune: every check against a fake system root (XDPLOAD_SYSROOT) of
# a healthy and an unhealthy host, an empty one (unknown, never a crash) and
# one of garbage; --json on this machine; --apply and its undo file.
. "$(dirname "$0")/../lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
x="$TOP/tools/xdpload"
CHECKS="cpus isolcpus nohz_full rcu_nocbs cpu_governor cpu_idle timer_migration nmi_watchdog
sched_rt_runtime tsc transparent_hugepages hugepages swap memlock numa_balancing numa_locality
irq_affinity irqbalance busy_poll rx_queues xdp_driver_mode ring_sizes interrupt_coalescing
kernel_af_xdp"

put() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" >"$1"; }
# make_root DIR healthy|unhealthy: a host with four CPUs, two NUMA nodes and
# a NIC eth9 (driver, IRQs 120-121, queues); the program is to run on CPUs 2-3.
make_root() {
  local r=$1 good=0
  [ "$2" = healthy ] && good=1
  pick() { if [ $good = 1 ]; then echo "$1"; else echo "$2"; fi; }
  put "$r/proc/cmdline" "$(pick 'BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 quiet' 'BOOT_IMAGE=/vmlinuz quiet')"
  local cpu=$r/sys/devices/system/cpu
  put "$cpu/online" 0-3
  put "$cpu/possible" 0-3
  put "$cpu/isolated" "$(pick 2-3 '')"
  put "$cpu/nohz_full" "$(pick 2-3 '(null)')"
  put "$cpu/cpuidle/current_driver" intel_idle
  local n s
  for n in 0 1 2 3; do
    put "$cpu/cpu$n/cpufreq/scaling_governor" "$(pick performance powersave)"
    put "$cpu/cpu$n/cpufreq/scaling_available_governors" "performance powersave"
    for s in "0 POLL 0" "1 C1 1" "2 C6 133"; do
      set -- $s
      put "$cpu/cpu$n/cpuidle/state$1/name" "$2"
      put "$cpu/cpu$n/cpuidle/state$1/latency" "$3"
      put "$cpu/cpu$n/cpuidle/state$1/disable" "$([ "$1" = 2 ] && pick 1 0 || echo 0)"
    done
  done
  put "$r/proc/sys/kernel/timer_migration" "$(pick 0 1)"
  put "$r/proc/sys/kernel/nmi_watchdog" "$(pick 0 1)"
  put "$r/proc/sys/kernel/sched_rt_runtime_us" "$(pick -1 950000)"
  put "$r/proc/sys/kernel/numa_balancing" "$(pick 0 1)"
  put "$r/proc/sys/kernel/osrelease" "$(pick 6.8.0-48-generic 5.4.0-old)"
  put "$r/proc/cpuinfo" "$(printf 'processor\t: 0\nflags\t\t: fpu tsc %s rdtscp\n' "$(pick 'constant_tsc nonstop_tsc' 'tsc_known_freq')")"
  put "$r/sys/devices/system/clocksource/clocksource0/current_clocksource" "$(pick tsc hpet)"
  put "$r/sys/kernel/mm/transparent_hugepage/enabled" "$(pick 'always madvise [never]' '[always] madvise never')"
  put "$r/proc/meminfo" "$(printf 'MemTotal: 16000000 kB\nHugePages_Total: %s\nHugePages_Free: %s\nHugepagesize: 2048 kB\n' "$(pick 64 8)" "$(pick 64 8)")"
  put "$r/proc/sys/vm/nr_hugepages" "$(pick 64 8)"
  put "$r/proc/swaps" "$(printf 'Filename\tType\tSize\tUsed\tPriority\n%s' "$(pick '' '/dev/sda2 partition 8388604 0 -2')")"
  put "$r/proc/self/limits" "$(printf 'Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         %s %s bytes\n' "$(pick unlimited 65536)" "$(pick unlimited 65536)")"
  put "$r/proc/self/status" "$(printf 'Name:\ttune\nCapEff:\t0000000000000000\n')"
  put "$r/sys/devices/system/node/online" 0-1
  put "$r/sys/devices/system/node/node0/cpulist" 0-3
  put "$r/sys/devices/system/node/node1/cpulist" 4-7
  local dev=$r/sys/class/net/eth9/device
  put "$dev/numa_node" "$(pick 0 1)"
  mkdir -p "$dev/msi_irqs"
  touch "$dev/msi_irqs/120" "$dev/msi_irqs/121"
  ln -s "../../../../bus/pci/drivers/$(pick ice e1000)" "$dev/driver"
  put "$r/proc/irq/120/smp_affinity_list" "$(pick 0-1 0-3)"
  put "$r/proc/irq/121/smp_affinity_list" "$(pick 1 3)"
  put "$r/proc/interrupts" "$(printf '           CPU0 CPU1\n120: 5 0 PCI-MSIX eth9-TxRx-0\n121: 0 5 PCI-MSIX eth9-TxRx-1\n')"
  put "$r/proc/1/comm" systemd
  put "$r/proc/77/comm" "$(pick sshd irqbalance)"
  put "$r/proc/sys/net/core/busy_poll" "$(pick 50 0)"
  put "$r/proc/sys/net/core/busy_read" "$(pick 50 0)"
  for n in $(seq 0 $(pick 1 7)); do mkdir -p "$r/sys/class/net/eth9/queues/rx-$n"; done
  put "$r/ethtool/eth9" "$(printf 'driver=%s\nrx_ring=%s\nrx_ring_max=8192\ntx_ring=1024\ntx_ring_max=8192\nrx_usecs=%s\nrx_frames=1\nadaptive_rx=%s\n' \
    "$(pick ice e1000)" "$(pick 1024 256)" "$(pick 0 50)" "$(pick 0 1)")"
}
tune() { XDPLOAD_SYSROOT=$1 "$x" tune --iface eth9 --cpu 2-3 --json "${@:2}"; }
# statuses FILE: "name=status ..." of a --json output, in its order.
statuses() {
  python3 -c 'import json,sys; print(" ".join("%s=%s" % (c["name"], c["status"]) for c in json.load(open(sys.argv[1]))["checks"]))' "$1"
}
export -f statuses
# expect FILE DEFAULT [NAME=STATUS...]: every check has DEFAULT but those named.
expect() {
  local file=$1 def=$2 want="" name
  shift 2
  declare -A except=()
  local kv
  for kv in "$@"; do except[${kv%%=*}]=${kv#*=}; done
  for name in $CHECKS; do want+="$name=${except[$name]:-$def} "; done
  local got
  got=$(statuses "$file")
  [ "$got " = "$want" ] || { echo "want: $want"; echo "got:  $got"; return 1; }
}

make_root "$tmp/good" healthy
tune "$tmp/good" >"$tmp/good.json"
rc=$?
check "healthy host: runs (status $rc)" [ $rc -eq 0 ]
check "healthy host: every check ok" expect "$tmp/good.json" ok

make_root "$tmp/bad" unhealthy
tune "$tmp/bad" >"$tmp/bad.json"
python3 -c 'import json,sys; [print(" ", c["status"], c["name"], "|", c["found"], "|", c["fix"]) for c in json.load(open(sys.argv[1]))["checks"]]' "$tmp/bad.json"
check "unhealthy host: every check but two says so (busy_poll informational, the CPUs online)" \
  expect "$tmp/bad.json" warn cpus=ok busy_poll=ok memlock=fail numa_locality=fail kernel_af_xdp=fail
fix_of() { python3 -c 'import json,sys; print([c["fix"] for c in json.load(open(sys.argv[1]))["checks"] if c["name"] == sys.argv[2]][0])' "$1" "$2"; }
check "fix: boot parameter for isolcpus names the CPUs" bash -c "[[ \"$(fix_of "$tmp/bad.json" isolcpus)\" == 'boot with isolcpus=2-3 '* ]]"
check "fix: the sysctl command" [ "$(fix_of "$tmp/bad.json" timer_migration)" = "sysctl -w kernel.timer_migration=0" ]
check "fix: IRQs moved off CPUs 2-3" bash -c "[[ \"$(fix_of "$tmp/bad.json" irq_affinity)\" == 'echo 0-1 > /proc/irq/120/smp_affinity_list; echo 0-1 > /proc/irq/121/smp_affinity_list' ]]"
check "fix: ethtool for coalescing" [ "$(fix_of "$tmp/bad.json" interrupt_coalescing)" = "ethtool -C eth9 adaptive-rx off rx-usecs 0" ]

XDPLOAD_SYSROOT="$tmp/bad" "$x" tune --iface eth9 --cpu 9 --json >"$tmp/cpu9.json"
check "a CPU that is not online: fail" bash -c "statuses $tmp/cpu9.json | grep -qw cpus=fail"

# Nothing there: every check unknown, and none crashes.
mkdir -p "$tmp/empty"
tune "$tmp/empty" >"$tmp/empty.json"
rc=$?
check "empty root: runs (status $rc)" [ $rc -eq 0 ]
check "empty root: every check unknown" expect "$tmp/empty.json" unknown
# Garbage in every file of the unhealthy host: valid JSON, every check there.
cp -a "$tmp/bad" "$tmp/junk"
find "$tmp/junk" -type f | while read -r f; do head -c 300 /dev/urandom >"$f"; done
tune "$tmp/junk" >"$tmp/junk.json" 2>"$tmp/junk.err"
rc=$?
check "garbage root: runs (status $rc), valid JSON with every check" \
  bash -c "[ $rc -eq 0 ] && [ \"\$(statuses $tmp/junk.json | wc -w)\" -eq $(echo $CHECKS | wc -w) ]"

# This machine: valid JSON, every check present. (Its time is printed, not
# asserted: tests carry no timings.)
start=$(date +%s%N)
timeout 20 "$x" tune --json >"$tmp/here.json"
rc=$?
echo "xdpload tune --json on this machine: $(( ($(date +%s%N) - start) / 1000000 )) ms"
python3 -m json.tool "$tmp/here.json" >/dev/null
check "this machine: valid JSON (status $rc)" bash -c "[ $rc -eq 0 ] && python3 -m json.tool $tmp/here.json >/dev/null"
check "this machine: every check, in order, each with a verdict" \
  bash -c "[ \"\$(statuses $tmp/here.json | sed -E 's/=(ok|warn|fail|unknown)( |$)/\\2/g')\" = \"$(echo $CHECKS)\" ]"
"$x" tune >"$tmp/here.txt"
check "this machine: text output has a line per check and a summary" \
  bash -c "[ \$(grep -cE '^  (ok|warn|fail|unknown) ' $tmp/here.txt) -eq $(echo $CHECKS | wc -w) ] && grep -qE '^[0-9]+ ok, [0-9]+ warn' $tmp/here.txt"

# --apply on a copy of the unhealthy host, then its undo file.
cp -a "$tmp/bad" "$tmp/applied"
cp -a "$tmp/bad" "$tmp/before"
XDPLOAD_SYSROOT="$tmp/applied" "$x" tune --iface eth9 --cpu 2-3 --apply --undo "$tmp/undo.sh" >"$tmp/apply.out"
rc=$?
cat "$tmp/apply.out" | grep -E "^(applied|not applied|[0-9]+ setting)"
a=$tmp/applied
check "--apply: runs (status $rc)" [ $rc -eq 0 ]
check "--apply: the sysctls" bash -c "[ \"\$(cat $a/proc/sys/kernel/timer_migration $a/proc/sys/kernel/nmi_watchdog $a/proc/sys/kernel/numa_balancing | tr '\n' ' ')\" = '0 0 0 ' ]"
check "--apply: the governor of CPUs 2-3, not of 0-1" \
  bash -c "[ \"\$(cat $a/sys/devices/system/cpu/cpu{0,1,2,3}/cpufreq/scaling_governor | tr '\n' ' ')\" = 'powersave powersave performance performance ' ]"
check "--apply: the deep idle state of CPUs 2-3 disabled" \
  bash -c "[ \"\$(cat $a/sys/devices/system/cpu/cpu{1,2,3}/cpuidle/state{1,2}/disable | tr '\n' ' ')\" = '0 0 0 1 0 1 ' ]"
check "--apply: the NIC's IRQs off CPUs 2-3" bash -c "[ \"\$(cat $a/proc/irq/12{0,1}/smp_affinity_list | tr '\n' ' ')\" = '0-1 0-1 ' ]"
check "--apply: THP madvise, hugepages for the UMEM" \
  bash -c "[ \"\$(cat $a/sys/kernel/mm/transparent_hugepage/enabled $a/proc/sys/vm/nr_hugepages | tr '\n' ' ')\" = 'madvise 32 ' ]"
check "--apply: not the settings it must not touch (rt throttling, boot, swap)" \
  bash -c "[ \"\$(cat $a/proc/sys/kernel/sched_rt_runtime_us)\" = 950000 ] && diff -q $a/proc/cmdline $tmp/before/proc/cmdline >/dev/null"
tune "$a" >"$tmp/after.json"
# (Not hugepages: a fake root's /proc/meminfo does not follow nr_hugepages.)
check "--apply: those checks now ok" \
  bash -c "statuses $tmp/after.json | tr ' ' '\n' | grep -xE '(timer_migration|nmi_watchdog|numa_balancing|cpu_governor|cpu_idle|irq_affinity)=ok' | wc -l | grep -qx 6"
sh "$tmp/undo.sh"
# sysfs shows a choice as "always [madvise] never" but is written one word:
# the undo writes the word that was chosen.
thp=$a/sys/kernel/mm/transparent_hugepage/enabled
check "undo: THP back to the choice it was (always)" [ "$(cat "$thp")" = always ]
cp "$tmp/before/sys/kernel/mm/transparent_hugepage/enabled" "$thp"
check "undo: every other file as it was" diff -r --no-dereference "$tmp/before" "$a"
XDPLOAD_SYSROOT="$tmp/applied" "$x" tune --apply --undo "$tmp/undo.sh" >/dev/null 2>"$tmp/exists.err"
rc=$?
check "--apply never overwrites an undo file (status $rc)" bash -c "[ $rc -eq 1 ] && grep -q 'cannot create the undo file' $tmp/exists.err"

# Misuse: exit status 2 and a line.
"$x" tune --cpu 3-1 2>"$tmp/usage.err"; rc=$?
check "--cpu 3-1: usage error (status $rc)" bash -c "[ $rc -eq 2 ] && grep -q 'not a CPU list' $tmp/usage.err"
"$x" tune --frobnicate 2>"$tmp/usage.err"; rc=$?
check "unknown flag: usage error (status $rc)" [ $rc -eq 2 ]
finish
