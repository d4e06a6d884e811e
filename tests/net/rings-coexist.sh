# While an XskPort steers UDP port P in namespace A, the kernel keeps working
# on the same interface: TCP between kernel sockets on another port is
# byte-exact both ways, ARP resolves, ping is answered, and datagrams to P
# reach the XSK and not the kernel socket that also listens on P.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
P=9300
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT

# A kernel socket on P in A, to show it gets nothing while the port steers.
bg_a socat -u UDP4-RECV:$P,reuseaddr OPEN:$tmp/kernel-udp,creat,append
bg_a "$BUILD/tests/xsk_exchange" --iface "$IF_A" --port $P --hold >"$tmp/hold.out" 2>&1
holder=$BG_PID
wait_for 50 grep -q "port open" "$tmp/hold.out" || fail "holder did not start"

for i in 1 2 3 4 5; do in_b bash -c "echo steered-$i | socat -u - UDP4-SENDTO:$IP_A:$P"; done
wait_for 30 grep -q "held 5 frames" "$tmp/hold.out"
check "datagrams to P reached the XSK" grep -q "held 5 frames" "$tmp/hold.out"
check "kernel socket on P got none of them" [ ! -s "$tmp/kernel-udp" ]

head -c 20000000 /dev/urandom >"$tmp/data"
want=$(sha256sum <"$tmp/data" | cut -d' ' -f1)
# A -> B
bg_b socat -u TCP4-LISTEN:9400,reuseaddr OPEN:$tmp/b-got,creat,trunc
wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9400' | grep -q 9400"
in_a socat -u OPEN:$tmp/data TCP4:$IP_B:9400
wait "$BG_PID"
check "kernel TCP A->B byte-exact" [ "$(sha256sum <"$tmp/b-got" | cut -d' ' -f1)" = "$want" ]
# B -> A
bg_a socat -u TCP4-LISTEN:9401,reuseaddr OPEN:$tmp/a-got,creat,trunc
wait_for 30 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :9401' | grep -q 9401"
in_b socat -u OPEN:$tmp/data TCP4:$IP_A:9401
wait "$BG_PID"
check "kernel TCP B->A byte-exact" [ "$(sha256sum <"$tmp/a-got" | cut -d' ' -f1)" = "$want" ]

in_b ip neigh flush dev "$IF_B"
check "ARP for A resolves from B" in_b arping -c 2 -w 3 -I "$IF_B" "$IP_A"
in_b ip neigh flush dev "$IF_B"
check "ping A from B" in_b ping -c 3 -i 0.2 -W 1 "$IP_A"
check "B's kernel resolved A's MAC by ARP" bash -c \
  "ip netns exec $NS_B ip neigh show $IP_A | grep -qi '$MAC_A'"
check "ping B from A" in_a ping -c 3 -i 0.2 -W 1 "$IP_B"
check "holder still alive (steering was in place throughout)" kill -0 "$holder"
finish
