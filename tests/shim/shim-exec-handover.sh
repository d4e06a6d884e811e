# A connection of the stack handed to the kernel with its state (TCP_REPAIR).
#
# Inherited across exec (inetd's shape): a server under xdpload
# accepts a connection on the stack, echoes a line, then a forked child puts
# the connection on descriptors 0 and 1 and execs cat, which the stack does
# not reach. Before the exec, the connection becomes A's kernel's with its
# state (TCP_REPAIR): a line the client sent that the server had not read,
# and a block the server had written that B had not acknowledged (B's pure
# ACKs lost on its veth by tests/progs/tc_drop_ack.bpf.c), both reach their
# reader; cat then echoes what comes after, and the end of the stream goes
# through. The same client against the same server on the kernel path gives
# the same transcript. Run twice: cat exec'd with the preload still set,
# and without it. Without the hand-over cat read from an unconnected kernel
# socket (ENOTCONN) and the client got nothing after the first echo.
#
# The same with Python's subprocess starting cat (vfork, then dup2 onto 0
# and 1 in the child: descriptors the family's records do not know), and
# with posix_spawn (its dup2s and exec inside libc: the parent follows the
# file actions it was given), and with glibc's system() and popen() (a
# shell spawned inside libc, which gives the inherited connection to cat:
# before, cat read and wrote an unconnected kernel socket, "I/O error", and
# the client got nothing after the first echo).
#
# The same when the client has closed its side before the exec (its request
# is all there is): cat reads the line, then the end of the stream, and
# exits; the client gets the echo and the end. (Before, such a connection
# stayed on the stack and cat read from a dead socket.)
#
# Given an option only the kernel serves (a socket filter) while it lives:
# the same exchange, the server itself echoing after the option, on the
# kernel's connection. Before, the option had no effect (said on stderr).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import os, socket, sys, time
import ctypes, struct
flag, port, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(4)
print("listening", flush=True)
conn, _ = srv.accept()
conn.settimeout(10)
line = b""
while not line.endswith(b"\n"):
    line += conn.recv(100)
conn.sendall(line)  # "before", echoed on the stack
# The client's next line arrives and is not read here; then a block that
# B does not acknowledge (its ACKs are lost) stays in the stack's queue.
for _ in range(200):
    if os.path.exists(flag + ".pending"):
        break
    time.sleep(0.05)
time.sleep(0.3)
block = bytes(i % 251 for i in range(60000))
conn.setblocking(False)
sent = 0
try:
    while sent < len(block):
        sent += conn.send(block[sent:])
except BlockingIOError:
    pass
conn.setblocking(True)  # (cat reads and writes as blocking programs do)
print("block", sent, flush=True)
time.sleep(0.3)
if how in ("filter", "recverr"):
    if how == "filter":
        # cBPF "accept everything" (ret #0xffffffff): only the kernel runs it.
        prog = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF))
        conn.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", 1, ctypes.addressof(prog)))
    else:
        # (What an unprivileged program may set here: this kernel refuses
        # it a socket filter, EPERM with or without xdpload.)
        conn.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
        # The connection's socket is this user's, as one it made would be.
        print("socket owner is this user:", os.fstat(conn.fileno()).st_uid == os.getuid(),
              flush=True)
    while True:
        d = conn.recv(100)
        if not d:
            break
        conn.sendall(d)
    conn.close()
    print("served", flush=True)
    sys.exit(0)
if how == "posix-spawn":
    # glibc's posix_spawn: the dup2s and the exec happen inside libc.
    pid = os.posix_spawn("/bin/cat", ["cat"], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, conn.fileno(), 0),
                                       (os.POSIX_SPAWN_DUP2, conn.fileno(), 1)])
    conn.close()
    _, status = os.waitpid(pid, 0)
    print("cat exited", os.waitstatus_to_exitcode(status), flush=True)
    time.sleep(2.5)
    sys.exit(0)
if how in ("system", "popen"):
    # glibc's system() and popen(): `sh -c` spawned inside libc, which
    # inherits the connection (made inheritable) and gives it to cat.
    import ctypes
    libc = ctypes.CDLL(None)
    libc.popen.restype = ctypes.c_void_p
    libc.pclose.argtypes = [ctypes.c_void_p]
    os.set_inheritable(conn.fileno(), True)
    cmd = f"exec cat <&{conn.fileno()} >&{conn.fileno()}".encode()
    if how == "system":
        status = libc.system(cmd)
    else:
        status = libc.pclose(libc.popen(cmd, b"r"))
    conn.close()
    print("cat exited", os.waitstatus_to_exitcode(status), flush=True)
    time.sleep(2.5)
    sys.exit(0)
if how == "subprocess":
    # Python's subprocess starts cat with vfork (its descriptor table is
    # not the one the family knows) and dup2s the connection onto 0 and 1.
    import subprocess
    p = subprocess.Popen(["/bin/cat"], stdin=conn.fileno(), stdout=conn.fileno())
    conn.close()
    print("cat exited", p.wait(), flush=True)
    time.sleep(2.5)
    sys.exit(0)
pid = os.fork()
if pid == 0:
    os.dup2(conn.fileno(), 0)
    os.dup2(conn.fileno(), 1)
    env = dict(os.environ)
    if how == "exec-without-preload":
        env.pop("LD_PRELOAD", None)
    os.execve("/bin/cat", ["cat"], env)
conn.close()
_, status = os.waitpid(pid, 0)
print("cat exited", os.waitstatus_to_exitcode(status), flush=True)
time.sleep(2.5)  # (the server lives on: the ended connection's flow is unlisted)
PY
cat >"$tmp/client.py" <<'PY'
import socket, sys, time
ip, port, flag, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
c.bind(("", src))
c.settimeout(15)
c.connect((ip, port))
def read_exact(n):
    got = b""
    while len(got) < n:
        d = c.recv(n - len(got))
        if not d:
            break
        got += d
    return got
c.sendall(b"before\n")
print("echo:", read_exact(7).decode().strip(), flush=True)
c.sendall(b"pending\n")
half_closed = sys.argv[5] == "exec-after-half-close"
if half_closed:
    c.shutdown(socket.SHUT_WR)  # (the request is all: cat reads it, then the end)
open(flag + ".pending", "w").close()
# The block first (cat starts by echoing the pending line after it).
for _ in range(200):
    try:
        n = int(open(flag).read().split("block ")[1].split()[0])
        break
    except (IndexError, ValueError, OSError):
        time.sleep(0.05)
block = read_exact(n)
print("block intact:", block == bytes(i % 251 for i in range(n)), "bytes:", n > 0, flush=True)
print("unread line, echoed after the hand-over:", read_exact(8).decode().strip(), flush=True)
if half_closed:
    print("echoed after the hand-over: after the exec", flush=True)  # (nothing more to send)
else:
    c.sendall(b"after the exec\n")
    print("echoed after the hand-over:", read_exact(15).decode().strip(), flush=True)
    c.shutdown(socket.SHUT_WR)
print("end of stream:", c.recv(100) == b"", flush=True)
PY
in_b tc qdisc add dev "$IF_B" clsact
# run MODE LABEL HOW SRC_PORT: a transcript in $tmp/LABEL.
run() {
  local mode=$1 label=$2 how=$3 src=$4
  local port=$((9700 + src % 20))
  rm -f "$tmp/out" "$tmp/out.pending"
  in_b tc filter replace dev "$IF_B" egress pref 1 bpf da obj "$BUILD/tests/tc_drop_ack.bpf.o" \
    sec tc/drop_pure_ack
  if [ "$mode" = xdpload ]; then
    bg_preload_a env XDPLOAD_LOG=2 python3 "$tmp/server.py" "$tmp/out" "$port" "$how" \
      >"$tmp/out" 2>"$tmp/$label.err"
  elif [ "$mode" = nobody ]; then
    bg_a setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --ambient-caps=-all \
      --bounding-set=-all env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2 \
      python3 "$tmp/server.py" "$tmp/out" "$port" "$how" >"$tmp/out" 2>"$tmp/$label.err"
  else
    bg_a python3 "$tmp/server.py" "$tmp/out" "$port" "$how" >"$tmp/out" 2>"$tmp/$label.err"
  fi
  srv=$BG_PID
  wait_for 50 grep -q listening "$tmp/out"
  segs0=$(kernel_counter "$NS_A" TcpInSegs)
  bg_b python3 "$tmp/client.py" "$IP_A" "$port" "$tmp/out" "$src" "$how" >"$tmp/$label" 2>&1
  cli=$BG_PID
  # B's ACKs pass again once the connection has gone to cat.
  wait_for 100 grep -q "^block" "$tmp/out"
  segs_mid=$(kernel_counter "$NS_A" TcpInSegs)
  sleep 0.5
  in_b tc filter del dev "$IF_B" egress pref 1
  wait "$cli"
  wait "$srv"
  echo "== $label"
  cat "$tmp/$label" "$tmp/out" "$tmp/$label.err"
  eval "before_$mode=\$((segs_mid - segs0)) after_$mode=\$(( \$(kernel_counter \"$NS_A\" TcpInSegs) - segs_mid ))"
}
src=31120
for how in exec-with-preload exec-without-preload exec-after-half-close subprocess posix-spawn system popen filter; do
  run kernel "kernel-$how" "$how" $src
  run xdpload "xdpload-$how" "$how" $((src + 1))
  src=$((src + 2))
  check "$how: the kernel run reads the unread line, the block and the rest" \
    bash -c "grep -qx 'unread line, echoed after the hand-over: pending' $tmp/kernel-$how &&
      grep -qx 'block intact: True bytes: True' $tmp/kernel-$how &&
      grep -qx 'echoed after the hand-over: after the exec' $tmp/kernel-$how &&
      grep -qx 'end of stream: True' $tmp/kernel-$how"
  if diff -u "$tmp/kernel-$how" "$tmp/xdpload-$how"; then
    pass "$how: the same transcript under xdpload"
  else
    fail "$how: the transcripts differ (above: - kernel, + xdpload)"
  fi
  case $how in
    exec-after-half-close)
      # (A's kernel never learnt of B's FIN, which lwIP had acknowledged:
      # after cat's close it waits in FIN_WAIT_2 for tcp_fin_timeout, and
      # the flow stays listed that long.)
      why="(exec)"
      ;;
    subprocess|posix-spawn|system|popen|exec-*)
      why="(exec)"
      [ "$how" = subprocess ] && why="(exec after vfork)"
      [ "$how" = posix-spawn ] && why="(posix_spawn)"
      [ "$how" = system ] && why="(system)"
      [ "$how" = popen ] && why="(popen)"
      check "$how: once the kernel's connection ended, its flow was unlisted" \
        grep -q "tcp port $((9700 + (src - 1) % 20)): the connection from $IP_B:$((src - 1)) handed to the kernel has ended; unlisted" "$tmp/xdpload-$how.err"
      ;;
    *) why="(option 1/26)" ;;
  esac
  check "$how: the connection was handed to the kernel with its state" \
    grep -qF "connection handed to the kernel with its state $why" "$tmp/xdpload-$how.err"
  check "$how: A's kernel carried the connection after the hand-over only ($before_xdpload segments before, $after_xdpload after)" \
    bash -c "[ $before_xdpload -eq 0 ] && [ $after_xdpload -gt 0 ]"
done
# system() and popen() leave an inherited listener on the stack, with the
# connection waiting on it, for the program's own accept(), as Linux leaves
# a listener's queue to whoever accepts (the shell does not): the
# connection is served on the stack, A's kernel sees none of it. (An exec
# must move a listener to the kernel; these only spawn a shell.)
cat >"$tmp/shell_out.py" <<'PY'
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None)
libc.popen.restype = ctypes.c_void_p
libc.pclose.argtypes = [ctypes.c_void_p]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(4)
os.set_inheritable(srv.fileno(), True)
print("listening", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
time.sleep(0.2)  # (the client's connection waits in the queue)
print("popen:", libc.pclose(libc.popen(b"true", b"r")), "system:", libc.system(b"true"), flush=True)
srv.settimeout(10)
c, _ = srv.accept()
c.settimeout(10)
c.sendall(b"served " + c.recv(100))
c.close()
PY
for mode in kernel xdpload; do
  rm -f "$tmp/queued"
  if [ "$mode" = xdpload ]; then
    bg_preload_a env XDPLOAD_LOG=2 python3 "$tmp/shell_out.py" 9725 "$tmp/queued" >"$tmp/shell-$mode" 2>&1
  else
    bg_a python3 "$tmp/shell_out.py" 9725 "$tmp/queued" >"$tmp/shell-$mode" 2>&1
  fi
  srv=$BG_PID
  wait_for 50 grep -q listening "$tmp/shell-$mode"
  segs0=$(kernel_counter "$NS_A" TcpInSegs)
  in_b python3 -c "
import socket, sys
c = socket.create_connection(('$IP_A', 9725), timeout=10)
open('$tmp/queued', 'w').close()
c.sendall(b'queued')
print('client got:', c.recv(100).decode())" >"$tmp/shell-$mode.client" 2>&1
  segs=$(($(kernel_counter "$NS_A" TcpInSegs) - segs0))
  wait "$srv"
  echo "== shell-outs with a queued connection, $mode (A's kernel: TcpInSegs +$segs)"
  cat "$tmp/shell-$mode.client" "$tmp/shell-$mode"
  check "shell-outs, $mode: the waiting connection is served by the program after popen() and system()" \
    grep -qx "client got: served queued" "$tmp/shell-$mode.client"
done
check "shell-outs, xdpload: the listener and its connection stayed on the stack (A's kernel: TcpInSegs +$segs)" \
  bash -c "[ $segs -eq 0 ] && ! grep -q 'reset\|the kernel.s from now on' '$tmp/shell-xdpload'"

# Through the broker, which owns the XDP program: it lists the connection
# as the kernel's on the listener's port (the exception a process alone
# sets in the map itself).
broker_up
run xdpload "broker-filter" filter $src
kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
if diff -u "$tmp/kernel-filter" "$tmp/broker-filter"; then
  pass "through the broker: the same transcript"
else
  fail "through the broker: the transcripts differ (above: - kernel, + xdpload)"
fi
check "through the broker: handed to the kernel, which carried it after the hand-over only ($before_xdpload segments before, $after_xdpload after)" \
  bash -c "grep -qF 'connection handed to the kernel with its state (option 1/26)' $tmp/broker-filter.err &&
    [ $before_xdpload -eq 0 ] && [ $after_xdpload -gt 0 ]"
# Through the broker, by a program without CAP_NET_ADMIN (nobody, no
# capability), which TCP_REPAIR needs: the broker builds the connection in
# a socket of its own, on a port the program holds, ends repair mode and
# passes it to the program, which puts it at its descriptors
# (tools/broker/handover.cc). Before, the connection stayed on the stack:
# the exec'd cat read from an unconnected socket, and the option
# (IP_RECVERR, which the stack's TCP does not serve) had no effect. Each is
# compared with the kernel run of the same exchange (the option's: the
# filter's).
chmod 755 "$tmp"
printf 'allow user root\nallow user nobody ports 9700-9799\n' >"$tmp/policy"
broker_up --policy "$tmp/policy"
# (Ports 9716-9719, each case above having had its own: after the
# half-close case, A's kernel holds its port in FIN_WAIT_2, which nobody may
# not bind over.)
src=31135
for how in exec-with-preload subprocess posix-spawn recverr; do
  src=$((src + 1))
  run nobody "nobody-$how" "$how" $src
  cp "$tmp/out" "$tmp/nobody-$how.out"
  same_as=$how
  [ "$how" = recverr ] && same_as=filter
  if diff -u "$tmp/kernel-$same_as" "$tmp/nobody-$how"; then
    pass "as nobody through the broker, $how: the same transcript"
  else
    fail "as nobody through the broker, $how: the transcripts differ (above: - kernel, + xdpload)"
  fi
  why="(exec)"
  [ "$how" = recverr ] && why="(option 0/11)"
  [ "$how" = posix-spawn ] && why="(posix_spawn)"
  [ "$how" = subprocess ] && why="(exec after vfork)"
  check "as nobody, $how: handed to the kernel, which carried it after the hand-over only ($before_nobody segments before, $after_nobody after)" \
    bash -c "grep -qF 'connection handed to the kernel with its state $why' $tmp/nobody-$how.err &&
      [ $before_nobody -eq 0 ] && [ $after_nobody -gt 0 ]"
done
check "the server ran as uid 65534, and the broker built its connections" \
  bash -c "grep -q 'uid 65534' $tmp/broker.err &&
    [ \$(grep -c 'its connection on tcp port 97[0-9][0-9] handed to the kernel' $tmp/broker.err) -eq 4 ]"
check "as nobody: the connection's socket the broker built is nobody's" \
  grep -qx "socket owner is this user: True" "$tmp/nobody-recverr.out"
kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
finish
