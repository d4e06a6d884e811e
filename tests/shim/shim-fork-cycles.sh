# 1,000 fork/exit cycles of a process whose connection is live (tests/progs/
# fork_stress.c): each child echoes on the connection it inherited and ends
# (exit() and _exit() in turn), the parent echoes after each. Nothing may
# leak: what the stack holds when the last process exits is the same after
# 1,000 cycles as after 10 (frames, PCBs, family memory); children that
# leave a connection of their own open have it closed by their end (all
# of them end in TIME_WAIT, none is left established); and no statistics
# segment outlives the family.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b socat TCP4-LISTEN:7600,reuseaddr,fork PIPE
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7600' | grep -q 7600"

run() {  # mode cycles
  PRELOAD_A env XDPLOAD_LOG=1 timeout 300 "$BUILD/tests/fork_stress" "$IP_B" 7600 "$1" "$2" \
    >"$tmp/$1-$2.out" 2>"$tmp/$1-$2.err"
  echo $? >"$tmp/$1-$2.rc"
  cat "$tmp/$1-$2.out"
  grep "exit: stack holds" "$tmp/$1-$2.err"
}
# holds FILE: frames pcbs time_wait listening udp bytes
holds() {
  sed -n 's/.*holds \([0-9]*\) frames, \([0-9]*\) TCP PCBs (\([0-9]*\) in TIME_WAIT), \([0-9]*\) listening, \([0-9]*\) UDP PCBs, \([0-9]*\) bytes.*/\1 \2 \3 \4 \5 \6/p' "$1"
}
before=$(xdpload_segments)
run cycles 10
run cycles 1000
run cycles-own 200
run cycles-quick 1000
# Each child's progress thread holds the lock for 400 ms at its first look,
# longer than the waits for the lock at exit (0.1 s each): the child's end
# must wait for that thread to leave the stack, not die with it inside.
XL_TEST_CHILD_PROGRESS_HOLD_MS=400 run cycles-quick 3
after=$(xdpload_segments)
for r in cycles-10 cycles-1000 cycles-own-200 cycles-quick-1000 cycles-quick-3; do
  check "$r: exits 0 with no failure" bash -c "[ \$(cat $tmp/$r.rc) -eq 0 ] && grep -q 'failures 0' $tmp/$r.out"
done
read -r f10 p10 t10 l10 u10 b10 < <(holds "$tmp/cycles-10.err")
read -r f1k p1k t1k l1k u1k b1k < <(holds "$tmp/cycles-1000.err")
read -r fo po to lo uo bo < <(holds "$tmp/cycles-own-200.err")
check "after 1,000 cycles the stack holds no frame (${f1k:-?})" [ "${f1k:-1}" -eq 0 ]
check "after 1,000 cycles: the same PCBs as after 10 ($p10/$t10 and $p1k/$t1k)" \
  [ -n "$p1k" -a "$p1k/$t1k" = "$p10/$t10" ]
check "after 1,000 cycles: family memory as after 10 (${b10:-?} and ${b1k:-?} bytes, within 4 KiB)" \
  bash -c "[ -n '$b1k' ] && [ \$(( ${b1k:-0} - ${b10:-0} )) -le 4096 ]"
check "200 children leaving a connection open: each closed, in TIME_WAIT ($po PCBs, $to in TIME_WAIT)" \
  [ "${po:-0}" -ge 200 -a "${po:-0}" = "${to:-x}" ]
check "cycles-own: no frame held (${fo:-?})" [ "${fo:-1}" -eq 0 ]
check "no statistics segment left ($before segments before, $after after)" [ "$before" = "$after" ]
# A process that ends must not leave the stack lock to be recovered from a
# dead holder: its own threads are out of the stack when it goes.
for r in cycles-10 cycles-1000 cycles-own-200 cycles-quick-1000 cycles-quick-3; do
  check "$r: no process ended holding the stack lock" \
    bash -c "! grep 'died holding the stack lock' $tmp/$r.err"
done
check "cycles-quick-3: each child left the family itself (none found gone)" \
  bash -c "! grep 'gone without closing its sockets' $tmp/cycles-quick-3.err"
finish
