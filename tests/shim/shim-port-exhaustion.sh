# A client that runs out of local ports gets connect()'s errno as on Linux:
# EADDRNOTAVAIL ("Cannot assign requested address"), not bind()'s
# EADDRINUSE. A's ephemeral range is narrowed to 8 ports; the same program
# (kernel path, then under xdpload, each on a range of its own so that the
# first run's TIME-WAIT leaves the second's ports alone) connects to a
# server in B until connect() fails, then:
# - closes one connection itself (its port waits in TIME-WAIT: still none
#   free, EADDRNOTAVAIL again);
# - has the server close another first (TIME-WAIT is B's: the port is free
#   again, and the next connect() takes it).
# The outputs must be the same, and under xdpload the connections must be
# the stack's (A's kernel made none).
# UDP likewise: unbound sockets that send take the ports until none is
# left; then a send and a connect() say EAGAIN (inet_autobind), a bind() to
# port 0 EADDRINUSE.
# And sockets bound to the address alone (IP_BIND_ADDRESS_NO_PORT, as
# HAProxy's and Envoy's source binds are): connect() takes each a port of
# the range, until none is left (EADDRNOTAVAIL). Before, lwIP picked ports
# of its own, outside the range and not reserved in the kernel.
# And sockets that narrow the range for themselves (IP_LOCAL_PORT_RANGE,
# which goes with IP_BIND_ADDRESS_NO_PORT to split source ports between
# processes): connect() takes ports of that range only.
# And a socket disconnected (connect(AF_UNSPEC)), then bound to the address
# alone: its next connect() takes a port of the range (before, lwIP chose
# one of its own).
# Found by an accelerated client making 7,000 short connections over a
# 5,000-port range after kernel-path ones had left ports in TIME-WAIT: where
# its ports ran out, connect() said EADDRINUSE (the port-0 bind's error).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import socket, sys
# Accepts and keeps every connection; a connection that sends "close"
# is closed from here first.
import selectors
sel = selectors.DefaultSelector()
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 8600))
l.listen(64)
sel.register(l, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is l:
            c, _ = l.accept()
            sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = key.fileobj.recv(100)
        except ConnectionResetError:  # (a client that disconnected)
            d = b""
        if not d or d == b"close":
            sel.unregister(key.fileobj)
            key.fileobj.close()
PY
cat >"$tmp/client.py" <<'PY'
import errno, socket, sys, time
server = (sys.argv[1], 8600)
def connect():
    s = socket.socket()
    try:
        s.connect(server)
        return s, "ok"
    except OSError as e:
        s.close()
        return None, errno.errorcode[e.errno]
held = []
while len(held) < 12:
    s, what = connect()
    if not s:
        break
    held.append(s)
print("connected", len(held), "then", what)
held.pop().close()  # we close first: our port waits in TIME-WAIT
time.sleep(0.2)
print("after our own close:", connect()[1])
s = held.pop()
s.send(b"close")  # the server closes first: the port is free again
s.recv(10)
s.close()
time.sleep(0.2)
s, what = connect()
print("after the server's close:", what)
PY
cat >"$tmp/udp.py" <<'PY'
import errno, socket, sys
def outcome(call):
    try:
        call()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
held = []
for i in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.append(s)
    print("send from a new socket:", outcome(lambda: s.sendto(b"x", (sys.argv[1], 8601))))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("connect:", outcome(lambda: s.connect((sys.argv[1], 8601))))
print("bind to port 0:", outcome(lambda: s.bind(("0.0.0.0", 0))))
PY
cat >"$tmp/noport.py" <<'PY'
import errno, socket, sys
IP_BIND_ADDRESS_NO_PORT = 24
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
held = []
for i in range(10):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((sys.argv[2], 0))
    try:
        s.connect((sys.argv[1], 8600))
        held.append(s)
        port = s.getsockname()[1]
        print("connect from the address alone:", "a port of the range" if lo <= port <= hi else "port %d, outside the range" % port)
    except OSError as e:
        print("connect from the address alone:", errno.errorcode[e.errno])
PY
cat >"$tmp/ownrange.py" <<'PY'
import errno, socket, struct, sys
IP_BIND_ADDRESS_NO_PORT, IP_LOCAL_PORT_RANGE = 24, 51
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
held = []
for no_port in (False, True):
    # (2 ports each: the first part's close leaves its own in TIME-WAIT)
    first = lo + (4 if no_port else 2)
    for i in range(3):
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack("=I", first | (first + 1) << 16))
        if no_port:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((sys.argv[2], 0))
        what = "address alone" if no_port else "unbound"
        try:
            s.connect((sys.argv[1], 8600))
            held.append(s)
            port = s.getsockname()[1]
            print(what + ", its own range:", "a port of it" if first <= port <= first + 1 else "a port outside it")
        except OSError as e:
            print(what + ", its own range:", errno.errorcode[e.errno])
    while held:
        held.pop().close()
PY
cat >"$tmp/rebound.py" <<'PY'
import ctypes, socket, struct, sys
IP_BIND_ADDRESS_NO_PORT = 24
libc = ctypes.CDLL(None, use_errno=True)
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
s = socket.socket()
s.connect((sys.argv[1], 8600))
unspec = struct.pack("=H14x", socket.AF_UNSPEC)
print("disconnect:", libc.connect(s.fileno(), unspec, len(unspec)))
s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
s.bind((sys.argv[2], 0))
print("bound to the address alone, port", s.getsockname()[1])
s.connect((sys.argv[1], 8600))
port = s.getsockname()[1]
print("connected again from", "a port of the range" if lo <= port <= hi else "a port outside the range")
PY
in_b python3 "$tmp/server.py" "$IP_B" &
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :8600' | grep -q 8600"
# both_paths NAME FIRST_PORT COUNTER PROGRAM ARGS...: PROGRAM on the kernel
# path with ports FIRST_PORT..+7, then under xdpload with the next 8 (the
# first run's TIME-WAITs keep their ports): outputs in $tmp/NAME-kernel and
# $tmp/NAME-xdpload, and how much A's kernel COUNTER grew in the second run
# in $tmp/NAME-grew (0: the sockets were the stack's).
both_paths() {
  local name=$1 first=$2 counter=$3 before
  shift 3
  in_a sysctl -qw net.ipv4.ip_local_port_range="$first $((first + 7))"
  in_a python3 "$@" >"$tmp/$name-kernel" 2>&1
  in_a sysctl -qw net.ipv4.ip_local_port_range="$((first + 1000)) $((first + 1007))"
  before=$(kernel_counter "$NS_A" "$counter")
  PRELOAD_A python3 "$@" >"$tmp/$name-xdpload" 2>&1
  echo $(($(kernel_counter "$NS_A" "$counter") - before)) >"$tmp/$name-grew"
  echo "== $name, kernel"
  cat "$tmp/$name-kernel"
  echo "== $name, xdpload (A's kernel $counter +$(cat "$tmp/$name-grew"))"
  cat "$tmp/$name-xdpload"
}
both_paths tcp 40000 TcpActiveOpens "$tmp/client.py" "$IP_B"
both_paths udp 42000 UdpOutDatagrams "$tmp/udp.py" "$IP_B"
both_paths noport 44000 TcpActiveOpens "$tmp/noport.py" "$IP_B" "$IP_A"
both_paths ownrange 46000 TcpActiveOpens "$tmp/ownrange.py" "$IP_B" "$IP_A"
both_paths rebound 48000 TcpActiveOpens "$tmp/rebound.py" "$IP_B" "$IP_A"
check "the kernel path runs out at 8 ports with EADDRNOTAVAIL" grep -qx "connected 8 then EADDRNOTAVAIL" "$tmp/tcp-kernel"
check "UDP, the kernel path: 8 sends, then EAGAIN" \
  bash -c "[ \$(grep -c 'send from a new socket: ok' $tmp/udp-kernel) -eq 8 ] && grep -q 'connect: EAGAIN' $tmp/udp-kernel"
check "IP_BIND_ADDRESS_NO_PORT, the kernel path: 8 ports of the range, then EADDRNOTAVAIL" \
  bash -c "[ \$(grep -c 'a port of the range' $tmp/noport-kernel) -eq 8 ] && grep -q EADDRNOTAVAIL $tmp/noport-kernel"
check "IP_LOCAL_PORT_RANGE, the kernel path: its 2 ports, then EADDRNOTAVAIL (unbound and address alone)" \
  bash -c "[ \$(grep -c 'a port of it' $tmp/ownrange-kernel) -eq 4 ] && [ \$(grep -c EADDRNOTAVAIL $tmp/ownrange-kernel) -eq 2 ]"
check "a socket bound to its address alone after a disconnect, the kernel path: a port of the range" \
  grep -q "connected again from a port of the range" "$tmp/rebound-kernel"
for name in tcp udp noport ownrange rebound; do
  check "$name under xdpload: the same outcomes" diff "$tmp/$name-kernel" "$tmp/$name-xdpload"
  check "... on the stack" [ "$(cat "$tmp/$name-grew")" -eq 0 ]
done
finish
