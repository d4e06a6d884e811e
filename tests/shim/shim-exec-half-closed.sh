# A connection whose own side the server has closed (shutdown(SHUT_WR):
# FIN_WAIT_1 or FIN_WAIT_2 on the stack), inherited across exec: it becomes
# A's kernel's with its state (TCP_REPAIR) and our FIN sent again after the
# data, a duplicate where the peer had it (as CRIU restores a closing
# connection). The server under xdpload answers "hello", shuts its side,
# then a forked child puts the connection on descriptor 0 and execs cat,
# which writes what it reads to a file. The kernel client in B reads the
# answer and the end of the stream, sends "world" and closes: cat reads
# "world", then the end, and exits. Twice: the client's line sent after
# the exec (the kernel's socket receives it) and before (unread on the
# stack, handed over in the queue; the client closes after the exec). A
# third time with a block queued unsent behind a reader that waits, so
# that lwIP's FIN rides on the last data segment: the client reads every
# byte queued, then the end. The same client against the same server on
# the kernel path gives the same transcript and file. (Not handed over: a connection closed both ways,
# in TIME_WAIT, with bytes the program has not read: it stays on the stack
# and one line says so.)
# Before, such a connection stayed on the stack (EBUSY: "only an
# established connection whose own side is not closed") and cat read
# from an unconnected kernel socket.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import os, socket, sys, time
port, out, flag, when = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(4)
print("listening", flush=True)
conn, _ = srv.accept()
if when == "bulk":
    # As much of a block as the send buffer takes while the client does not
    # read: the FIN then rides on the last segment not yet sent.
    block = bytes(i % 251 for i in range(3000000))
    conn.setblocking(False)
    sent = 0
    try:
        while sent < len(block):
            sent += conn.send(block[sent:])
    except BlockingIOError:
        pass
    conn.setblocking(True)
    print("queued", sent, flush=True)
else:
    conn.sendall(b"hello\n")
conn.shutdown(socket.SHUT_WR)
# "before": the client's line arrives first and stays unread here.
# "after": the exec comes first. Either way the FIN has been answered.
if when == "before":
    for _ in range(200):
        if os.path.exists(flag):
            break
        time.sleep(0.05)
time.sleep(0.5)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
pid = os.fork()
if pid == 0:
    os.dup2(conn.fileno(), 0)
    os.dup2(fd, 1)
    os.execv("/bin/cat", ["cat"])
os.close(fd)
conn.close()
_, status = os.waitpid(pid, 0)
print("cat exited", os.waitstatus_to_exitcode(status), flush=True)
PY
cat >"$tmp/client.py" <<'PY'
import os, socket, sys, time
host, port, flag, when = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=10)
if when == "bulk":
    time.sleep(1.5)  # (the server has queued, shut its side and exec'd cat)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
if when == "bulk":
    block = bytes(i % 251 for i in range(3000000))
    print("client read", len(got), "bytes, the block's first ones:", got == block[:len(got)],
          "then the end", flush=True)
else:
    print("client read", got, "then the end", flush=True)
if when == "after":
    time.sleep(1.5)  # (the server has exec'd cat by now)
s.sendall(b"world\n")
open(flag, "w").close()
if when == "before":
    time.sleep(1.5)  # (closed after the exec: the stack held the line, unread)
s.shutdown(socket.SHUT_WR)
print("client: after its close, the server's side says", s.recv(100), flush=True)
s.close()
PY
port=7810
for when in after before bulk; do
  for mode in kernel xdpload; do
    out="$tmp/$mode-$when"
    rm -f "$tmp/flag"
    segs=$(kernel_counter "$NS_A" TcpPassiveOpens)
    if [ "$mode" = xdpload ]; then
      PRELOAD_A env XDPLOAD_LOG=2 timeout 30 python3 "$tmp/server.py" "$port" "$out.cat" "$tmp/flag" "$when" \
        >"$out.server" 2>"$out.err" &
    else
      in_a timeout 30 python3 "$tmp/server.py" "$port" "$out.cat" "$tmp/flag" "$when" >"$out.server" 2>"$out.err" &
    fi
    server=$!
    wait_for 50 grep -q listening "$out.server"
    in_b timeout 20 python3 "$tmp/client.py" "$IP_A" "$port" "$tmp/flag" "$when" >"$out.client" 2>&1
    wait "$server"
    opens=$(( $(kernel_counter "$NS_A" TcpPassiveOpens) - segs ))
    echo "$opens" >"$out.opens"
    echo "== $mode, the client's line $when the exec (A's kernel: $opens passive opens)"
    cat "$out.client" "$out.server"
    echo "cat wrote: $(cat "$out.cat" 2>/dev/null)"
    grep -E 'kernel.s from now on|hand|EBUSY|no effect' "$out.err"
    port=$((port + 1))
  done
  if [ "$when" = bulk ]; then
    # (How much each stack queued differs: what the client read must be it.)
    for mode in kernel xdpload; do
      q=$(awk '/^queued/ {print $2}' "$tmp/$mode-bulk.server")
      check "bulk, $mode: the client read the $q bytes queued before the close, in order, then the end" \
        grep -q "^client read $q bytes, the block's first ones: True then the end" "$tmp/$mode-bulk.client"
    done
  else
    check "$when: the client saw the same under xdpload as on the kernel" \
      diff "$tmp/kernel-$when.client" "$tmp/xdpload-$when.client"
  fi
  check "$when: cat read the client's line after the server's close, then the end (exit 0)" \
    bash -c "[ \"\$(cat $tmp/xdpload-$when.cat)\" = world ] && grep -qx 'cat exited 0' $tmp/xdpload-$when.server"
  check "$when: the kernel path gave the same" \
    bash -c "[ \"\$(cat $tmp/kernel-$when.cat)\" = world ] && grep -qx 'cat exited 0' $tmp/kernel-$when.server"
  check "$when: the connection was the stack's (A's kernel accepted none), then the kernel's at exec" \
    bash -c "[ \$(cat $tmp/xdpload-$when.opens) -eq 0 ] && grep -q 'connection handed to the kernel with its state (exec)' $tmp/xdpload-$when.err"
done
finish
