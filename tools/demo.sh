#!/usr/bin/env bash
# make demo: builds a pair of network namespaces joined by a veth pair and
# shows xdpload at work across it. Everything it creates is removed on exit.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export XDPLOAD_BUILD="$top/$build"
. tests/lib/netns.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP)"; exit 1; }
netns_up
echo "namespaces $NS_A ($IF_A $IP_A) and $NS_B ($IF_B $IP_B), joined by a veth pair"
echo
echo "== AF_XDP ports: 200000 numbered frames each way, checked for loss and corruption"
bg_a "$build/tests/xsk_exchange" --iface "$IF_A" --local-ip "$IP_A" --peer-ip "$IP_B" \
  --peer-mac "$MAC_B" --port 9000 --count 200000
pa=$BG_PID
in_b "$build/tests/xsk_exchange" --iface "$IF_B" --local-ip "$IP_B" --peer-ip "$IP_A" \
  --peer-mac "$MAC_A" --port 9000 --count 200000
wait $pa
