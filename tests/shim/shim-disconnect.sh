# Disconnecting sockets, as Linux does it, over the stack: connect(AF_UNSPEC)
# on a TCP connection resets it (the peer sees the reset; ECONNRESET is
# pending) and the socket connects again; shutdown() of a listener, or
# connect(AF_UNSPEC) on it, stops it (a client from B is refused) and
# listen() starts it again (a client from B is served); a UDP socket
# dissolves its association, gives up the port the kernel chose and takes
# another at its next send, where the reply reaches it. The same program runs
# on the kernel and under xdpload: the same lines; under xdpload, A's kernel
# saw none of the traffic (TcpInSegs, UdpInDatagrams flat) and nothing was
# handed to it.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve 0.0.0.0 7100 7101
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7100' | grep -q 7100"
# B's client: connects to A's port, sends a line, prints what came back or
# why it could not.
cat >"$tmp/dial.py" <<'PY'
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    c.sendall(b"ping\n")
    print(c.recv(100).decode().strip() or "closed")
except OSError as e:
    print(type(e).__name__)
PY
cat >"$tmp/prog.py" <<'PY'
import ctypes, errno, os, socket, struct, subprocess, sys
peer, me, ns_b, dial = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)

def unspec(s):
    sa = struct.pack("HH4s8s", socket.AF_UNSPEC, 0, b"\0" * 4, b"\0" * 8)
    r = libc.connect(s.fileno(), sa, len(sa))
    return "0" if r == 0 else errno.errorcode[ctypes.get_errno()]

def from_b(port):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run(["ip", "netns", "exec", ns_b, "python3", dial, me, str(port)],
                          capture_output=True, text=True, env=env).stdout.strip()

def binds_port(ip, port, s=None):
    o = s or socket.socket()
    try:
        o.bind((ip, port)); return "0"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        if not s: o.close()

# TCP client: reset by the disconnect, then connected again.
c = socket.create_connection((peer, 7100), timeout=5)
old = c.getsockname()[1]
c.sendall(b"one")
print("tcp echo before:", c.recv(100))
print("tcp connect(AF_UNSPEC):", unspec(c))
print("tcp SO_ERROR after it:", errno.errorcode.get(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0))
print("tcp getpeername after it:", end=" ")
try:
    c.getpeername(); print("connected")
except OSError as e:
    print(errno.errorcode[e.errno])
# The port the kernel chose for the connection is released with it: another
# socket may bind it (the kernel socket xdpload keeps beside a connection
# on the stack held it until the connection's socket closed).
print("tcp its old port, bound by another socket:", binds_port(me, old))
c.connect((peer, 7100))
c.sendall(b"two")
print("tcp echo after connecting again:", c.recv(100))
c.close()

# A refused connection releases its port too: the socket may bind again,
# and the old port is free.
r = socket.socket()
r.settimeout(5)
print("tcp refused:", errno.errorcode[r.connect_ex((peer, 7109))])
old = r.getsockname()[1]
print("tcp refused, its old port, bound by another socket:", binds_port(me, old))
print("tcp refused, the socket binds again:", binds_port(me, 0, r))
r.close()

# TCP listener: stopped by shutdown(SHUT_RD) and by connect(AF_UNSPEC),
# started again by listen(), as haproxy pauses and resumes its listeners.
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((me, 7200))
l.listen(8)
def serve_one():
    a, _ = l.accept()
    a.sendall(b"pong " + a.recv(100))
    a.close()
import threading
t = threading.Thread(target=serve_one); t.start()
print("listener, a client from B:", from_b(7200)); t.join()
for how, stop in (("shutdown(SHUT_RD)", lambda: l.shutdown(socket.SHUT_RD) or "0"),
                  ("connect(AF_UNSPEC)", lambda: unspec(l))):
    print("listener", how + ":", stop())
    print("  stopped, a client from B:", from_b(7200))
    l.listen(8)
    t = threading.Thread(target=serve_one); t.start()
    print("  listening again, a client from B:", from_b(7200)); t.join()
l.close()

# UDP: the association dissolved, the kernel-chosen port given up; the next
# send takes another, and the echo's reply reaches it.
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.connect((peer, 7101))
u.send(b"a")
print("udp echo before:", u.recv(100))
first = u.getsockname()[1]
print("udp connect(AF_UNSPEC):", unspec(u), "port now", u.getsockname()[1])
u.sendto(b"b", (peer, 7101))
data, src = u.recvfrom(100)
now = u.getsockname()[1]
print("udp echo after it:", data, "from the echo:", src[1] == 7101, "to a new port:", now not in (0, first))
PY
segs0=$(kernel_counter "$NS_A" TcpInSegs)
in_a python3 "$tmp/prog.py" "$IP_B" "$IP_A" "$NS_B" "$tmp/dial.py" >"$tmp/kernel" 2>&1
segs1=$(kernel_counter "$NS_A" TcpInSegs)
dgrams1=$(kernel_counter "$NS_A" UdpInDatagrams)
PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/prog.py" "$IP_B" "$IP_A" "$NS_B" "$tmp/dial.py" \
  >"$tmp/xdpload" 2>"$tmp/xdpload.err"
cat "$tmp/xdpload.err"
segs2=$(kernel_counter "$NS_A" TcpInSegs)
dgrams2=$(kernel_counter "$NS_A" UdpInDatagrams)
cat "$tmp/xdpload"
check "the kernel run: connected again, refused while stopped, served once listening again" \
  bash -c "grep -q \"tcp echo after connecting again: b'two'\" $tmp/kernel &&
           [ \$(grep -c 'stopped, a client from B: ConnectionRefusedError' $tmp/kernel) -eq 2 ] &&
           [ \$(grep -c 'listening again, a client from B: pong ping' $tmp/kernel) -eq 2 ] &&
           grep -q 'to a new port: True' $tmp/kernel"
if diff -u "$tmp/kernel" "$tmp/xdpload"; then
  pass "the same lines under xdpload ($(wc -l <"$tmp/kernel"))"
else
  fail "the lines differ (above: - kernel, + xdpload)"
fi
# (The kernel run's segments reach A's kernel, so the counter shows what a
# run on the kernel path looks like.)
echo "A's kernel TcpInSegs: +$((segs1 - segs0)) on the kernel, +$((segs2 - segs1)) under xdpload; UdpInDatagrams +$((dgrams2 - dgrams1)) under xdpload"
check "under xdpload, A's kernel saw none of it (the kernel run: $((segs1 - segs0)) segments)" \
  bash -c "[ $((segs2 - segs1)) -eq 0 ] && [ $((dgrams2 - dgrams1)) -eq 0 ] && [ $((segs1 - segs0)) -gt 10 ]"
check "nothing handed to the kernel (N tcp and 1 udp sockets accelerated, 0 left with the kernel)" \
  grep -q "[0-9]* tcp and 1 udp sockets accelerated, 0 left with the kernel" "$tmp/xdpload.err"
finish
