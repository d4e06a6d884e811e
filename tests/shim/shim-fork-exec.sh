# fork and exec under xdpload.
# - A forked child works with kernel descriptors (a pipe) as usual; an
#   accelerated socket inherited from the parent fails with EOPNOTSUPP in the
#   child (one warning line) and can be closed; the parent's connection is
#   unaffected.
# - A child that outlives its parent does not keep the XDP program alive:
#   after kill -9 of the parent it is gone within 1 s.
# - exec keeps the preload: a program exec'd by a shell is accelerated.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b socat TCP4-LISTEN:7100,reuseaddr,fork PIPE
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7100' | grep -q 7100"

PRELOAD_A "$BUILD/tests/fork_child" "$IP_B" 7100 use >"$tmp/use.out" 2>"$tmp/use.err"
rc=$?
cat "$tmp/use.out" "$tmp/use.err"
check "the program exits 0" [ $rc -eq 0 ]
check "the parent's connection works before the fork" grep -q "parent echo before fork: ok" "$tmp/use.out"
check "the child's pipe works" grep -q "parent read from the child's pipe: through a pipe" "$tmp/use.out"
check "the inherited socket fails with EOPNOTSUPP in the child and closes" \
  grep -q "send on the inherited socket -1 EOPNOTSUPP, close ok" "$tmp/use.out"
check "one warning line explains it" [ "$(grep -c 'forked child' "$tmp/use.err")" -eq 1 ]
check "the parent's connection works after the child closed its copy" \
  grep -q "parent echo after the child closed its copy: ok" "$tmp/use.out"

bg_preload_a "$BUILD/tests/fork_child" "$IP_B" 7100 hold >"$tmp/hold.out" 2>&1
parent=$BG_PID
wait_for 50 grep -q ready "$tmp/hold.out"
check "XDP attached while the parent runs" xdp_attached "$NS_A" "$IF_A"
kill -9 "$parent"
wait "$parent" 2>/dev/null
gone=0
for i in $(seq 20); do
  if ! xdp_attached "$NS_A" "$IF_A"; then gone=1; break; fi
  sleep 0.05
done
check "the child is still alive" bash -c "ip netns pids $NS_A | grep -q ."
check "XDP program gone within 1 s of kill -9 of the parent, child alive" [ $gone -eq 1 ]
netns_kill_all "$NS_A"

head -c 1000000 /dev/urandom >"$tmp/in"
bg_b bash -c "nc -l -N 7200 >$tmp/got"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7200' | grep -q 7200"
PRELOAD_A env XDPLOAD_LOG=1 sh -c "exec nc -N $IP_B 7200 <$tmp/in" 2>"$tmp/exec.err"
wait "$server"
cat "$tmp/exec.err"
check "exec'd program was accelerated" grep -q "accelerating $IF_A" "$tmp/exec.err"
check "exec'd program's transfer byte-exact" cmp -s "$tmp/in" "$tmp/got"
finish
