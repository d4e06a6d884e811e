# Two XskPorts, one per namespace, exchange 1,000,000 numbered frames each way
# across the veth pair, in driver mode and in SKB mode: none lost, none
# corrupted, none duplicated (xsk_exchange checks sequence and checksums).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up

count=${XSK_EXCHANGE_COUNT:-1000000}
for mode in driver skb; do
  bg_a "$BUILD/tests/xsk_exchange" --iface "$IF_A" --local-ip "$IP_A" --peer-ip "$IP_B" \
    --peer-mac "$MAC_B" --port 9000 --count "$count" --mode "$mode" >"$BUILD/xchg-a.out" 2>&1
  pa=$BG_PID
  in_b "$BUILD/tests/xsk_exchange" --iface "$IF_B" --local-ip "$IP_B" --peer-ip "$IP_A" \
    --peer-mac "$MAC_A" --port 9000 --count "$count" --mode "$mode" >"$BUILD/xchg-b.out" 2>&1
  rb=$?
  wait "$pa"
  ra=$?
  cat "$BUILD/xchg-a.out" "$BUILD/xchg-b.out"
  check "$mode mode: side A got all $count frames intact" [ "$ra" -eq 0 ]
  check "$mode mode: side B got all $count frames intact" [ "$rb" -eq 0 ]
  check "$mode mode: ports ran in $mode mode" \
    grep -q "mode $mode/" "$BUILD/xchg-a.out"
  check "$mode mode: A received $count with no loss" \
    grep -q "received $count lost 0 corrupt 0 dup 0" "$BUILD/xchg-a.out"
  check "$mode mode: B received $count with no loss" \
    grep -q "received $count lost 0 corrupt 0 dup 0" "$BUILD/xchg-b.out"
  check "$mode mode: XDP program gone after exit" bash -c "! xdp_attached $NS_A $IF_A"
done
finish
