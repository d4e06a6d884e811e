# XDPLOAD_RULES: a rule that sends a port to the kernel is obeyed, for each
# role, and the ports no rule names are accelerated. Proved with A's kernel
# SNMP counters (the kernel path moves them, the stack does not) and with
# xdpload-stat's socket table. A bad rules file: one line naming file and
# line, and the program still works on the kernel path.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
peer="$TOP/tests/peers/echo_peer.py"
cat >"$tmp/rules" <<RULES
# the first match decides
kernel      tcp_server    *:7001
kernel      udp_receiver  $IP_A:7003
kernel      tcp_client    $IP_B:7101
kernel      udp_sender    10.211.0.0/16:7100-7103
accelerate  any           *
RULES

# delta NS COUNTER CMD...: runs CMD, prints how much the counter moved.
delta() {
  local ns=$1 name=$2 before after
  shift 2
  before=$(kernel_counter "$ns" "$name")
  "$@" || { echo "command failed: $*" >&2; echo -1; return; }
  after=$(kernel_counter "$ns" "$name")
  echo $((after - before))
}

# Server roles: the program under test in A serves 7001/7002 TCP, 7003/7004 UDP.
ip netns exec "$NS_A" env LD_PRELOAD="$BUILD/libxdpload.so" XDPLOAD_IFACE="$IF_A" \
  XDPLOAD_RULES="$tmp/rules" XDPLOAD_LOG=2 python3 "$peer" serve 0.0.0.0 7001,7002 7003,7004 \
  >"$tmp/server.log" 2>&1 &
server=$!
wait_for 50 bash -c "ip netns exec $NS_A ss -lntH | grep -q ':7002'"
wait_for 50 bash -c "ip netns exec $NS_A ss -lunH | grep -q ':7004'"

d=$(delta "$NS_A" TcpInSegs in_b python3 "$peer" tcp "$IP_A" 7001 2000000)
echo "tcp_server 7001 (kernel rule): A's TcpInSegs +$d"
check "tcp_server port ruled to the kernel is served by the kernel" [ "$d" -gt 100 ]
d=$(delta "$NS_A" TcpInSegs in_b python3 "$peer" tcp "$IP_A" 7002 2000000)
echo "tcp_server 7002 (no rule): A's TcpInSegs +$d"
check "tcp_server port without a rule is accelerated" [ "$d" -ge 0 -a "$d" -lt 10 ]
d=$(delta "$NS_A" UdpInDatagrams in_b python3 "$peer" udp "$IP_A" 7003 200)
echo "udp_receiver 7003 (kernel rule): A's UdpInDatagrams +$d"
check "udp_receiver port ruled to the kernel is served by the kernel" [ "$d" -ge 200 ]
d=$(delta "$NS_A" UdpInDatagrams in_b python3 "$peer" udp "$IP_A" 7004 200)
echo "udp_receiver 7004 (no rule): A's UdpInDatagrams +$d"
check "udp_receiver port without a rule is accelerated" [ "$d" -ge 0 -a "$d" -lt 5 ]

"$BUILD/xdpload-stat" -p "$server" >"$tmp/stat"
cat "$tmp/stat"
check "xdpload-stat: the 7001 listener is on the kernel path" \
  grep -qE "tcp .*:7001 .*LISTEN.*kernel" "$tmp/stat"
check "xdpload-stat: the 7002 listener is accelerated" \
  grep -qE "tcp .*:7002 .*LISTEN.*xdpload" "$tmp/stat"
check "the decision names the rule's line" \
  grep -q "tcp_server 10.211.0.1:7001 on the kernel path ($tmp/rules line 2)" "$tmp/server.log"
kill "$server"
wait "$server" 2>/dev/null

# Client roles: the program under test in A reaches kernel servers in B.
bg_b python3 "$peer" serve 0.0.0.0 7101,7102 7103,7104
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH | grep -q ':7104'"
client() {
  ip netns exec "$NS_A" env LD_PRELOAD="$BUILD/libxdpload.so" XDPLOAD_IFACE="$IF_A" \
    XDPLOAD_RULES="$tmp/rules" python3 "$peer" "$@"
}
d=$(delta "$NS_A" TcpOutSegs client tcp "$IP_B" 7101 2000000)
echo "tcp_client 7101 (kernel rule): A's TcpOutSegs +$d"
check "tcp_client destination ruled to the kernel goes through the kernel" [ "$d" -gt 100 ]
d=$(delta "$NS_A" TcpOutSegs client tcp "$IP_B" 7102 2000000)
echo "tcp_client 7102 (no rule): A's TcpOutSegs +$d"
check "tcp_client destination without a rule is accelerated" [ "$d" -ge 0 -a "$d" -lt 10 ]
d=$(delta "$NS_A" UdpOutDatagrams client udp "$IP_B" 7103 200)
echo "udp_sender 7103 (kernel rule): A's UdpOutDatagrams +$d"
check "udp_sender destination ruled to the kernel goes through the kernel" [ "$d" -ge 200 ]
d=$(delta "$NS_A" UdpOutDatagrams client udp "$IP_B" 7104 200)
echo "udp_sender 7104 (no rule): A's UdpOutDatagrams +$d"
check "udp_sender destination without a rule is accelerated" [ "$d" -ge 0 -a "$d" -lt 5 ]

# A bad rules file: one clear line, the transfer still works (kernel path).
printf 'kernel tcp_server *:7001\nkernel tcp_sever *:7002\n' >"$tmp/bad"
ip netns exec "$NS_A" env LD_PRELOAD="$BUILD/libxdpload.so" XDPLOAD_IFACE="$IF_A" \
  XDPLOAD_RULES="$tmp/bad" python3 "$peer" tcp "$IP_B" 7102 100000 2>"$tmp/bad.log"
rc=$?
cat "$tmp/bad.log"
check "bad rules file: the program still works" [ $rc -eq 0 ]
check "bad rules file: one line naming file and line" \
  bash -c "[ \$(wc -l <$tmp/bad.log) -eq 1 ] && grep -q '$tmp/bad:2: expected a role' $tmp/bad.log"
finish
