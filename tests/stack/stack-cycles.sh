# lwIP over AF_XDP: 10,000 connect/close cycles against nc in the other
# namespace, over a 4-queue pair (each connection's port hashes to its own
# queue); afterwards, with the TIME_WAIT PCBs ended, as many PCBs as before,
# no segment, no PBUF_REF header and no UMEM frame is still held, and every
# frame of the UMEM is accounted for: free, in a fill ring, or in flight.
. "$(dirname "$0")/../lib/common.sh"
need_root
NETNS_QUEUES=4 netns_up
bg_b bash -c "nc -lk 7102 >/dev/null </dev/null"
wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7102' | grep -q 7102"
out=$(in_a "$BUILD/tests/stack_peer" --iface "$IF_A" --peer "$IP_B" --port 7102 cycles 10000)
rc=$?
echo "$out"
check "10,000 cycles connected" grep -q "10000 of 10000 connected" <<<"$out"
check "no PCB, segment, pbuf or frame leaked" \
  bash -c "[ $rc -eq 0 ] && grep -q 'pcbs leaked 0 .* frames held 0, segments 0, ref pbufs 0' <<<'$out'"
check "every UMEM frame accounted for" grep -qE 'frames accounted ([0-9]+) of \1 ' <<<"$out"
check "frames received on several queues" grep -qE 'received on [2-9] of [0-9]+ queues' <<<"$out"
finish
