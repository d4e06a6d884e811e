# iperf3 server under xdpload (its default dual-stack socket), kernel client
# in the other namespace: 10 s of TCP and of UDP, each both directions (-R).
# No errors; A's kernel counters stay still while xdpload's grow.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
secs=${IPERF_SECONDS:-10}
bg_preload_a iperf3 -s -p 5201
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :5201' | grep -q 5201"
tcp_before=$(kernel_counter "$NS_A" TcpInSegs)
udp_before=$(kernel_counter "$NS_A" UdpInDatagrams)
i=0
for args in "" "-R" "-u -b 1G" "-u -b 1G -R"; do
  i=$((i + 1))
  in_b timeout $((secs + 20)) iperf3 -c "$IP_A" -p 5201 -t "$secs" $args -J >"$tmp/run$i.json"
  rc=$?
  summary=$(python3 - "$tmp/run$i.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d:
    print("error:", d["error"]); sys.exit(1)
e = d["end"]
if "sum_received" in e:
    print("%.2f Gbit/s received" % (e["sum_received"]["bits_per_second"] / 1e9))
else:
    s = e["sum"]
    print("%.2f Gbit/s, %d/%d lost" % (s["bits_per_second"] / 1e9, s["lost_packets"], s["packets"]))
PY
)
  prc=$?
  echo "iperf3 $args: $summary"
  check "iperf3 $args: client exits 0 with no error" [ $rc -eq 0 -a $prc -eq 0 ]
done
check "the server is still running" kill -0 "$server"
rx=$(xstat_counter "$server" rx_bytes)
tcp_after=$(kernel_counter "$NS_A" TcpInSegs)
udp_after=$(kernel_counter "$NS_A" UdpInDatagrams)
echo "xdpload rx bytes: $rx; kernel TcpInSegs +$((tcp_after - tcp_before)), UdpInDatagrams +$((udp_after - udp_before))"
check "xdpload carried the traffic (over 1 GB received)" [ "$rx" -gt 1000000000 ]
check "A's kernel saw almost no TCP segments" [ $((tcp_after - tcp_before)) -lt 1000 ]
check "A's kernel saw almost no UDP datagrams" [ $((udp_after - udp_before)) -lt 1000 ]
finish
