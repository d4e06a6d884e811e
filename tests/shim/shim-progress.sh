# The progress thread moves data while the program does not call into the
# library: a program that queues 200 KB in one send and then sleeps still
# gets it delivered (it takes many ACK-clocked rounds from lwIP's small
# initial window); then, idle with the connection open, the progress thread
# sleeps (its wake-ups counted: a few a second for lwIP's timers; a
# spinning thread would count hundreds of thousands).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b bash -c "nc -l -N 7500 >$tmp/got"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7500' | grep -q 7500"
bg_preload_a python3 -c '
import socket, time, sys
s = socket.create_connection((sys.argv[1], 7500))
s.sendall(b"x" * 200000)
print("queued", flush=True)
time.sleep(4)
' "$IP_B" >"$tmp/out"
sender=$BG_PID
wait_for 50 grep -q queued "$tmp/out"
sleep 1.5
size=$(stat -c %s "$tmp/got")
echo "received while the sender slept: $size bytes"
check "all 200 KB delivered while the program slept" [ "$size" -eq 200000 ]
# Idle: the sleeping program's progress thread sleeps too.
wakeups() { xstat_counter "$sender" progress_wakeups; }
w0=$(wakeups)
sleep 2
w1=$(wakeups)
echo "progress thread wake-ups over 2 s idle: ${w0:-none} -> ${w1:-none}"
check "idle: the progress thread is running and sleeps (under 200 wake-ups a second)" \
  bash -c "[ -n '$w0' ] && [ -n '$w1' ] && [ '$w0' -ge 0 ] && [ '$w1' -gt '$w0' ] && [ $((${w1:-0} - ${w0:-0})) -lt 400 ]"
wait "$sender"
finish
