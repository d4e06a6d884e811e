# Every queue of a multi-queue interface. The veth pair has 4 queues each way
# and the kernel spreads flows over them by hash, as RSS does on a NIC; a
# frame reaches only the AF_XDP socket of the queue it arrived on. In driver
# and in SKB mode: an accelerated client makes 64 connections to a kernel
# echo server, an accelerated server takes 64 from kernel clients, and an
# accelerated UDP receiver gets 32 senders' datagrams. Every byte intact,
# A's kernel sees none of that traffic (a flow on a queue without a socket
# would go to it), and xdpload-stat shows frames on at least 2 queues.
. "$(dirname "$0")/../lib/common.sh"
need_root
NETNS_QUEUES=4 netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
flows="python3 $TOP/tests/peers/many_flows.py"
echo_peer="python3 $TOP/tests/peers/echo_peer.py"


# run_held NAME CMD...: runs CMD (which takes --hold) in A under the preload,
# waits for "done", reads its queues, then lets it exit. Sets HELD_QUEUES
# and HELD_RC.
run_held() {
  local name=$1
  shift
  rm -f "$tmp/release"
  bg_preload_a env XDPLOAD_XDP_MODE="$mode" XDPLOAD_LOG=1 "$@" --hold "$tmp/release" \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  local pid=$BG_PID
  wait_for 600 grep -q '^done' "$tmp/$name.out"
  HELD_QUEUES=$(queues_with_rx "$pid")
  touch "$tmp/release"
  wait "$pid"
  HELD_RC=$?
  head -n1 "$tmp/$name.out"
  cat "$tmp/$name.err"
}

bg_b $echo_peer serve 0.0.0.0 7000 ""
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"

for mode in driver skb; do
  echo "== XDP $mode mode"
  # A is the client: 64 connections, 64 KB each way.
  before=$(kernel_counter "$NS_A" TcpInSegs)
  run_held client-$mode $flows tcp-clients "$IP_B" 7000 64 65536
  after=$(kernel_counter "$NS_A" TcpInSegs)
  check "$mode: accelerated client, 64 connections intact" \
    bash -c "[ $HELD_RC -eq 0 ] && grep -q '^tcp 64 of 64' $tmp/client-$mode.out"
  check "$mode: client in $mode mode" grep -q "XDP $mode/" "$tmp/client-$mode.err"
  check "$mode: client frames arrived on $HELD_QUEUES queues (at least 2)" [ "$HELD_QUEUES" -ge 2 ]
  check "$mode: A's kernel saw none of the client's traffic (TcpInSegs +$((after - before)))" \
    [ $((after - before)) -lt 20 ]

  # A is the server: 64 kernel clients from B.
  port=$((7010 + ${#mode}))
  bg_preload_a env XDPLOAD_XDP_MODE="$mode" XDPLOAD_LOG=1 $echo_peer serve "$IP_A" $port "" \
    2>"$tmp/server-$mode.err"
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :$port' | grep -q $port"
  before=$(kernel_counter "$NS_A" TcpInSegs)
  in_b $flows tcp-clients "$IP_A" $port 64 65536 >"$tmp/clients-$mode.out" 2>&1
  rc=$?
  after=$(kernel_counter "$NS_A" TcpInSegs)
  nq=$(queues_with_rx "$server")
  kill "$server"; wait "$server" 2>/dev/null
  head -n1 "$tmp/clients-$mode.out"
  check "$mode: accelerated server, 64 kernel clients intact" \
    bash -c "[ $rc -eq 0 ] && grep -q '^tcp 64 of 64' $tmp/clients-$mode.out"
  check "$mode: server frames arrived on $nq queues (at least 2)" [ "$nq" -ge 2 ]
  check "$mode: A's kernel saw none of the server's traffic (TcpInSegs +$((after - before)))" \
    [ $((after - before)) -lt 20 ]

  # UDP: 32 senders in B, each its own source port, to a receiver in A.
  port=$((7100 + ${#mode}))
  before=$(kernel_counter "$NS_A" UdpInDatagrams)
  rm -f "$tmp/release"
  bg_preload_a env XDPLOAD_XDP_MODE="$mode" XDPLOAD_LOG=1 $flows udp-receiver "$IP_A" $port 32 100 \
    --hold "$tmp/release" >"$tmp/udp-$mode.out" 2>"$tmp/udp-$mode.err"
  receiver=$BG_PID
  wait_for 100 grep -q '^ready' "$tmp/udp-$mode.out"
  in_b $flows udp-senders "$IP_A" $port 32 100 >/dev/null
  wait_for 150 grep -q '^done' "$tmp/udp-$mode.out"
  nq=$(queues_with_rx "$receiver")
  touch "$tmp/release"
  wait "$receiver"
  rc=$?
  after=$(kernel_counter "$NS_A" UdpInDatagrams)
  sed -n 2p "$tmp/udp-$mode.out"
  check "$mode: 32 UDP senders, 3200 datagrams, none lost" \
    bash -c "[ $rc -eq 0 ] && grep -q '^udp 3200 of 3200 datagrams from 32 source ports, 0 bad' $tmp/udp-$mode.out"
  check "$mode: UDP frames arrived on $nq queues (at least 2)" [ "$nq" -ge 2 ]
  check "$mode: A's kernel saw none of the datagrams (UdpInDatagrams +$((after - before)))" \
    [ $((after - before)) -lt 10 ]
done
finish
