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
. "$(dirname "$0")/../lib/broker.sh"
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
served = os.environ.get("XL_SERVED") or os.path.join(os.path.dirname(sys.argv[0]), "served.py")
served_arg = os.environ.get("XL_SERVED_ARG")  # (served-wait.py's way to wait)
env = dict(os.environ)
if os.environ.get("XL_SERVED_UNLOADED"):
    env.pop("LD_PRELOAD", None)  # the new program without the library
def program(fd):
    args = [served, fd, served_arg] if served_arg else [served, proto, fd]
    if os.environ.get("XL_SERVED_SH"):  # through a shell's exec
        return ["/bin/sh", "-c", 'exec "$0" "$@"', sys.executable] + args
    if os.environ.get("XL_SERVED_PATH"):  # found on PATH: execs that fail first
        return ["python3"] + args
    return [sys.executable] + args
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
        args = program("3")
        os.execvpe(args[0], args, env)
    _, status = os.waitpid(pid, 0)
elif how == "posix":
    # Another accelerated socket, inheritable but closed by a file action:
    # the new program does not get it, and it stays on the stack.
    extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    extra.bind(("0.0.0.0", port + 1000))
    os.set_inheritable(extra.fileno(), True)
    pid = os.posix_spawn(sys.executable, program("3"), env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, s.fileno(), 3),
                                       (os.POSIX_SPAWN_CLOSE, extra.fileno())])
    _, status = os.waitpid(pid, 0)
else:
    child = subprocess.Popen(program(str(s.fileno())), pass_fds=(s.fileno(),), env=env)
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
            c = socket.create_connection((host, port), timeout=10)
            if connected:
                open(connected, "w").close()
            c.sendall(msg)
            got = c.recv(200)
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(10)
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

# Connections waiting on the listener at the exec (inetd's shape: the
# parent does not accept them). On Linux the new program accepts them
# first; under xdpload they go to it with their state (XDPLOAD_PASSED_
# CONNECTIONS, shim/socket/passed_connections.h), by each way of starting
# it. The new program serves the two waiting connections and the one after;
# the parent the last. Its accept() comes once select(), poll() (one poll
# object reused, as Python's is) or epoll says the listener is ready
# (served-wait.py's second argument), or blocks.
# Before: the waiting connections were reset (said).
cat >"$tmp/served-wait.py" <<'PY'
import select, socket, sys
fd, how = int(sys.argv[1]), sys.argv[2]
s = socket.socket(fileno=fd)
print("ready", flush=True)
if how == "epoll":
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN)
elif how == "poll":  # one poll object, its array reused
    po = select.poll()
    po.register(s.fileno(), select.POLLIN)
for _ in range(3):
    if how == "select":
        assert select.select([s], [], [], 10)[0] == [s]
    elif how == "poll":
        assert po.poll(10000) == [(s.fileno(), select.POLLIN)]
    elif how == "epoll":
        assert [fd for fd, _ in ep.poll(10)] == [s.fileno()]
    c, _ = s.accept()
    line = c.recv(100)
    c.sendall(line + b" served by the new program")
    c.close()
PY
queued() {  # NAME HOW WAIT PORT [env...]
  local name=$1 how=$2 wait=$3 port=$4
  shift 4
  rm -f "$tmp/go" "$tmp/q8.connected" "$tmp/q9.connected"
  ip netns exec "$NS_A" ${AS_NOBODY:+setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    --ambient-caps=-all --bounding-set=-all} env "$@" XL_SERVED="$tmp/served-wait.py" XL_SERVED_ARG="$wait" \
    python3 "$tmp/parent.py" tcp "$how" "$port" "$tmp/go" >"$tmp/$name.parent" 2>"$tmp/$name.err" &
  local parent=$!
  wait_for 50 grep -q listening "$tmp/$name.parent"
  in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 1 1 >"$tmp/$name.clients" 2>&1
  in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 8 8 "$tmp/q8.connected" >"$tmp/$name.q8" 2>&1 &
  local w8=$!
  wait_for 50 test -f "$tmp/q8.connected"
  in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 9 9 "$tmp/q9.connected" >"$tmp/$name.q9" 2>&1 &
  local w9=$!
  wait_for 50 test -f "$tmp/q9.connected"
  sleep 0.2  # (their lines sent, waiting on the listener)
  touch "$tmp/go"
  wait_for 50 grep -q ready "$tmp/$name.parent"
  wait "$w8" "$w9"
  in_b python3 "$tmp/client.py" tcp "$IP_A" "$port" 2 "${QUEUED_LAST:-3}" >>"$tmp/$name.clients" 2>&1
  wait_for 50 grep -q done "$tmp/$name.parent" || kill "$parent" 2>/dev/null
  wait "$parent"
  cat "$tmp/$name.parent" "$tmp/$name.q8" "$tmp/$name.q9" "$tmp/$name.clients" >"$tmp/$name"
  echo "--- $name"
  cat "$tmp/$name" "$tmp/$name.err"
}
for how in fork spawn posix; do
  waits="accept poll epoll"
  [ $how = fork ] && waits="$waits select"
  for wait in $waits; do
    port=$((port + 1))
    queued "queued-kernel-$how-$wait" "$how" "$wait" "$port"
    port=$((port + 1))
    queued "queued-xdpload-$how-$wait" "$how" "$wait" "$port" \
      LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2
    check "waiting at a $how exec ($wait): the kernel path's new program serves both" \
      bash -c "grep -qx 'client 8 served by the new program' '$tmp/queued-kernel-$how-$wait' &&
               grep -qx 'client 9 served by the new program' '$tmp/queued-kernel-$how-$wait'"
    check "waiting at a $how exec ($wait): under xdpload the same transcript" \
      diff "$tmp/queued-kernel-$how-$wait" "$tmp/queued-xdpload-$how-$wait"
    check "waiting at a $how exec ($wait): the two went to the new program with their state" \
      grep -q "2 connection(s) waiting on it go to the program this process execs" \
      "$tmp/queued-xdpload-$how-$wait.err"
  done
done

# Through a shell that execs the program (the variable goes on with the
# queue), and a program found on PATH (Python's subprocess tries each
# directory: the execs that fail keep the queue for the next).
for way in SH PATH; do
  how=fork
  [ $way = PATH ] && how=spawn
  port=$((port + 1))
  export XL_SERVED_$way=1
  queued "queued-kernel-$way" "$how" accept "$port"
  port=$((port + 1))
  queued "queued-xdpload-$way" "$how" accept "$port" LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
    XDPLOAD_LOG=2
  unset XL_SERVED_$way
  check "waiting at an exec, new program started through $way: the kernel path serves both" \
    grep -qx 'client 9 served by the new program' "$tmp/queued-kernel-$way"
  check "waiting at an exec, new program started through $way: under xdpload the same transcript" \
    diff "$tmp/queued-kernel-$way" "$tmp/queued-xdpload-$way"
done

# As nobody with no capability through the broker (TCP_REPAIR needs
# CAP_NET_ADMIN: the broker builds each connection and passes it back).
chmod 755 "$tmp"
printf 'allow user root\nallow user nobody ports 9950-9959\n' >"$tmp/policy"
broker_up --policy "$tmp/policy"
AS_NOBODY=1 queued "queued-nobody" spawn accept 9950 LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
  XDPLOAD_LOG=2
check "as nobody through the broker: the same transcript as on the kernel path" \
  diff "$tmp/queued-kernel-spawn-accept" "$tmp/queued-nobody"
check "as nobody through the broker: the two went to the new program" \
  bash -c "grep -q '2 connection(s) waiting on it go to the program this process execs' '$tmp/queued-nobody.err' &&
           [ \$(grep -c 'its connection on tcp port 9950 handed to the kernel' '$tmp/broker.err') -eq 2 ]"
kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null

# The same when the new program does not load the library (its
# environment has no LD_PRELOAD): nobody there would take them from the
# stack, so they are reset and said, never left waiting.
port=$((port + 1))
QUEUED_LAST=5 queued "queued-unloaded" spawn accept "$port" LD_PRELOAD="$PRELOAD_LIB" \
  XDPLOAD_IFACE="$IF_A" XL_SERVED_UNLOADED=1
check "without the library in the new program: the waiting connections are reset" \
  bash -c "grep -qx 'client 8: ConnectionResetError' '$tmp/queued-unloaded' &&
           grep -qx 'client 9: ConnectionResetError' '$tmp/queued-unloaded' &&
           grep -qx 'client 5 served by parent again' '$tmp/queued-unloaded'"
check "... and said" grep -q "2 connection(s) waiting on the listener are reset" "$tmp/queued-unloaded.err"

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
