# XDPLOAD_QUEUES on a 4-queue interface:
# - a restricted list serves just those queues and says, in one line at
#   start, that flows hashed to the others will not reach xdpload; when some
#   do (kernel clients spread over the queues), xdpload-stat warns;
# - bad values (out of range, malformed, empty) give one clear line and the
#   kernel path, or exit 1 with XDPLOAD_STRICT=1;
# - the old XDPLOAD_QUEUE still works, with a deprecation line.
. "$(dirname "$0")/../lib/common.sh"
need_root
NETNS_QUEUES=4 netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"
head -c 200000 /dev/urandom >"$tmp/in"

# An accelerated echo server on queue 0 only; 16 kernel clients from B. The
# ones hashed to queues 1-3 reach the kernel's listener (a listener is on
# both paths), so all complete, but xdpload sees their frames go by.
bg_preload_a env XDPLOAD_QUEUES=0 $echo_peer serve "$IP_A" 7000 "" 2>"$tmp/q0.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7000' | grep -q 7000"
in_b $flows tcp-clients "$IP_A" 7000 16 20000 >"$tmp/q0-clients.out" 2>&1
# The steering program's counts reach the segment within a second.
stat_warns() {
  "$BUILD/xdpload-stat" -p "$server" >"$tmp/q0.stat"
  grep -q 'warning: [1-9][0-9]* frames of accelerated ports arrived on receive queues without an xdpload socket' "$tmp/q0.stat"
}
wait_for 30 stat_warns
warned=$?
kill "$server"; wait "$server" 2>/dev/null
cat "$tmp/q0.err" "$tmp/q0.stat"
check "XDPLOAD_QUEUES=0: one line at start names the queues left out" \
  bash -c "[ \$(grep -c 'serving queue 0 of the 4 receive queues of xa0 (XDPLOAD_QUEUES=0): flows the NIC hashes to the others will not reach xdpload' $tmp/q0.err) -eq 1 ]"
check "XDPLOAD_QUEUES=0: the kernel clients all completed" grep -q '^tcp 16 of 16' "$tmp/q0-clients.out"
check "XDPLOAD_QUEUES=0: xdpload-stat lists queue 0 only" grep -qE '^PID .* queues 0 of 4 ' "$tmp/q0.stat"
check "XDPLOAD_QUEUES=0: xdpload-stat warns of frames on queues without a socket" [ $warned -eq 0 ]

# A list: the banner names it.
bg_b bash -c "nc -l -N 7001 >$tmp/list-got"
listener=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7001' | grep -q 7001"
PRELOAD_A env XDPLOAD_QUEUES=1,3 XDPLOAD_LOG=1 XDPLOAD_STRICT=1 python3 -c '
import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.close()' 2>"$tmp/list.err"
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
cat "$tmp/list.err"
check "XDPLOAD_QUEUES=1,3: queues 1,3 served" grep -q 'accelerating xa0 (10.211.0.1) queues 1,3,' "$tmp/list.err"
check "XDPLOAD_QUEUES=1,3: the warning names them" grep -q 'serving queues 1,3 of the 4 receive queues' "$tmp/list.err"

# Bad values: one line, the kernel path, the transfer intact.
bad() {  # bad VALUE PATTERN
  local value=$1 pat=$2 port=$((7100 + n))
  n=$((n + 1))
  bg_b bash -c "nc -l -N $port >$tmp/bad-got"
  local listener=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$port' | grep -q $port"
  local before after
  before=$(kernel_counter "$NS_A" TcpOutSegs)
  PRELOAD_A env XDPLOAD_QUEUES="$value" nc -N "$IP_B" $port <"$tmp/in" 2>"$tmp/bad.err"
  wait "$listener"
  after=$(kernel_counter "$NS_A" TcpOutSegs)
  cat "$tmp/bad.err"
  check "XDPLOAD_QUEUES='$value': one line with the reason" \
    one_line_with "$tmp/bad.err" "acceleration off, running on the kernel path: $pat"
  check "XDPLOAD_QUEUES='$value': the kernel carried it, byte-exact (TcpOutSegs +$((after - before)))" \
    bash -c "cmp -s $tmp/in $tmp/bad-got && [ $((after - before)) -gt 10 ]"
  PRELOAD_A env XDPLOAD_QUEUES="$value" XDPLOAD_STRICT=1 nc -N "$IP_B" $port </dev/null 2>"$tmp/strict.err"
  local rc=$?
  check "XDPLOAD_QUEUES='$value' with XDPLOAD_STRICT=1: exits 1 at start" \
    bash -c "[ $rc -eq 1 ]"
  check "XDPLOAD_QUEUES='$value' with XDPLOAD_STRICT=1: says why" \
    one_line_with "$tmp/strict.err" "fatal: $pat"
}
n=0
bad 9 "queue 9 is out of range: xa0 has 4 queues"
bad 1-x "XDPLOAD_QUEUES=1-x is not 'all' or a list of receive queues"
bad 3-1 "XDPLOAD_QUEUES=3-1 is not 'all' or a list of receive queues"
bad "" "XDPLOAD_QUEUES= is not 'all' or a list of receive queues"
bad 64 "XDPLOAD_QUEUES=64 is not 'all' or a list of receive queues such as 0,2-3 (each 0..63)"

# A kernel or driver that cannot share the UMEM between queues (before
# 5.10): queue 0 alone, said in one line (XL_TEST_REFUSE_SHARED_UMEM acts
# as such a kernel; this one shares fine).
PRELOAD_A env XL_TEST_REFUSE_SHARED_UMEM=1 python3 -c "
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('$IP_B', 9))" 2>"$tmp/refused.err"
rc=$?
cat "$tmp/refused.err"
check "shared UMEM refused: runs, one line naming the queue and the consequence" \
  bash -c "[ $rc -eq 0 ] && [ \$(grep -c . $tmp/refused.err) -eq 1 ] && grep -q 'the kernel refused to share the UMEM with queue 1 (Operation not supported); serving queue 0 only: flows the NIC hashes to other queues will not reach xdpload' $tmp/refused.err"

# The old single-queue variable.
PRELOAD_A env XDPLOAD_QUEUE=2 XDPLOAD_LOG=1 XDPLOAD_STRICT=1 python3 -c 'pass' 2>"$tmp/old.err"
cat "$tmp/old.err"
check "XDPLOAD_QUEUE=2: deprecated, says so" grep -q 'XDPLOAD_QUEUE is deprecated: use XDPLOAD_QUEUES' "$tmp/old.err"
check "XDPLOAD_QUEUE=2: serves queue 2" grep -q 'accelerating xa0 (10.211.0.1) queue 2,' "$tmp/old.err"
finish
