#!/usr/bin/env bash
# make demo: two network namespaces joined by a veth pair, a sockperf UDP
# ping-pong across them with both ends on the kernel and with both ends under
# xdpload, blocking and spinning, latencies side by side. Everything it
# creates is removed on exit.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export XL_TEST_BUILD="$top/$build"
. tests/lib/netns.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP)"; exit 1; }
secs=${DEMO_SECONDS:-3}
tmp=$(mktemp -d)
netns_up
trap 'rm -rf "$tmp"; netns_down' EXIT

echo "namespace $NS_A ($IF_A $IP_A)  <-- veth -->  namespace $NS_B ($IF_B $IP_B)"
echo "sockperf UDP ping-pong, 64-byte messages, $secs s per run; server in A, client in B"
echo

# run NAME PRELOAD(yes/no) SOCKPERF-FLAGS: prints "p50 p99" of the one-way latency.
# The server runs on CPU 0 and the client on CPU 1: two spinning ends that
# share a CPU for a while measure the scheduler, not the network.
run() {
  local pa=(taskset -c 0) pb=(taskset -c 1) profile=balanced
  [ -n "$3" ] && profile=latency
  if [ "$2" = yes ]; then
    pa=("$top/tools/xdpload" --cpu 0 --profile "$profile" --iface "$IF_A" --)
    pb=("$top/tools/xdpload" --cpu 1 --profile "$profile" --iface "$IF_B" --)
  fi
  bg_a "${pa[@]}" sockperf sr -i "$IP_A" -p 11111 $3 >"$tmp/$1.server" 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -lunH 'sport = :11111' | grep -q 11111"
  ip netns exec "$NS_B" "${pb[@]}" sockperf pp -i "$IP_A" -p 11111 -t "$secs" -m 64 $3 \
    >"$tmp/$1.client" 2>&1
  if [ "$2" = yes ]; then
    "$top/$build/xdpload-stat" -p "$server" >"$tmp/$1.stat" 2>&1
  fi
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  awk '/percentile 50.000/ {p50=$NF} /percentile 99.000 / {p99=$NF}
       END {if (p50 == "") print "failed failed"; else printf "%.2f %.2f\n", p50, p99}' "$tmp/$1.client"
}

udp_before=$(ip netns exec "$NS_A" nstat -az UdpInDatagrams | awk '/UdpInDatagrams/ {print $2}')
read -r kb50 kb99 < <(run kernel-blocking no "")
read -r xb50 xb99 < <(run xdpload-blocking yes "")
read -r ks50 ks99 < <(run kernel-spinning no "--nonblocked")
udp_mid=$(ip netns exec "$NS_A" nstat -az UdpInDatagrams | awk '/UdpInDatagrams/ {print $2}')
read -r xs50 xs99 < <(run xdpload-spinning yes "--nonblocked")
udp_after=$(ip netns exec "$NS_A" nstat -az UdpInDatagrams | awk '/UdpInDatagrams/ {print $2}')

printf '%-22s %12s %12s\n' "one-way latency (us)" kernel xdpload
printf '%-22s %12s %12s\n' "blocking    p50" "$kb50" "$xb50"
printf '%-22s %12s %12s\n' "            p99" "$kb99" "$xb99"
printf '%-22s %12s %12s\n' "spinning    p50" "$ks50" "$xs50"
printf '%-22s %12s %12s\n' "            p99" "$ks99" "$xs99"
echo
echo "Under xdpload the datagrams went through AF_XDP, not A's kernel:"
grep -E "^PID|frames|udp |^  [0-9]+ +[0-9]+ " "$tmp/xdpload-spinning.stat" | sed 's/^/  /'
echo "  A's kernel UdpInDatagrams during the xdpload spinning run: +$((udp_after - udp_mid))"
echo
echo "Spinning: sockperf --nonblocked on both sides (xdpload's latency profile);"
echo "server on CPU 0, client on CPU 1. More: make bench."
for f in "$tmp"/*.client; do
  grep -q "percentile 50.000" "$f" || { echo "demo: a run failed:"; tail -5 "$f"; exit 1; }
done
