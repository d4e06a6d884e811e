# The progress thread moves data while the program does not call into the
# library: a program that queues 200 KB in one send and then sleeps still
# gets it delivered (it takes many ACK-clocked rounds from lwIP's small
# initial window), and an idle program costs almost no CPU.
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
# Idle: the sleeping program (its connection open) burns next to no CPU.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pid=$(pgrep -f "sendall" | head -1)
t0=$(ticks "$pid")
sleep 2
t1=$(ticks "$pid")
echo "CPU over 2 s idle: $((t1 - t0)) ticks of $(getconf CLK_TCK)/s"
check "idle: under 2% of a CPU" [ $(( (t1 - t0) * 100 )) -lt $(( 2 * $(getconf CLK_TCK) * 2 )) ]
wait "$sender"
finish
