# Idle: servers under xdpload (spin 0) with no traffic leave the CPU alone.
# Each is shown accelerated first (its connection counted on the stack, A's
# kernel saw no TCP segment), then left idle: its progress thread sleeps
# (wake-ups counted: at most 100 a second by design while the program's
# own thread sleeps in epoll_wait, a few while nobody waits; a thread that
# spun would count hundreds of thousands) and the program's main thread is
# asleep (its state, sampled). The CPU time of idle servers is a
# measurement: bench/run.sh's idle section reports it.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
secs=${IDLE_SECONDS:-3}
# idle NAME PID: over $secs s, the progress thread sleeps and the program
# is asleep.
idle() {
  local w0 w1 s0 s1 states="" i
  w0=$(xstat_counter "$2" progress_wakeups) s0=$(xstat_counter "$2" blocked_waits)
  for i in $(seq 5); do
    sleep "$(awk -v s="$secs" 'BEGIN {print s / 5}')"
    states="$states$(awk '{print $3}' "/proc/$2/stat")"
  done
  w1=$(xstat_counter "$2" progress_wakeups) s1=$(xstat_counter "$2" blocked_waits)
  echo "$1: over $secs s idle, the progress thread woke $((w1 - w0)) times; the program's waits slept $((s1 - s0)) times; its main thread's states: $states"
  local ok=0
  [ "$w0" -ge 0 ] && [ "$w1" -gt "$w0" ] && [ $((w1 - w0)) -lt $((200 * secs)) ] && ok=1
  check "$1: the progress thread is running and sleeps (woke $((w1 - w0)) times, under 200 a second)" \
    [ $ok -eq 1 ]
  # A wait that sleeps for good (asyncio's epoll_wait(-1)) is counted once,
  # when it starts: the thread's state says it is asleep.
  check "$1: the program's main thread is asleep ($states)" [ "$states" = SSSSS ]
}
# accelerated NAME PID SEGS_BEFORE: sockets on the stack, and A's kernel
# carried no TCP segment since SEGS_BEFORE.
accelerated() {
  local tcp rx segs
  tcp=$(xstat_counter "$2" accelerated_tcp) rx=$(xstat_counter "$2" rx_frames)
  segs=$(( $(kernel_counter "$NS_A" TcpInSegs) - $3 ))
  local ok=0
  [ "$tcp" -ge 2 ] && [ "$rx" -gt 0 ] && [ "$segs" -eq 0 ] && ok=1
  check "$1: accelerated ($tcp TCP sockets on the stack, $rx frames received; A's kernel TcpInSegs +$segs)" \
    [ $ok -eq 1 ]
}

bg_preload_a redis-server --port 6379 --bind "$IP_A" --save "" --appendonly no --protected-mode no \
  --daemonize no --logfile "$tmp/redis.log"
redis=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B redis-cli -h $IP_A ping | grep -q PONG"
segs0=$(kernel_counter "$NS_A" TcpInSegs)
check "redis answers" [ "$(in_b redis-cli -h "$IP_A" set k v)" = OK ]
wait_for 50 has_segment "$redis"
accelerated redis-server "$redis" "$segs0"
idle redis-server "$redis"
kill "$redis"
wait "$redis" 2>/dev/null

bg_preload_a python3 "$TOP/tests/peers/asyncio_echo_server.py" 0.0.0.0 8888
py=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8888' | grep -q 8888"
segs0=$(kernel_counter "$NS_A" TcpInSegs)
check "the asyncio server echoes" in_b python3 "$TOP/tests/peers/asyncio_echo_clients.py" "$IP_A" 8888 2 2
wait_for 50 has_segment "$py"
accelerated "python asyncio server" "$py" "$segs0"
idle "python asyncio server" "$py"
kill "$py"
wait "$py" 2>/dev/null
finish
