# Twenty-four pre-forked workers blocked in accept() on the listener they
# share (Apache's prefork, gunicorn's sync workers, a Python forking
# server), half of them then killed, forty connections one after the other
# from B: each is served once, at once, as on the kernel path, and a
# connection wakes one accept() sleeper, as Linux's does
# (WaitQueue::wake_exclusive), not every worker for all but one to find the
# queue empty. Counted as the wake-ups the family sends to its other
# processes (remote_wakes): one per sleeping worker and connection before.
# A dead worker's turn passes to the next.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT  # (netns_down ends what runs in the namespaces)
workers=24 connections=40
cat >"$tmp/server.py" <<'PY'
import os, signal, socket, sys
ip, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((ip, port))
l.listen(64)
pids = []
for i in range(workers):
    pid = os.fork()
    if pid == 0:
        served = 0
        def report(*_):
            os.write(1, b"worker %d served %d\n" % (os.getpid(), served))
            os._exit(0)
        signal.signal(signal.SIGTERM, report)
        while True:
            c, _ = l.accept()
            data = c.recv(100)
            c.sendall(data.upper())
            c.close()
            served += 1
    pids.append(pid)
print("parent", os.getpid(), "workers", " ".join(map(str, pids)), flush=True)
signal.signal(signal.SIGTERM, lambda *_: None)
signal.pause()
for p in pids:
    os.kill(p, signal.SIGTERM)
for p in pids:
    os.waitpid(p, 0)
PY
cat >"$tmp/client.py" <<'PY'
import socket, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for i in range(n):
    c = socket.create_connection((ip, port), timeout=5)
    c.sendall(b"hello %d" % i)
    got = c.recv(100)
    ok += got == b"HELLO %d" % i
    c.close()
print("echoed", ok)
PY
# How many times the server's workers (every thread) went to sleep: the
# voluntary context switches of the children of `pid`.
switches() {
  local t n=0
  for t in $(pgrep -P "$1"); do
    n=$((n + $(cat /proc/"$t"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s+0}')))
  done
  echo $n
}
run() {  # label command...: the server under `command`, the connections; $tmp/$label.*
  local label=$1; shift
  "$@" python3 "$tmp/server.py" "$IP_A" 7400 $workers >"$tmp/$label.out" 2>"$tmp/$label.err" &
  wait_for 50 bash -c "grep -q workers $tmp/$label.out"
  server=$(awk '/^parent/ {print $2}' "$tmp/$label.out")
  sleep 0.5  # every worker asleep in accept()
  # Half the workers killed asleep in accept() (a crash, the OOM killer):
  # the connections go to the others at once, never to a dead one's turn.
  local w killed=0
  for w in $(sed -n 's/^parent [0-9]* workers //p' "$tmp/$label.out"); do
    [ $killed -lt $((workers / 2)) ] && kill -KILL "$w" && killed=$((killed + 1))
  done
  # (The family's counters are its first process's: the parent's.)
  [ "$label" = xdpload ] && r0=$(xstat_counter "$server" remote_wakes)
  local s0
  s0=$(switches "$server")
  in_b timeout 60 python3 "$tmp/client.py" "$IP_A" 7400 $connections >"$tmp/$label.client" 2>&1
  sleep 0.3
  eval "switches_$label=\$((\$(switches \"$server\") - s0))"
  if [ "$label" = xdpload ]; then
    wakes=$(($(xstat_counter "$server" remote_wakes) - r0))
  fi
  kill -TERM "$server"  # (it ends its workers, which say what they served)
  wait 2>/dev/null
}
run kernel in_a
run xdpload PRELOAD_A XDPLOAD_LOG=2
cat "$tmp/kernel.client" "$tmp/xdpload.client"
served() { awk '/served/ {n += $4; w += $4 > 0} END {print n+0, w+0}' "$1"; }
echo "kernel: served (total, workers) $(served "$tmp/kernel.out"); xdpload: $(served "$tmp/xdpload.out")"
echo "xdpload: $wakes wake-ups sent to other processes of the family for $connections connections"
echo "the workers slept $switches_kernel times on the kernel path, $switches_xdpload under xdpload"
check "every connection echoed on the kernel path" grep -qx "echoed $connections" "$tmp/kernel.client"
check "every connection echoed under xdpload" grep -qx "echoed $connections" "$tmp/xdpload.client"
check "each connection accepted once, on both paths" \
  [ "$(served "$tmp/xdpload.out" | cut -d' ' -f1)" = $connections -a "$(served "$tmp/kernel.out" | cut -d' ' -f1)" = $connections ]
check "the workers shared the stack" [ "$(grep -c 'shares the stack' "$tmp/xdpload.err")" -eq $workers ]
check "the killed workers served nothing (both paths)" \
  [ "$(served "$tmp/xdpload.out" | cut -d' ' -f2)" -le $((workers / 2)) -a "$(served "$tmp/kernel.out" | cut -d' ' -f2)" -le $((workers / 2)) ]
# The accepting worker's wake-up, and the one its data may need when
# another process polled the stack (about two a connection); a wake-up
# per sleeping worker and connection would be twelve.
check "one worker woken a connection: at most 4 wake-ups a connection ($wakes for $connections)" \
  [ "$wakes" -le $((4 * connections)) ]
finish
