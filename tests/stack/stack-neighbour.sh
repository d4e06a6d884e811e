# The kernel is the control plane for next hops: with A's neighbour table
# empty, the stack gets B's MAC by asking the kernel to resolve it; when B
# changes its MAC (and announces it), a running TCP exchange follows.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b socat TCP4-LISTEN:7100,reuseaddr,fork PIPE
wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7100' | grep -q 7100"
in_a ip neigh flush dev "$IF_A"
check "A's kernel starts with no neighbour for B" bash -c "[ -z \"\$(ip netns exec $NS_A ip neigh show $IP_B)\" ]"

bg_a "$BUILD/tests/stack_peer" --iface "$IF_A" --peer "$IP_B" --port 7100 pingpong 6 >"$tmp/pp.out" 2>&1
pp=$BG_PID
sleep 2
check "the kernel resolved B for the stack" bash -c \
  "ip netns exec $NS_A ip neigh show $IP_B | grep -qi '$MAC_B'"
new_mac=02:11:22:33:44:55
in_b ip link set "$IF_B" address $new_mac
in_b arping -U -c 2 -I "$IF_B" "$IP_B" >/dev/null
wait "$pp"
rc=$?
cat "$tmp/pp.out"
check "round trips continued across the MAC change, none lost" [ $rc -eq 0 ]
check "the stack saw the kernel's update" grep -q "neighbour updates [2-9]" "$tmp/pp.out"
check "A's kernel has B's new MAC" bash -c "ip netns exec $NS_A ip neigh show $IP_B | grep -qi $new_mac"
finish
