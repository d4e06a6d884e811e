# TCP_CONGESTION on accelerated connections: the stack runs the algorithm a
# socket asks for (reno or cubic), and otherwise the network namespace's
# default (net.ipv4.tcp_congestion_control, set to reno in A here), as the
# kernel picks. What getsockopt says and the errors are the kernel's (the
# same program without the preload gives the same lines); which algorithm
# each connection runs on the stack is read from xdpload-stat.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
client=
trap '[ -n "$client" ] && kill "$client" 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
peer=$(cd "$(dirname "$0")/../peers" && pwd)/congestion_client.py
in_a sysctl -qw net.ipv4.tcp_congestion_control=reno

bg_b socat -u TCP-LISTEN:7400,fork,reuseaddr /dev/null
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7400' | grep -q 7400"

in_a python3 "$peer" "$IP_B" 7400 0 >"$tmp/kernel.out" 2>&1
bg_preload_a env XDPLOAD_LOG=1 python3 "$peer" "$IP_B" 7400 30 >"$tmp/xdp.out" 2>"$tmp/xdp.err"
client=$BG_PID
wait_for 100 grep -qx ready "$tmp/xdp.out"
cat "$tmp/xdp.out"
check "what the program sees is what the kernel says (getsockopt, ENOENT, TCP_INFO's round trip)" \
  diff <(grep -v ready "$tmp/kernel.out") <(grep -v ready "$tmp/xdp.out")
check "the namespace's default applies (reno)" grep -qx "default reno" "$tmp/xdp.out"
check "an unknown name is refused with ENOENT" grep -qx "nope ENOENT" "$tmp/xdp.out"

# The connections on the stack, and their algorithms, from xdpload-stat.
for _ in $(seq 30); do
  "$BUILD/xdpload-stat" -p "$client" --json >"$tmp/stat.json" 2>/dev/null
  n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["processes"][0]["sockets"]; print(sorted(s.get("cc","") for s in d if s["path"]=="xdpload" and s["state"]=="ESTAB"))' "$tmp/stat.json" 2>/dev/null)
  [ "$n" = "['cubic', 'reno']" ] && break
  sleep 0.2
done
check "on the stack: one connection runs reno, the other cubic ($n)" [ "$n" = "['cubic', 'reno']" ]
kill "$client"; wait "$client" 2>/dev/null; client=
finish
