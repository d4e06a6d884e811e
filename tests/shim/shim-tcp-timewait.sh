# A client that reconnects from the same source port right after the server
# closed first (the server's end is in TIME-WAIT) is connected at once, as
# with a kernel server (RFC 6191): with the accelerated server in A and a
# kernel client in B, then with the roles swapped. "At once" is read from a
# capture on B's side: one SYN per connection, none retransmitted. The same
# capture shows the handshake's options: the stack and the kernel negotiate
# SACK and timestamps both ways, and A's segments carry timestamps. Last,
# the number of connections kept in TIME-WAIT follows the namespace's
# net.ipv4.tcp_max_tw_buckets, as the kernel's does.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v tshark >/dev/null || skip "tshark not installed"
netns_up
tmp=$(mktemp -d)
capture=
trap '[ -n "$capture" ] && kill "$capture" 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
peer=$(cd "$(dirname "$0")/../peers" && pwd)/reconnect_peer.py

in_b dumpcap -q -i "$IF_B" -f "tcp portrange 7100-7101" -w "$tmp/b.pcap" 2>"$tmp/dumpcap.err" &
capture=$!
wait_for 50 test -s "$tmp/b.pcap"
# count FILTER: packets in B's capture that match the display filter.
count() { tshark -r "$tmp/b.pcap" -Y "$1" 2>/dev/null | grep -c .; }

# 1. Accelerated server in A closes first; a kernel client in B reconnects
#    from port 40100 0.2 s later.
bg_preload_a env XDPLOAD_LOG=1 python3 "$peer" server 7100 2 30 >"$tmp/server.out" 2>"$tmp/server.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7100' | grep -q 7100"
in_b python3 "$peer" client "$IP_A" 7100 40100 2 0.2 >"$tmp/client.out" 2>&1
rc=$?
cat "$tmp/client.out"
check "kernel client reconnected from its port to the accelerated server (rc $rc)" \
  [ $rc -eq 0 -a "$(tail -1 "$tmp/client.out")" = "connected 2" ]
wait_for 50 grep -qx "served 2" "$tmp/server.out"
# The counters are refreshed about once a second: give them a few.
for _ in $(seq 30); do
  accepted=$(xstat_counter "$server" tcp_tw_syn_accepted)
  [ "$accepted" = 1 ] && break
  sleep 0.2
done
check "the server's stack took the SYN in TIME-WAIT (tcp_tw_syn_accepted $accepted)" [ "$accepted" = 1 ]
accel=$(xstat_counter "$server" accelerated_tcp)
check "the server was accelerated (accelerated_tcp $accel)" [ "${accel:-0}" -ge 1 ]
kill "$server"; wait "$server" 2>/dev/null

# 2. Roles swapped: a kernel server in B closes first; the accelerated client
#    in A reconnects from port 40101.
bg_b python3 "$peer" server 7101 2 >"$tmp/kserver.out" 2>&1
kserver=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7101' | grep -q 7101"
PRELOAD_A env XDPLOAD_LOG=1 python3 "$peer" client "$IP_B" 7101 40101 2 0.2 >"$tmp/aclient.out" 2>"$tmp/aclient.err"
rc=$?
cat "$tmp/aclient.out" "$tmp/aclient.err"
wait "$kserver"
check "accelerated client reconnected from its port to the kernel server (rc $rc)" \
  [ $rc -eq 0 -a "$(tail -1 "$tmp/aclient.out")" = "connected 2" ]
check "the accelerated client's connections were on the stack" \
  grep -q "2 tcp and 0 udp sockets accelerated" "$tmp/aclient.err"

sleep 0.5
kill "$capture"; wait "$capture" 2>/dev/null; capture=
syn='tcp.flags.syn==1 && tcp.flags.ack==0'
synack='tcp.flags.syn==1 && tcp.flags.ack==1'
n=$(count "tcp.srcport==40100 && $syn")
check "kernel client: one SYN per connection, none retransmitted ($n of 2)" [ "$n" = 2 ]
n=$(count "tcp.srcport==40101 && $syn")
check "accelerated client: one SYN per connection, none retransmitted ($n of 2)" [ "$n" = 2 ]

# 3. Options of the handshakes, both directions.
n=$(count "tcp.srcport==7100 && $synack && tcp.options.sack_perm && tcp.options.timestamp.tsval")
check "the stack's SYN-ACKs offer SACK and timestamps ($n of 2)" [ "$n" = 2 ]
n=$(count "tcp.srcport==40101 && $syn && tcp.options.sack_perm && tcp.options.timestamp.tsval")
check "the stack's SYNs offer SACK and timestamps ($n of 2)" [ "$n" = 2 ]
n=$(count "tcp.srcport==7101 && $synack && tcp.options.sack_perm && tcp.options.timestamp.tsval")
check "the kernel's SYN-ACKs to the stack offer SACK and timestamps ($n of 2)" [ "$n" = 2 ]
n=$(count "ip.src==$IP_A && tcp.flags.syn==0 && !tcp.options.timestamp.tsval && tcp.flags.reset==0")
check "every other segment of the stack carries a timestamp ($n without)" [ "$n" = 0 ]

# 4. At most net.ipv4.tcp_max_tw_buckets connections in TIME-WAIT: 4 here,
#    then twelve connections the accelerated server closes first.
in_a sysctl -qw net.ipv4.tcp_max_tw_buckets=4
bg_preload_a env XDPLOAD_LOG=1 python3 "$peer" server 7102 12 30 >"$tmp/tw.out" 2>"$tmp/tw.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7102' | grep -q 7102"
in_b python3 "$peer" client "$IP_A" 7102 0 12 0 >"$tmp/twc.out" 2>&1
wait_for 50 grep -qx "served 12" "$tmp/tw.out"
for _ in $(seq 30); do
  over=$(xstat_counter "$server" tcp_tw_overflow)
  [ "${over:-0}" -ge 8 ] && break
  sleep 0.2
done
check "twelve connections, a limit of four: eight left TIME-WAIT at once ($over)" [ "${over:-0}" = 8 ]
kill "$server"; wait "$server" 2>/dev/null
tw=$(sed -nE 's/.*TCP PCBs \(([0-9]+) in TIME_WAIT\).*/\1/p' "$tmp/tw.err" | tail -1)
check "at exit the stack held four in TIME-WAIT ($tw)" [ "$tw" = 4 ]
finish
