# A listener or UDP socket handed to an exec'd program while its parent
# keeps it (systemd-style socket activation, nginx's binary upgrade, inetd's
# "wait" services): on Linux it is one socket for both, and the new program
# serves it. The parent serves one client itself, then starts the new
# program with the socket (by fork and exec, by Python's subprocess, which
# uses vfork, or by posix_spawn with a dup2 file action), waits for it to serve three clients, and serves one
# more itself. The same transcript is wanted on the kernel path and under
# xdpload, for TCP and UDP, both ways of starting the program.
# Before: the socket stayed on the stack for the parent, and the new program
# (a kernel socket that the port's traffic no longer reached) got nothing:
# the clients after the first timed out. Now the socket becomes the
# kernel's for the whole family at the exec, said once at the default
# level; the parent's first client shows it was on the stack before.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
# parent.py PROTO HOW PORT [GO]: HOW is fork (fork, dup2 onto 3, exec),
# spawn (subprocess.Popen with pass_fds: vfork, then exec) or posix
# (posix_spawn with a dup2 onto 3: glibc execs inside libc). With GO, the
# parent waits for that file to exist before it starts the program.
cat >"$tmp/parent.py" <<'PY'
import os, socket, subprocess, sys, time
proto, how, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
go = sys.argv[4] if len(sys.argv) > 4 else None
served = os.path.join(os.path.dirname(sys.argv[0]), "served.py")
placeholder = open("/dev/null")  # descriptor 3: the socket's is 4, dup2'd onto 3 by fork
if proto == "tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
print("listening", flush=True)

def serve(sock, who):
    if proto == "tcp":
        c, _ = sock.accept()
        line = c.recv(100)
        c.sendall(line + b" served by " + who)
        c.close()
    else:
        d, peer = sock.recvfrom(100)
        sock.sendto(d + b" served by " + who, peer)

serve(s, b"parent")
while go and not os.path.exists(go):
    time.sleep(0.05)
if how == "fork":
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 3)  # (inheritable, as socket activation passes it)
        os.execv(sys.executable, [sys.executable, served, proto, "3"])
    _, status = os.waitpid(pid, 0)
elif how == "posix":
    # Another accelerated socket, inheritable but closed by a file action:
    # the new program does not get it, and it stays on the stack.
    extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    extra.bind(("0.0.0.0", port + 1000))
    os.set_inheritable(extra.fileno(), True)
    pid = os.posix_spawn(sys.executable, [sys.executable, served, proto, "3"], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, s.fileno(), 3),
                                       (os.POSIX_SPAWN_CLOSE, extra.fileno())])
    _, status = os.waitpid(pid, 0)
else:
    child = subprocess.Popen([sys.executable, served, proto, str(s.fileno())],
                             pass_fds=(s.fileno(),))
    status = child.wait()
print("child ended", status, flush=True)
serve(s, b"parent again")
print("done", flush=True)
PY
# served.py PROTO FD: the exec'd program; serves three clients on FD.
cat >"$tmp/served.py" <<'PY'
import socket, sys
proto, fd = sys.argv[1], int(sys.argv[2])
s = socket.socket(fileno=fd)
print("ready", flush=True)
for _ in range(3):
    if proto == "tcp":
        c, _ = s.accept()
        line = c.recv(100)
        c.sendall(line + b" served by the new program")
        c.close()
    else:
        d, peer = s.recvfrom(100)
        s.sendto(d + b" served by the new program", peer)
PY
# client.py PROTO HOST PORT FIRST LAST [CONNECTED]: one exchange per
# number; CONNECTED: a file made once the (single) connection is made.
cat >"$tmp/client.py" <<'PY'
import socket, sys
proto, host, port, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
connected = sys.argv[6] if len(sys.argv) > 6 else None
for i in range(first, last + 1):
    msg = b"client %d" % i
    try:
        if proto == "tcp":
            c = socket.create_connection((host, port), timeout=3)
            if connected:
                open(connected, "w").close()
            c.sendall(msg)
            got = c.recv(200)
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(3)
            c.sendto(msg, (host, port))
            got = c.recv(200)
        print(got.decode(), flush=True)
    except OSError as e:
        print(f"client {i}: {type(e).__name__}", flush=True)
PY
# run NAME PROTO HOW PORT [env...]: the transcript in $tmp/NAME (the
# parent's output, then the clients').
run() {
  local name=$1 proto=$2 how=$3 port=$4
  shift 4
  ip netns exec "$NS_A" env "$@" python3 "$tmp/parent.py" "$proto" "$how" "$port" \
    >"$tmp/$name.parent" 2>"$tmp/$name.err" &
  local parent=$!
  wait_for 50 grep -q listening "$tmp/$name.parent"
  in_b python3 "$tmp/client.py" "$proto" "$IP_A" "$port" 1 1 >"$tmp/$name.clients" 2>&1
  wait_for 50 grep -q ready "$tmp/$name.parent"
  in_b python3 "$tmp/client.py" "$proto" "$IP_A" "$port" 2 5 >>"$tmp/$name.clients" 2>&1
  # (A parent still waiting for its last client is stopped: the
  # transcript then lacks its lines.)
  wait_for 50 grep -q done "$tmp/$name.parent" || kill "$parent" 2>/dev/null
  wait "$parent"
  cat "$tmp/$name.parent" "$tmp/$name.clients" >"$tmp/$name"
  echo "--- $name"
  cat "$tmp/$name" "$tmp/$name.err"
}
port=9870
for proto in tcp udp; do
  for how in fork spawn posix; do
    port=$((port + 1))
    run "kernel-$proto-$how" "$proto" "$how" "$port"
    port=$((port + 1))
    run "xdpload-$proto-$how" "$proto" "$how" "$port" \
      LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2
    check "$proto, $how: the kernel path serves client 1 and 5 in the parent, 2-4 in the new program" \
      bash -c "grep -qx 'client 1 served by parent' '$tmp/kernel-$proto-$how' &&
               [ \$(grep -c 'served by the new program' '$tmp/kernel-$proto-$how') -eq 3 ] &&
               grep -qx 'client 5 served by parent again' '$tmp/kernel-$proto-$how'"
    check "$proto, $how: under xdpload the same transcript as on the kernel path" \
      diff "$tmp/kernel-$proto-$how" "$tmp/xdpload-$proto-$how"
    check "$proto, $how: the socket was the stack's before the exec" \
      grep -q "$(echo "$proto" | tr a-z A-Z) socket at descriptor [0-9]* (local port $port) is the kernel's from now on" \
      "$tmp/xdpload-$proto-$how.err"
    check "$proto, $how: the hand-over said once, at the default level" \
      [ "$(grep -c "is inherited by the program this process execs: the socket is the kernel's" \
        "$tmp/xdpload-$proto-$how.err")" -eq 1 ]
    [ "$how" = posix ] &&
      check "$proto, posix: a socket a file action closes for the new program stays on the stack" \
        bash -c "! grep -q 'local port $((port + 1000))) is the kernel' '$tmp/xdpload-$proto-$how.err'"
  done
done

# A connection waiting on the listener at the exec (inetd's shape: the
# parent does not accept it). It cannot move to the kernel's queue (Linux
# would give it to the new program): it is reset and said, never left to
# wait for ever on a stack listener nobody accepts from. The new program
# serves the connections that come after.
port=$((port + 1))
ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
  python3 "$tmp/parent.py" tcp spawn "$port" "$tmp/go" >"$tmp/queued.parent" 2>"$tmp/queued.err" &
parent=$!
wait_for 50 grep -q listening "$tmp/queued.parent"
in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 1 1 >"$tmp/queued.clients" 2>&1
in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 9 9 "$tmp/q.connected" >"$tmp/queued.q" 2>&1 &
waiting=$!
wait_for 50 test -f "$tmp/q.connected"
touch "$tmp/go"
wait_for 50 grep -q ready "$tmp/queued.parent"
in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 2 5 >>"$tmp/queued.clients" 2>&1
wait "$waiting"
wait_for 50 grep -q done "$tmp/queued.parent" || kill "$parent" 2>/dev/null
wait "$parent"
echo "--- queued"
cat "$tmp/queued.parent" "$tmp/queued.q" "$tmp/queued.clients" "$tmp/queued.err"
check "the connection waiting at the exec is reset, not left waiting" \
  grep -qx "client 9: ConnectionResetError" "$tmp/queued.q"
check "the reset is said" grep -q "1 connection(s) waiting on the listener are reset" "$tmp/queued.err"
check "the new program serves the connections after it, the parent the last" \
  bash -c "[ \$(grep -c 'served by the new program' '$tmp/queued.clients') -eq 3 ] &&
           grep -qx 'client 5 served by parent again' '$tmp/queued.clients'"

# A worker of the family asleep in accept() (recvfrom()) while its parent
# execs with the socket: the worker's call goes on in the kernel and serves
# the next client, as on Linux. (Before, the call ended with EINVAL, or
# slept on a stack socket the port's traffic no longer reached.)
cat >"$tmp/worker.py" <<'PY'
import os, socket, sys, time
proto, port = sys.argv[1], int(sys.argv[2])
if proto == "tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
if os.fork() == 0:
    try:
        if proto == "tcp":
            c, _ = s.accept()
            c.sendall(c.recv(100) + b" served by the worker")
            c.close()
        else:
            d, peer = s.recvfrom(100)
            s.sendto(d + b" served by the worker", peer)
        print("worker served", flush=True)
    except OSError as e:
        print("worker:", type(e).__name__, e, flush=True)
    os._exit(0)
time.sleep(1)  # (the worker asleep in its call)
os.set_inheritable(s.fileno(), True)
print("exec", flush=True)
os.execv("/bin/sleep", ["sleep", "2"])
PY
for proto in tcp udp; do
  for mode in kernel xdpload; do
    port=$((port + 1))
    if [ $mode = kernel ]; then
      ip netns exec "$NS_A" python3 "$tmp/worker.py" $proto $port >"$tmp/w-$mode-$proto" 2>&1 &
    else
      ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
        python3 "$tmp/worker.py" $proto $port >"$tmp/w-$mode-$proto" 2>&1 &
    fi
    parent=$!
    wait_for 50 grep -q exec "$tmp/w-$mode-$proto"
    sleep 0.3
    in_b python3 "$tmp/client.py" $proto "$IP_A" "$port" 1 1 >"$tmp/w-$mode-$proto.client" 2>&1
    wait "$parent"
    echo "--- worker $mode $proto"
    cat "$tmp/w-$mode-$proto" "$tmp/w-$mode-$proto.client"
  done
  check "$proto: a worker asleep in its call when the parent execs serves the next client (kernel path)" \
    grep -qx "client 1 served by the worker" "$tmp/w-kernel-$proto.client"
  check "$proto: ... and under xdpload" grep -qx "client 1 served by the worker" "$tmp/w-xdpload-$proto.client"
done
finish
