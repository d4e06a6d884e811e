# xdpload-stat and a process family whose first process leaves: a server
# under xdpload forks a worker that keeps the family's sockets and exits
# itself. The family's statistics stay listed, under the worker's pid, with
# its sockets; when the worker exits, its segment is gone. The same
# when the first process is killed (SIGKILL): the worker takes the segment
# when it finds the process gone. Before, the family vanished from
# xdpload-stat with its first process (the worker wrote into a segment
# nobody listed, or that the next start removed as a dead process's).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; netns_down' EXIT
xs="$BUILD/xdpload-stat"
cat >"$tmp/server.py" <<'PY'
import os, signal, socket, sys, time
out, port, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
pid = os.fork()
if pid == 0:
    # The worker: answers datagrams until told to stop (SIGTERM).
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    open(out, "w").write("worker %d\n" % os.getpid())
    while True:
        data, src = u.recvfrom(100)
        u.sendto(b"echo " + data, src)
for _ in range(100):
    if os.path.exists(out):
        break
    time.sleep(0.05)
if how == "kill":
    print("ready", flush=True)
    time.sleep(60)  # (killed by the test)
# The first process leaves the family; the worker stays.
PY
cat >"$tmp/ask.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
print(s.recv(100).decode())
PY
# run HOW PORT: the first process exits (or is killed); checks.
run() {
  local how=$1 port=$2
  rm -f "$tmp/out"
  bg_preload_a python3 "$tmp/server.py" "$tmp/out" "$port" "$how" >"$tmp/first.$how" 2>&1
  first=$BG_PID
  pids+=("$first")
  wait_for 100 test -s "$tmp/out"
  worker=$(awk '{print $2}' "$tmp/out")
  pids+=("$worker")
  if [ "$how" = kill ]; then
    wait_for 50 grep -q ready "$tmp/first.$how"
    kill -9 "$first"
  fi
  wait "$first" 2>/dev/null
  # (A killed first process: the worker finds it gone within its reap period.)
  wait_for 100 has_segment "$worker"
  check "$how: the worker still answers on the stack" \
    bash -c "ip netns exec $NS_B python3 $tmp/ask.py $IP_A $port | grep -qx 'echo hello'"
  in_a "$xs" >"$tmp/stat.$how"
  cat "$tmp/stat.$how"
  check "$how: the family listed under the worker's pid, with its socket" \
    bash -c "grep -q '^PID $worker ' $tmp/stat.$how && grep -q ':$port' $tmp/stat.$how"
  check "$how: nothing listed under the first process's pid" \
    bash -c "! grep -q '^PID $first ' $tmp/stat.$how"
  kill -TERM "$worker"
  for i in $(seq 100); do kill -0 "$worker" 2>/dev/null || break; sleep 0.05; done
  check "$how: once the worker has exited, the family's segment is gone" \
    [ "$(segments_created_by "$first" "$worker")" -eq 0 ]
}
run exit 9811
run kill 9812
finish
