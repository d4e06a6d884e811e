# unbound (Debian's DNS resolver), unmodified, serving local zone data in
# A, on the kernel path and under xdpload, queried from B by dig and by a
# load of plain DNS queries (tests/peers/dns_load.py). The shape is a
# resolver's: two threads, each with its own UDP and TCP sockets on port 53
# (SO_REUSEPORT groups), bound to the wildcard with interface-automatic (the
# answers go out from the address each query came to: IP_PKTINFO in and
# out), a TCP listener that sets TCP_FASTOPEN, and an answer too large for
# UDP (truncated, so dig asks again over TCP).
# Checks: every answer as on the kernel path; under xdpload A's kernel saw
# neither the UDP queries nor the TCP connections (its counters grow on the
# kernel path, to show they count); A's namespace enables Fast Open servers
# (net.ipv4.tcp_fastopen=3), which the stack does not do: said once. B's
# client sends one query in its SYN (MSG_FASTOPEN, no cookie needed: 0x5):
# neither server takes it there (the kernel's wants a cookie), B counts the
# attempt failed, sends it again, and gets one answer.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v unbound >/dev/null || skip "unbound is not installed (make deps)"
command -v dig >/dev/null || skip "dig is not installed (make deps)"
netns_up
tmp=$(mktemp -d)
server=
stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  server=
}
trap 'stop_server; rm -rf "$tmp"; netns_down' EXIT
in_a sysctl -qw net.ipv4.tcp_fastopen=3
in_b sysctl -qw net.ipv4.tcp_fastopen=5
# Six strings of 250 bytes: about 1.5 KB, more than a UDP answer may carry.
big=$(for i in 1 2 3 4 5 6; do printf '"%s" ' "$(head -c 250 /dev/zero | tr '\0' "$i")"; done)
cat >"$tmp/unbound.conf" <<CONF
server:
  interface: 0.0.0.0
  interface-automatic: yes
  port: 53
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$tmp"
  pidfile: ""
  use-syslog: no
  logfile: ""
  num-threads: 2
  so-reuseport: yes
  access-control: 0.0.0.0/0 allow
  do-ip6: no
  local-zone: "test." static
  local-data: "a.test. IN A 10.1.2.3"
  local-data: "b.test. IN A 10.1.2.4"
  local-data: 'big.test. IN TXT $big'
remote-control:
  control-enable: no
CONF

# run kernel|xdpload: answers in $tmp/HOW.answers, A's counters' growth in
# $tmp/HOW.udp and $tmp/HOW.tcp, the server's stderr in $tmp/HOW.err
run() {
  local how=$1 pre=() udp0 tcp0 fo0
  [ "$how" = xdpload ] && pre=(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A")
  ip netns exec "$NS_A" "${pre[@]}" unbound -d -c "$tmp/unbound.conf" 2>"$tmp/$how.err" &
  server=$!
  if ! wait_for 100 bash -c "[ \$(ip netns exec $NS_A ss -ltnH 'sport = :53' | grep -c :53) -eq 2 ]"; then
    cat "$tmp/$how.err"
    fail "unbound did not start ($how)"
    finish
  fi
  udp0=$(kernel_counter "$NS_A" UdpInDatagrams)
  tcp0=$(kernel_counter "$NS_A" TcpPassiveOpens)
  fo0=$(kernel_counter "$NS_B" TcpExtTCPFastOpenActiveFail)
  {
    in_b dig +short +time=2 +tries=2 @"$IP_A" a.test
    in_b dig +short +time=2 +tries=2 +tcp @"$IP_A" b.test
    # (truncated over UDP; dig's retry over TCP gets it whole)
    big=$(in_b dig +short +time=2 +tries=2 @"$IP_A" big.test TXT)
    echo "big.test: $(echo "$big" | wc -w) strings, $(echo "$big" | md5sum)"
    in_b dig +short +time=2 +tries=2 @"$IP_A" nothere.test
    in_b python3 "$TOP/tests/peers/dns_load.py" "$IP_A" 500 20 fastopen
  } >"$tmp/$how.answers" 2>&1
  echo $(($(kernel_counter "$NS_B" TcpExtTCPFastOpenActiveFail) - fo0)) >"$tmp/$how.fastopen"
  echo $(($(kernel_counter "$NS_A" UdpInDatagrams) - udp0)) >"$tmp/$how.udp"
  echo $(($(kernel_counter "$NS_A" TcpPassiveOpens) - tcp0)) >"$tmp/$how.tcp"
  stop_server
  echo "== $how: A's kernel got $(cat "$tmp/$how.udp") UDP datagrams, $(cat "$tmp/$how.tcp") TCP connections; B: $(cat "$tmp/$how.fastopen") Fast Open attempt(s) failed"
  cat "$tmp/$how.answers"
}
run kernel
run xdpload
grep xdpload "$tmp/xdpload.err"
check "the answers under xdpload are the kernel path's" cmp "$tmp/kernel.answers" "$tmp/xdpload.answers"
check "every query answered (500 over UDP, 20 connections of 10 over TCP)" \
  grep -qx "udp 500/500 tcp 200/200" "$tmp/xdpload.answers"
check "the big answer came whole (over TCP after truncation)" grep -q "^big.test: 6 strings" "$tmp/xdpload.answers"
check "on the kernel path, A's kernel counted the queries and connections" \
  bash -c "[ \$(cat $tmp/kernel.udp) -ge 500 ] && [ \$(cat $tmp/kernel.tcp) -ge 20 ]"
check "under xdpload, A's kernel saw no UDP query" [ "$(cat "$tmp/xdpload.udp")" -lt 5 ]
check "under xdpload, A's kernel saw no TCP connection (the Fast Open listener is accelerated)" \
  [ "$(cat "$tmp/xdpload.tcp")" -eq 0 ]
check "the query in a SYN: the stack did not take it there (B counted the attempt failed)" \
  [ "$(cat "$tmp/xdpload.fastopen")" -ge 1 ]
check "Fast Open servers enabled but not done: said once" \
  bash -c "[ \$(grep -c 'set TCP_FASTOPEN: it stays accelerated' $tmp/xdpload.err) -eq 1 ]"
finish
