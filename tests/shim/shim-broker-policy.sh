# Unprivileged programs through the broker, as its policy allows. Without a
# broker, a program run as a user without capabilities is on the kernel
# path (AF_XDP needs CAP_NET_RAW) and says so. With `xdpload daemon
# --policy` allowing user nobody ports 9000-9099: a program run as nobody
# with no capabilities is accelerated on 9001 (A's kernel UDP and TCP
# counters flat, bytes intact); its socket on 9100 runs on the kernel path
# with one line naming the reason; a user the policy does not name (uid
# 12345) runs wholly on the kernel path with one line; `deny` beats a later
# allow; a group rule admits a user by its supplementary group; a malformed
# policy stops the broker at start with the line number.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"; netns_down' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"

# as_user UID CMD...: CMD in A under the preload as UID, every capability
# dropped (none inherited, none ambient, no supplementary groups). It
# execs: run in the background, $! is the program's pid.
# GROUPS (a comma list) instead of none when XL_GROUPS is set.
as_user() {
  local uid=$1 groups=--clear-groups
  [ -n "${XL_GROUPS:-}" ] && groups=--groups=$XL_GROUPS
  shift
  exec ip netns exec "$NS_A" setpriv --reuid="$uid" --regid="$uid" "$groups" --inh-caps=-all \
    --ambient-caps=-all --bounding-set=-all \
    env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$@"
}

# -- a malformed policy stops the broker, naming the line.
printf 'allow user root\n# fine\nallow usr nobody ports 9000\n' >"$tmp/bad-policy"
in_a "$TOP/tools/xdpload" daemon --iface "$IF_A" --policy "$tmp/bad-policy" 2>"$tmp/bad.err"
rc=$?
cat "$tmp/bad.err"
check "a malformed policy stops the broker (exit $rc) naming line 3" \
  bash -c "[ $rc -ne 0 ] && grep -q 'line 3' $tmp/bad.err"
printf 'allow user root\nallow user nobody ports 9000-90x\n' >"$tmp/bad-policy"
in_a "$TOP/tools/xdpload" daemon --iface "$IF_A" --policy "$tmp/bad-policy" 2>"$tmp/bad.err"
rc=$?
check "a bad port range stops the broker naming line 2" \
  bash -c "[ $rc -ne 0 ] && grep -q 'line 2' $tmp/bad.err"
check "and leaves no XDP program behind" bash -c "! xdp_attached $NS_A $IF_A"

# -- no broker: nobody is on the kernel path, and told why.
(as_user 65534 python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9001))') \
  2>"$tmp/nobroker.err"
cat "$tmp/nobroker.err"
check "no broker: an unprivileged program says, in one line, that it needs root or xdpload daemon" \
  one_line_with "$tmp/nobroker.err" "xdpload daemon --iface $IF_A"

cat >"$tmp/policy" <<POLICY
# the test's policy
allow user root
deny user 4242
allow user 4242 ports 9000-9099
allow user nobody ports 9000-9099
allow group 3000 ports 9000-9099
POLICY
broker_up --policy "$tmp/policy"

# -- nobody, allowed on 9000-9099: UDP and TCP on 9001 accelerated.
as_user 65534 $echo_peer serve "$IP_A" 9001 9001 2>"$tmp/nobody.err" &
server=$!
wait_for 50 listening 9001
tcp_before=$(kernel_counter "$NS_A" TcpInSegs)
udp_echo_from_b 9001 8 50 "$tmp/u.out"
rc_u=$ECHO_RC udp_d=$UDP_DELTA
in_b $flows tcp-clients "$IP_A" 9001 16 65536 >"$tmp/t.out" 2>&1
rc_t=$?
tcp_d=$(( $(kernel_counter "$NS_A" TcpInSegs) - tcp_before ))
head -n1 "$tmp/t.out"
check "nobody's server runs as uid 65534 with no capabilities" \
  bash -c "grep -q '^Uid:.*65534' /proc/$server/status && grep -q '^CapEff:.*0000000000000000' /proc/$server/status"
check "nobody on 9001: UDP and TCP echo intact" bash -c "[ $rc_u -eq 0 -a $rc_t -eq 0 ]"
check "nobody on 9001: accelerated (A's kernel UdpInDatagrams +$udp_d, TcpInSegs +$tcp_d)" \
  [ "$udp_d" -lt 5 -a "$tcp_d" -lt 20 ]
# (The broker writes its status every 200 ms: the echo can be over first.)
wait_for 30 grep -q '^program .* uid 65534 .* ports 2 ' "$BROKER_STATUS"
check "nobody's server is listed by the broker" \
  bash -c "grep -q '^program .* uid 65534 .* ports 2 ' $BROKER_STATUS || { cat $BROKER_STATUS; false; }"
kill $server
wait $server 2>/dev/null

# -- nobody on 9100 (outside its ports): the kernel path, one line.
as_user 65534 $echo_peer serve "$IP_A" "" 9100 2>"$tmp/nobody9100.err" &
server=$!
wait_for 50 listening 9100
udp_echo_from_b 9100 2 20 "$tmp/u9100.out"
kill $server
wait $server 2>/dev/null
cat "$tmp/nobody9100.err"
check "nobody on 9100: echo intact on the kernel path (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -ge 40 ]
check "nobody on 9100: one line saying the policy refused the port" \
  one_line_with "$tmp/nobody9100.err" "udp port 9100 stays on the kernel path"

# -- uid 4343, named by no user rule, but in group 3000 (supplementary):
# accelerated on 9003 by the group rule (SO_PEERGROUPS).
XL_GROUPS=3000 as_user 4343 $echo_peer serve "$IP_A" "" 9003 2>"$tmp/group.err" &
server=$!
wait_for 50 listening 9003
udp_echo_from_b 9003 2 20 "$tmp/u9003.out"
kill $server
wait $server 2>/dev/null
cat "$tmp/group.err"
check "uid 4343 in group 3000: accelerated by the group rule (UdpInDatagrams +$UDP_DELTA)" \
  [ $ECHO_RC -eq 0 -a $UDP_DELTA -lt 5 ]

# -- uid 12345, not in the policy; uid 4242, denied before it is allowed.
for uid in 12345 4242; do
  as_user $uid $echo_peer serve "$IP_A" "" 9002 2>"$tmp/u$uid.err" &
  server=$!
  wait_for 50 listening 9002
  udp_echo_from_b 9002 2 20 "$tmp/u$uid.out"
  kill $server
  wait $server 2>/dev/null
  cat "$tmp/u$uid.err"
  check "uid $uid: echo intact on the kernel path (UdpInDatagrams +$UDP_DELTA)" \
    [ $ECHO_RC -eq 0 -a $UDP_DELTA -ge 40 ]
done
check "uid 12345: one line, not in the policy" one_line_with "$tmp/u12345.err" "is not in the broker's policy"
check "uid 4242: one line, denied by policy line 3" one_line_with "$tmp/u4242.err" "denied by policy line 3"
cat "$tmp/broker.err"
finish
