# A connection that exec closes (FD_CLOEXEC, as Python's sockets are): the
# kernel finishes it, as it finishes a socket closed with data in flight.
# A server accepts a connection on the stack, writes 400 KB and at once
# execs sleep, the connection's descriptor closing with the exec; the
# client in B reads to the end of the stream. On the kernel path: every
# byte, then the end. Under xdpload, before: the connection died with the
# image (the family's last process), and the client got part of the bytes,
# then nothing until its timeout. Now the connection goes to the kernel with its state before
# the exec (TCP_REPAIR), and the client gets what the kernel path gives.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import os, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(4)
print("listening", flush=True)
conn, _ = srv.accept()
block = bytes(i % 251 for i in range(400000))
conn.sendall(block)  # (into the socket's buffer: most of it not yet acknowledged)
print("sent, exec", flush=True)
os.execv("/bin/sleep", ["sleep", "1"])
PY
cat >"$tmp/client.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
time.sleep(0.2)  # the server's exec comes while its bytes are in flight
got = bytearray()
end = "eof"
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    end = "timeout"
want = bytes(i % 251 for i in range(400000))
print(f"bytes {len(got)} intact {got == want[:len(got)]} end {end}")
PY
run() {  # run NAME PORT [env...]
  local name=$1 port=$2
  shift 2
  ip netns exec "$NS_A" env "$@" python3 "$tmp/server.py" "$port" >"$tmp/$name.server" 2>"$tmp/$name.err" &
  local server=$!
  wait_for 50 grep -q listening "$tmp/$name.server"
  in_b python3 "$tmp/client.py" "$IP_A" "$port" >"$tmp/$name" 2>&1
  wait "$server"
  echo "--- $name: $(cat "$tmp/$name")"
  cat "$tmp/$name.err"
}
run kernel 9861
run xdpload 9862 LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2
check "the kernel path: every byte, then the end of the stream" \
  grep -qx "bytes 400000 intact True end eof" "$tmp/kernel"
check "the connection was on the stack, and the exec handed it to the kernel" \
  grep -q "the exec closes it: connection handed to the kernel" "$tmp/xdpload.err"
check "under xdpload the client gets what the kernel path gives" diff "$tmp/kernel" "$tmp/xdpload"
finish
