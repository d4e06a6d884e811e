# A burst of 100,000 64-byte multicast datagrams to a receiver that reads
# slowly (1 ms asleep every 1,000) with a receive buffer large enough for
# the kernel to keep them all: the kernel path loses none, and neither may
# xdpload. Datagrams waiting in a queue used to hold a whole UMEM frame each,
# so the fill ring ran dry and the NIC dropped them; xdpload-stat shows no
# fill-ring-empty drops now.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
burst="python3 $TOP/tests/peers/mcast_burst.py"
group=239.1.2.3
count=100000

run() {  # run NAME [preload]: receiver in A, burst from B
  local name=$1 port=$((7200 + ${#1}))
  if [ "${2:-}" = preload ]; then
    bg_preload_a env XDPLOAD_LOG=1 $burst receive "$IP_A" $group $port $count "$tmp/release" \
      >"$tmp/$name.out" 2>"$tmp/$name.err"
  else
    bg_a $burst receive "$IP_A" $group $port $count >"$tmp/$name.out" 2>"$tmp/$name.err"
  fi
  local receiver=$BG_PID
  wait_for 100 grep -q ready "$tmp/$name.out"
  in_b $burst send "$IP_B" $group $port $count
  # The receiver's counters once it has read everything (or given up).
  if [ "${2:-}" = preload ]; then
    wait_for 300 grep -q '^done' "$tmp/$name.out"
    "$BUILD/xdpload-stat" -p "$receiver" --json >"$tmp/$name.json"
    touch "$tmp/release"
  fi
  wait "$receiver"
  RC=$?
  cat "$tmp/$name.out" "$tmp/$name.err"
}

run kernel
check "kernel path: all $count kept (the test's premise)" \
  bash -c "[ $RC -eq 0 ] && grep -q 'received $count of $count, 0 duplicated, 0 bad' $tmp/kernel.out"
run xdpload preload
check "under xdpload: all $count received, none damaged" \
  bash -c "[ $RC -eq 0 ] && grep -q 'received $count of $count, 0 duplicated, 0 bad' $tmp/xdpload.out"
check "under xdpload: the receiver was accelerated" grep -q "0 tcp and 1 udp sockets accelerated" "$tmp/xdpload.err"
check "under xdpload: waiting datagrams were copied out of their frames" \
  python3 -c "import json; p = json.load(open('$tmp/xdpload.json'))['processes'][0]; assert p['counters']['rx_copies'] > 1000, p['counters']"
finish
