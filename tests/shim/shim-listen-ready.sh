# A client that connects the moment a server under xdpload listens gets a
# working connection: listen() readies the accelerated listener before the
# kernel's appears, so no SYN lands on the kernel listener just before the
# port's steering starts (that connection would be reset). The client in B
# retries connect() as fast as it can while A's server starts (the stack
# itself starts in that listen(): XDP attach, UMEM), then echoes a line.
# Three rounds: a bound listener, then one listen() binds itself.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
l = socket.socket()
if port:
    l.bind(("0.0.0.0", port))
l.listen(8)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(l.getsockname()[1]))
__import__("os").rename(sys.argv[2] + ".tmp", sys.argv[2])
c, _ = l.accept()
c.sendall(c.recv(100))
c.close()
PY
cat >"$tmp/client.py" <<'PY'
import socket, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
deadline, tries = time.monotonic() + 20, 0
while True:
    s = socket.socket()
    tries += 1
    try:
        s.connect((ip, port))
        break
    except ConnectionRefusedError:
        s.close()
        if time.monotonic() > deadline:
            sys.exit("never connected")
s.settimeout(5)
s.sendall(b"ready\n")
try:
    print(s.recv(100).decode().strip(), tries, flush=True)
except OSError as e:
    print("error", e.errno, tries, flush=True)
PY

round=0
for port in 7400 7401 0; do
  round=$((round + 1))
  rm -f "$tmp/port"
  if [ "$port" = 0 ]; then
    # The port is only known once the server has it: B's client waits for
    # the file, then races as before.
    bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/server.py" 0 "$tmp/port" 2>"$tmp/server.err"
    server=$BG_PID
    wait_for 100 test -s "$tmp/port"
    target=$(cat "$tmp/port")
    # The listener is up by now; what matters here is that it is the
    # stack's: the kernel's listener holds the same port.
    out=$(in_b timeout 30 python3 "$tmp/client.py" "$IP_A" "$target")
  else
    in_b timeout 30 python3 "$tmp/client.py" "$IP_A" "$port" >"$tmp/out" &
    client=$!
    bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/server.py" "$port" "$tmp/port" 2>"$tmp/server.err"
    server=$BG_PID
    wait "$client"
    out=$(cat "$tmp/out")
  fi
  timeout 10 tail --pid="$server" -f /dev/null
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  check "round $round (port $port): the first connection echoes ($out)" [ "${out%% *}" = ready ]
  rx=$(exit_rx_bytes "$tmp/server.err")
  check "round $round: the server's stack received it (${rx:-no} bytes)" [ "${rx:-0}" -gt 0 ]
done
finish
