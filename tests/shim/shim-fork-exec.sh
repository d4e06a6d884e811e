# fork and exec under xdpload.
# - A forked child works with kernel descriptors (a pipe) as usual, and with
#   the accelerated socket it inherited (the stack is the family's: it used
#   to fail with EOPNOTSUPP), then closes its copy; the parent's connection
#   goes on working.
# - A child that outlives its parent keeps the stack (it may use it) and
#   the XDP program; once the child is killed too the program is gone
#   within 1 s.
# - exec keeps the preload: a program exec'd by a shell is accelerated.
# - vfork: a child that calls exit() runs the library's exit handlers in
#   the parent's memory, which must leave the parent's connections alone;
#   Python's subprocess starts its children with vfork, and the
#   child closes every descriptor (close_range) and dup2()s over 0-2 in the
#   parent's memory before it execs; the parent's accelerated connection
#   (here at descriptor 0 too) must survive that: it echoes afterwards, on
#   the stack.
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
check "the inherited socket echoes in the child, then closes" \
  grep -q "echo on the inherited socket ok , close ok" "$tmp/use.out"
check "no line about the child" [ "$(grep -c 'forked child' "$tmp/use.err")" -eq 0 ]
check "the parent's connection works after the child closed its copy" \
  grep -q "parent echo after the child closed its copy: ok" "$tmp/use.out"

bg_preload_a "$BUILD/tests/fork_child" "$IP_B" 7100 hold >"$tmp/hold.out" 2>&1
parent=$BG_PID
wait_for 50 grep -q ready "$tmp/hold.out"
check "XDP attached while the parent runs" xdp_attached "$NS_A" "$IF_A"
child=$(pgrep -P "$parent")
kill -9 "$parent"
wait "$parent" 2>/dev/null
sleep 0.5
check "the child is still alive, and with it the XDP program" xdp_attached "$NS_A" "$IF_A"
kill -9 $child
gone=0
for i in $(seq 20); do
  if ! xdp_attached "$NS_A" "$IF_A"; then gone=1; break; fi
  sleep 0.05
done
check "XDP program gone within 1 s of kill -9 of the child" [ $gone -eq 1 ]
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

PRELOAD_A "$BUILD/tests/fork_child" "$IP_B" 7100 vfork-exit >"$tmp/vexit.out" 2>"$tmp/vexit.err"
cat "$tmp/vexit.out" "$tmp/vexit.err"
check "a vfork child calling exit() leaves the parent's connection working" \
  grep -q "parent echo after a vfork child's exit(): ok" "$tmp/vexit.out"

cat >"$tmp/spawn.py" <<'PY'
import os, socket, subprocess, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
os.dup2(s.fileno(), 0)  # the child dup2()s its own stdin over this one
def echo(tag):
    s.sendall(tag.encode())
    got = b""
    while len(got) < len(tag):
        got += s.recv(100)
    return got.decode()
print("before:", echo("one"), flush=True)
for _ in range(3):
    subprocess.run(["true"], stdin=subprocess.DEVNULL, check=True)
print("after:", echo("two"), flush=True)
print("stdin copy:", os.write(0, b"three"), s.recv(100).decode(), flush=True)
PY
PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/spawn.py" "$IP_B" 7100 >"$tmp/spawn.out" 2>"$tmp/spawn.err"
rc=$?
cat "$tmp/spawn.out" "$tmp/spawn.err"
check "the program running subprocesses exits 0" [ $rc -eq 0 ]
check "its connection echoes after three vfork children closed their copies" \
  grep -qx "after: two" "$tmp/spawn.out"
check "its dup at descriptor 0 is still the connection" grep -qx "stdin copy: 5 three" "$tmp/spawn.out"
check "the connection stayed on the stack" [ "$(exit_rx_bytes "$tmp/spawn.err")" -gt 0 ]
finish
