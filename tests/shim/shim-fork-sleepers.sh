# Idle workers stay asleep while another works. Sixteen forked workers each
# hold a connection from B and block in recv() on it (a pre-forking server
# with idle keep-alive clients); B then makes 200 echo round trips on one
# of them. On Linux the fifteen idle workers do not wake. Under xdpload one
# sleeper of the family watches the AF_XDP sockets for frames and wakes
# only the waiters of the sockets the frames are for (Runtime::block_impl's
# frame watch): the idle workers may wake about once a frame between them
# (the watcher among them), not fifteen times. Before, every sleeper polled
# the AF_XDP sockets and every frame woke all of them: nginx with eight
# workers made 1.5-1.8 context switches a request against the kernel's 0.4,
# at 0.5-0.7x its requests a second.
# Counted as the idle workers' voluntary context switches while the round
# trips run, against the number of round trips.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT  # (netns_down ends what runs in the namespaces)
workers=16 trips=200
cat >"$tmp/server.py" <<'PY'
import os, socket, sys
ip, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((ip, port))
l.listen(64)
pids = []
for i in range(workers):
    pid = os.fork()
    if pid == 0:
        c, _ = l.accept()
        l.close()
        while True:
            data = c.recv(100)
            if not data:
                os._exit(0)
            if data.startswith(b"hello"):
                os.write(1, b"busy %d\n" % os.getpid())
            c.sendall(data)
    pids.append(pid)
print("parent", os.getpid(), "workers", " ".join(map(str, pids)), flush=True)
for p in pids:
    os.waitpid(p, 0)
PY
cat >"$tmp/client.py" <<'PY'
import os, socket, sys, time
ip, port, workers, trips, flag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
conns = [socket.create_connection((ip, port), timeout=5) for _ in range(workers)]
time.sleep(0.5)  # (every worker has its connection, and sleeps in recv())
busy = conns[0]
busy.sendall(b"hello")
busy.recv(100)
time.sleep(0.3)
open(flag + ".start", "w").close()
time.sleep(0.3)
ok = 0
for i in range(trips):
    busy.sendall(b"trip %d" % i)
    ok += busy.recv(100) == b"trip %d" % i
open(flag + ".end", "w").close()
# (The workers stay until the count is made: closing would end them.)
for _ in range(300):
    if os.path.exists(flag + ".counted"):
        break
    time.sleep(0.05)
print("echoed", ok, flush=True)
for c in conns:
    c.close()
PY
# Voluntary context switches of the idle workers' main threads (their
# progress threads wake on timers of their own); "gone" if one has ended.
idle_switches() {  # label
  local p n=0 busy
  busy=$(awk '/^busy/ {print $2}' "$tmp/$1.out")
  for p in $(sed -n 's/^parent [0-9]* workers //p' "$tmp/$1.out"); do
    [ "$p" = "$busy" ] && continue
    [ -r /proc/"$p"/status ] || { echo gone; return; }
    n=$((n + $(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/"$p"/status)))
  done
  echo $n
}
run() {  # label command...
  local label=$1; shift
  rm -f "$tmp/flag.start" "$tmp/flag.end" "$tmp/flag.counted"
  "$@" python3 "$tmp/server.py" "$IP_A" 7410 $workers >"$tmp/$label.out" 2>"$tmp/$label.err" &
  local server=$!
  wait_for 50 bash -c "grep -q workers $tmp/$label.out"
  in_b timeout 60 python3 "$tmp/client.py" "$IP_A" 7410 $workers $trips "$tmp/flag" >"$tmp/$label.client" 2>&1 &
  local client=$!
  wait_for 100 test -e "$tmp/flag.start"
  local s0 s1
  s0=$(idle_switches "$label")
  wait_for 300 test -e "$tmp/flag.end"
  s1=$(idle_switches "$label")
  touch "$tmp/flag.counted"
  if [ "$s0" = gone ] || [ "$s1" = gone ]; then
    eval "idle_$label=gone"
  else
    eval "idle_$label=\$((s1 - s0))"
  fi
  wait "$client"
  # (The workers end with their connections; the parent with them.)
  for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server" 2>/dev/null
  wait "$server" 2>/dev/null
}
run kernel in_a
run xdpload PRELOAD_A XDPLOAD_LOG=1
cat "$tmp/kernel.client" "$tmp/xdpload.client"
echo "idle workers' wake-ups during $trips round trips: kernel $idle_kernel, xdpload $idle_xdpload"
check "every round trip echoed on the kernel path" grep -qx "echoed $trips" "$tmp/kernel.client"
check "every round trip echoed under xdpload" grep -qx "echoed $trips" "$tmp/xdpload.client"
# (A worker gone before the count, or a negative difference: nothing was
# measured, which fails.)
measured_at_most() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -le "$2" ]; }
check "the idle workers slept on: at most 3 wake-ups between them a round trip ($idle_xdpload for $trips)" \
  measured_at_most "$idle_xdpload" $((3 * trips))
finish
