# xdpload-stat against a running sockperf server under xdpload: the process
# is listed (pid, command, interface, queue, mode), its sockets appear with
# their state and path, counters grow with traffic, --json parses and agrees
# with the text, --watch redraws; a process's segment goes with it, killed
# (SIGKILL) or ending normally.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
xs="$BUILD/xdpload-stat"
printf 'U:%s:11111\nT:%s:11112\n' "$IP_A" "$IP_A" >"$tmp/feed"
bg_a "$TOP/tools/xdpload" --iface "$IF_A" -- sockperf sr -f "$tmp/feed"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :11112' | grep -q 11112"
wait_for 50 has_segment "$server"

# json PID EXPR: evaluates a python expression over the process's entry `p`.
json() {
  "$xs" -p "$1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); p=d['processes'][0]; print($2)"
}
rx0=$(json "$server" "p['counters']['rx_frames']")
in_b timeout 30 sockperf pp -i "$IP_A" -p 11111 -t 3 -m 64 >/dev/null 2>&1 &
client=$!
# Readings taken while the traffic flows, with no wait for the once-a-second
# refresh: each asks for a fresh one, so two readings 0.2 s apart differ,
# and every figure in a reading is of one instant: every frame received or
# dropped was steered by the XDP program (the rest are still in the rings,
# fewer than the UMEM's frames), and lwIP's inputs are frames received.
for i in $(seq 100); do
  [ "$(json "$server" "p['counters']['rx_frames']")" -gt $((rx0 + 100)) ] && break
  sleep 0.05
done
for i in 1 2 3; do
  json "$server" "(p['counters'], p['frames'])" >"$tmp/live$i"
  sleep 0.2
done
check "readings during traffic are fresh and of one instant" python3 -c "
import ast
readings = [ast.literal_eval(open('$tmp/live%d' % i).read()) for i in (1, 2, 3)]
for c, frames in readings:
    drops = c['kernel_rx_dropped'] + c['rx_ring_full'] + c['fill_ring_empty']
    assert c['rx_frames'] + drops <= c['steer_redirected'] <= c['rx_frames'] + drops + frames, c
    assert c['tcp_in_segs'] + c['udp_in_datagrams'] <= c['rx_frames'], c
assert readings[0][0]['rx_frames'] < readings[1][0]['rx_frames'] < readings[2][0]['rx_frames'], readings"
wait "$client"
in_b timeout 30 sockperf pp -i "$IP_A" -p 11112 --tcp -t 2 -m 64 >/dev/null 2>&1 &
client=$!
sleep 1.5  # the socket table is refreshed about once a second
in_a "$xs" >"$tmp/text"
"$xs" -p "$server" --json >"$tmp/json"
"$xs" >"$tmp/root-text"
"$xs" --all >"$tmp/all-text"
wait "$client"
cat "$tmp/text"
check "from another network namespace: not listed, said why" \
  bash -c "! grep -q '^PID $server ' $tmp/root-text && grep -q 'xdpload process.* in other network namespaces not shown (--all shows them)' $tmp/root-text"
check "--all: listed, with its namespace" \
  grep -qE "^PID $server sockperf .* network namespace net:\[[0-9]+\]$" "$tmp/all-text"
check "text: the process line (pid, command, interface, queue, mode)" \
  grep -qE "^PID $server sockperf +$IF_A queues 0-3 of 4 (driver|skb)/(copy|zero-copy)" "$tmp/text"
check "text: the UDP socket, accelerated" grep -qE "udp .*$IP_A:11111 .*UNCONN.*xdpload" "$tmp/text"
check "text: the TCP listener, accelerated" grep -qE "tcp .*$IP_A:11112 .*LISTEN.*xdpload" "$tmp/text"
check "text: the TCP connection from B, established" \
  grep -qE "tcp .*$IP_A:11112 +$IP_B:[0-9]+ +ESTAB.*xdpload" "$tmp/text"
check "text: a row per queue" bash -c "grep -q 'queue *rx-frames *tx-frames' $tmp/text && [ \$(grep -cE '^  [0-3] +[0-9]+ +[0-9]+' $tmp/text) -eq 4 ]"
check "text: counters section" bash -c "grep -q 'frames   rx' $tmp/text && grep -q 'kicks' $tmp/text && grep -q 'retransmits' $tmp/text"
check "--json parses" python3 -c "import json; json.load(open('$tmp/json'))"
python3 - "$tmp/json" "$server" <<'PY' >"$tmp/jcheck"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["processes"][0]
assert p["pid"] == int(sys.argv[2]), p["pid"]
assert p["command"] == "sockperf" and p["iface"] == "xa0" and p["queue_list"] == "0-3"
assert p["netns"].startswith("net:[") and p["other_netns"] is True, (p["netns"], p["other_netns"])
for k in ("rx_frames", "tx_frames", "rx_bytes", "tx_bytes", "kicks", "tcp_retransmits",
          "fill_ring_empty", "tx_ring_full", "kernel_rx_dropped"):
    assert k in p["counters"], k
assert [q["queue"] for q in p["queues"]] == [0, 1, 2, 3], p["queues"]
for q in p["queues"]:
    for k in ("rx_frames", "tx_frames", "steered", "fill_ring_empty", "rx_ring_full",
              "kernel_rx_dropped"):
        assert k in q, k
assert sum(q["rx_frames"] for q in p["queues"]) <= p["counters"]["rx_frames"]
assert any(s["proto"] == "udp" and s["local"].endswith(":11111") and s["path"] == "xdpload"
           for s in p["sockets"]), p["sockets"]
# The summary agrees with the table: every accelerated TCP socket listed
# (listener and accepted connection) is counted.
listed = sum(1 for s in p["sockets"] if s["proto"] == "tcp" and s["path"] == "xdpload")
assert p["counters"]["accelerated_tcp"] >= listed >= 2, (p["counters"]["accelerated_tcp"], listed)
print("json ok")
PY
cat "$tmp/jcheck"
check "--json: pid, command, interface, counters and sockets" grep -qx "json ok" "$tmp/jcheck"
rx1=$(json "$server" "p['counters']['rx_frames']")
udp_in=$(json "$server" "p['counters']['udp_in_datagrams']")
echo "rx frames $rx0 -> $rx1; udp in $udp_in"
check "counters grow with traffic" [ "$rx1" -gt $((rx0 + 1000)) ]
check "lwIP's UDP counter counts the round trips" [ "$udp_in" -gt 1000 ]
# Once the traffic has stopped and the figures are refreshed (about once a
# second), the counters agree: every frame steered to the sockets was
# received or counted as dropped by the kernel, and lwIP's TCP and UDP
# inputs are frames received.
sleep 1.5
json "$server" "p['counters']" >"$tmp/counters"
cat "$tmp/counters"
check "counters agree: steered = received + kernel drops; tcp in + udp in <= frames" python3 -c "
import ast; c = ast.literal_eval(open('$tmp/counters').read())
drops = c['kernel_rx_dropped'] + c['rx_ring_full'] + c['fill_ring_empty']
assert c['rx_frames'] <= c['steer_redirected'] <= c['rx_frames'] + drops, c
assert c['tcp_in_segs'] + c['udp_in_datagrams'] <= c['rx_frames'], c
assert c['tcp_in_segs'] > 1000 and c['udp_in_datagrams'] > 1000, c"
# --watch: redrawn again and again (4 redraws waited for, not timed), and
# still running until stopped.
bg_a "$xs" --watch 0.2 >"$tmp/watch" 2>&1
watcher=$BG_PID
redraws() { [ "$(grep -c "PID $server" "$tmp/watch")" -ge 4 ]; }
until redraws; do sleep 0.1; done
check "--watch redraws until stopped ($(grep -c "PID $server" "$tmp/watch") redraws so far)" kill -0 "$watcher"
kill "$watcher"
wait "$watcher" 2>/dev/null

# A SIGKILLed process cannot remove anything: the kernel removes its
# segment with it (its last attachment).
check "the running process's segment exists ($(segments_created_by "$server"))" \
  [ "$(segments_created_by "$server")" -eq 1 ]
kill -9 "$server"
wait "$server" 2>/dev/null
check "the killed process left no segment" [ "$(segments_created_by "$server")" -eq 0 ]
"$xs" >"$tmp/after"
cat "$tmp/after"
"$xs" --json >"$tmp/after.json"
check "--json afterwards: not listed" \
  python3 -c "import json; d=json.load(open('$tmp/after.json')); assert all(p['pid'] != $server for p in d['processes'])"

# A normal exit: the same.
in_a "$TOP/tools/xdpload" --iface "$IF_A" -- python3 -c "
import socket, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'x', ('$IP_B', 9))
print(os.getpid())
print(sum(1 for l in open('/proc/sysvipc/shm').readlines()[1:] if int(l.split()[4]) == os.getpid()))" >"$tmp/normal"
cat "$tmp/normal"
pid=$(head -1 "$tmp/normal")
check "a running process has a segment" bash -c "[ \"\$(sed -n 2p $tmp/normal)\" = 1 ]"
check "gone at a normal exit" [ "$(segments_created_by "$pid")" -eq 0 ]
finish
