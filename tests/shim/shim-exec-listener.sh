# A listener or UDP socket handed to an exec'd program while its parent
# keeps it (systemd-style socket activation, nginx's binary upgrade, inetd's
# "wait" services): on Linux it is one socket for both, and the new program
# serves it. The parent serves one client itself, then starts the new
# program with the socket (by fork and exec, or by Python's subprocess,
# which uses vfork), waits for it to serve three clients, and serves one
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
# parent.py PROTO HOW PORT: HOW is fork (fork, dup2 onto 3, exec) or
# spawn (subprocess.Popen with pass_fds: vfork, then exec).
cat >"$tmp/parent.py" <<'PY'
import os, socket, subprocess, sys
proto, how, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
served = os.path.join(os.path.dirname(sys.argv[0]), "served.py")
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
if how == "fork":
    pid = os.fork()
    if pid == 0:
        # Descriptor 3, inheritable, as socket activation passes it.
        if s.fileno() == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(s.fileno(), 3)
        os.execv(sys.executable, [sys.executable, served, proto, "3"])
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
# client.py PROTO HOST PORT FIRST LAST: one exchange per number.
cat >"$tmp/client.py" <<'PY'
import socket, sys
proto, host, port, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for i in range(first, last + 1):
    msg = b"client %d" % i
    try:
        if proto == "tcp":
            c = socket.create_connection((host, port), timeout=3)
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
  for how in fork spawn; do
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
  done
done
finish
