# fork and exec under xdpload.
# - A forked child works with kernel descriptors (a pipe) as usual, and with
#   the accelerated socket it inherited (the stack is the family's: it used
#   to fail with EOPNOTSUPP), then closes its copy; the parent's connection
#   goes on working.
# - A datagram a child sent on an inherited UDP socket just before SIGKILL
#   reaches the peer (and its echo the parent), as on the kernel path, even
#   when the child dies before its kick (a test hook): the frame waits on
#   the child's own tx ring until the parent's stack finds it waiting and
#   sends it. The parent spins for the echo: a sleeper's poll() of the
#   AF_XDP sockets would have the kernel send it anyway.
# - A child that outlives its parent keeps the stack (it may use it) and
#   the XDP program; once the child is killed too the program goes (the
#   time it takes is printed, not asserted).
# - exec keeps the preload: a program exec'd by a shell is accelerated.
# - vfork: a child that calls exit() runs the library's exit handlers in
#   the parent's memory, which must leave the parent's connections alone;
#   Python's subprocess starts its children with vfork, and the
#   child closes every descriptor (close_range) and dup2()s over 0-2 in the
#   parent's memory before it execs; the parent's accelerated connection
#   (here at descriptor 0 too) must survive that: it echoes afterwards, on
#   the stack.
# - A parent that ends (without closing its connection) just after its
#   child exec'd: the parent is the family's last process, and B gets the
#   connection's end at once, as on the kernel path. (An exec'd child is
#   told from a live member by its maps, looked at on leaving only for a
#   child that said it was exec'ing.)
# - An exec that fails (no such file) gives the program its error, and the
#   library's progress thread, kept out of the stack during the attempt,
#   goes back to sleeping: the process uses no more CPU time than it did
#   before the attempt.
# "On the stack" is shown by A's kernel having received no TCP segment
# during the run (a connection moved to the kernel, or an XDP program gone,
# would make it answer B's segments) and by the exit line.
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

# A datagram a child sent just before it was killed reaches the peer, as
# on the kernel path. Each process of the family transmits on its own tx
# ring; the child here dies in the kick that would send it, its frame left
# on its ring, which the parent's stack finds waiting and sends.
bg_b python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7101))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)'
udp_echo=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7101' | grep -q 7101"
in_a "$BUILD/tests/fork_child" "$IP_B" 7100 udp-kick 7101 >"$tmp/kick-kernel.out" 2>&1
udp0=$(kernel_counter "$NS_A" UdpInDatagrams)
PRELOAD_A env XDPLOAD_LOG=1 XL_TEST_CHILD_DIES_IN_KICK=1 "$BUILD/tests/fork_child" "$IP_B" 7100 udp-kick 7101 \
  >"$tmp/kick.out" 2>"$tmp/kick.err"
udp1=$(kernel_counter "$NS_A" UdpInDatagrams)
cat "$tmp/kick-kernel.out" "$tmp/kick.out" "$tmp/kick.err"
check "kernel path: the killed child's datagram is echoed" \
  grep -q "the dead child's datagram echoed: ok" "$tmp/kick-kernel.out"
check "under xdpload: the same output as on the kernel path" diff "$tmp/kick-kernel.out" "$tmp/kick.out"
check "... the child died by SIGKILL" grep -q "child killed: yes" "$tmp/kick.out"
# (A sleeper's poll() of the AF_XDP sockets would have sent it too: the
# count says the stack found it waiting.)
check "... sent by the parent's stack, found waiting on the child's ring" \
  grep -q "exit: [1-9][0-9]* kicks of a transmit ring whose frames had waited" "$tmp/kick.err"
check "... on the stack (A's kernel UdpInDatagrams +$((udp1 - udp0)))" [ "$udp1" -eq "$udp0" ]
kill "$udp_echo" 2>/dev/null
wait "$udp_echo" 2>/dev/null

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
# No deadline of ours: a program that never goes is caught by the runner's.
t0=$(date +%s%N)
while xdp_attached "$NS_A" "$IF_A"; do sleep 0.05; done
pass "XDP program gone $(( ($(date +%s%N) - t0) / 1000000 )) ms after kill -9 of the child"
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

segs0=$(kernel_counter "$NS_A" TcpInSegs)
PRELOAD_A env XDPLOAD_LOG=1 "$BUILD/tests/fork_child" "$IP_B" 7100 vfork-exit >"$tmp/vexit.out" 2>"$tmp/vexit.err"
segs1=$(kernel_counter "$NS_A" TcpInSegs)
cat "$tmp/vexit.out" "$tmp/vexit.err"
check "a vfork child calling exit() leaves the parent's connection working" \
  grep -q "parent echo after a vfork child's exit(): ok" "$tmp/vexit.out"
# (No exit line to count the socket by: the child's exit() ran the parent's
# exit handlers, xdpload's among them, and glibc marks them done in the
# memory the two share, so the parent's own exit runs none. The parent
# never closes its connection, so B sends nothing after it is gone.)
check "... on the stack, before and after (A's kernel TcpInSegs +$((segs1 - segs0)))" \
  [ "$segs1" -eq "$segs0" ]

# That connection was never closed (its exit handlers did not run), and
# lwIP had not yet acknowledged B's last echo: B sends it again, to A's
# kernel now, which resets it. Counted below if it came late: wait for it.
wait_for 50 bash -c "! ip netns exec $NS_B ss -tnH state established '( sport = :7100 )' | grep -q ."

# A's kernel TCP segments are read by the program itself, before it ends:
# once it has, B's end of the connection closes and A's kernel answers that.
cat >"$tmp/spawn.py" <<'PY'
import os, socket, subprocess, sys
def kernel_in_segs():
    rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("InSegs")])
segs0 = kernel_in_segs()
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
print("kernel TcpInSegs +%d" % (kernel_in_segs() - segs0), flush=True)
PY
PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/spawn.py" "$IP_B" 7100 >"$tmp/spawn.out" 2>"$tmp/spawn.err"
rc=$?
cat "$tmp/spawn.out" "$tmp/spawn.err"
check "the program running subprocesses exits 0" [ $rc -eq 0 ]
check "its connection echoes after three vfork children closed their copies" \
  grep -qx "after: two" "$tmp/spawn.out"
check "its dup at descriptor 0 is still the connection" grep -qx "stdin copy: 5 three" "$tmp/spawn.out"
check "the connection stayed on the stack (A's kernel: no segment; the socket counted)" \
  bash -c "grep -qx 'kernel TcpInSegs +0' $tmp/spawn.out && grep -q '1 tcp and 0 udp sockets accelerated, 0 left with the kernel' $tmp/spawn.err"
# A failed exec.
cat >"$tmp/exec_fail.py" <<PY
import os, socket, time
c = socket.create_connection(("$IP_B", 7100))
c.sendall(b"one\n")
print("before:", c.recv(10).decode().strip())
try:
    os.execv("/nonexistent/program", ["program"])
except OSError as e:
    print("exec failed:", e.errno)
t0 = sum(os.times()[:2])
time.sleep(1)
print("cpu seconds asleep: %.2f" % (sum(os.times()[:2]) - t0))
c.sendall(b"two\n")
print("after:", c.recv(10).decode().strip())
PY
PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/exec_fail.py" >"$tmp/exec_fail.out" 2>"$tmp/exec_fail.err"
cat "$tmp/exec_fail.out" "$tmp/exec_fail.err"
check "a failed exec: ENOENT, and the connection echoes before and after" \
  bash -c "grep -qx 'exec failed: 2' $tmp/exec_fail.out && grep -qx 'before: one' $tmp/exec_fail.out && grep -qx 'after: two' $tmp/exec_fail.out"
cpu=$(sed -n 's/^cpu seconds asleep: //p' "$tmp/exec_fail.out")
check "...then a second asleep takes under 0.3 s of CPU (${cpu:-?})" \
  awk -v c="${cpu:-9}" 'BEGIN {exit !(c < 0.3)}'

# The parent ends right after its child exec'd.
cat >"$tmp/exec_exit.py" <<PY
import os, socket, time
c = socket.create_connection(("$IP_B", 7101))
c.sendall(b"x" * 1000)
pid = os.fork()
if pid == 0:
    os.execv("/bin/sleep", ["sleep", "4"])
for _ in range(2000):  # until the child runs the new image
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        if f.read().startswith(b"sleep"):
            break
    time.sleep(0.001)
os._exit(0)
PY
cat >"$tmp/eof_reader.py" <<PY
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("$IP_B", 7101))
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
got = 0
while got < 1000:
    got += len(c.recv(65536))
t = time.monotonic()
c.settimeout(3)
try:
    while c.recv(65536):
        pass
    print("bytes %d, end after %.2f s" % (got, time.monotonic() - t))
except socket.timeout:
    print("bytes %d, no end within 3 s" % got)
PY
for mode in kernel xdpload; do
  in_b python3 "$tmp/eof_reader.py" >"$tmp/eof-$mode.out" 2>&1 &
  reader=$!
  wait_for 50 grep -q listening "$tmp/eof-$mode.out"
  if [ $mode = kernel ]; then in_a python3 "$tmp/exec_exit.py"
  else PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/exec_exit.py" 2>"$tmp/exec_exit.err"; fi
  wait $reader
  cat "$tmp/eof-$mode.out"
done
cat "$tmp/exec_exit.err"
check "the kernel path: B gets the end at once" grep -q "bytes 1000, end after 0\.[0-4]" "$tmp/eof-kernel.out"
check "a parent ending just after its child's exec: B gets the end at once" \
  grep -q "bytes 1000, end after 0\.[0-4]" "$tmp/eof-xdpload.out"
check "...from the stack (the connection accelerated)" grep -q "1 tcp and 0 udp sockets accelerated" "$tmp/exec_exit.err"
finish
