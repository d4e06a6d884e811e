# Idle: servers under xdpload (spin 0) with no traffic use under 2% of a CPU
# over 10 s, all their threads (the progress thread included).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
secs=${IDLE_SECONDS:-10}
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() {  # NAME PID
  # Traffic first, so that the stack and its progress thread are running.
  sleep 1
  local t0 t1
  t0=$(ticks "$2")
  sleep "$secs"
  t1=$(ticks "$2")
  local pct=$(( (t1 - t0) * 10000 / (hz * secs) ))
  echo "$1: $((t1 - t0)) ticks in $secs s = $((pct / 100)).$(printf %02d $((pct % 100)))% of a CPU"
  check "$1 idle under 2% of a CPU" [ "$pct" -lt 200 ]
}
bg_preload_a redis-server --port 6379 --bind "$IP_A" --save "" --appendonly no --protected-mode no \
  --daemonize no --logfile "$tmp/redis.log"
redis=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B redis-cli -h $IP_A ping | grep -q PONG"
in_b redis-cli -h "$IP_A" set k v >/dev/null
measure redis-server "$redis"
kill "$redis"
wait "$redis" 2>/dev/null
bg_preload_a python3 "$TOP/tests/peers/asyncio_echo_server.py" 0.0.0.0 8888
py=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8888' | grep -q 8888"
in_b python3 "$TOP/tests/peers/asyncio_echo_clients.py" "$IP_A" 8888 2 2 >/dev/null
measure "python asyncio server" "$py"
finish
