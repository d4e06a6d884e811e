"""The kernel peers tests/progs/api_fuzz.c expects, in one process:
  7002  half-closes each connection at once (shutdown SHUT_WR), then reads
        and holds it: the fuzz's sends are accepted, never reset;
  7003  reads a line, then resets (SO_LINGER 0);
  7004  reads and holds: a sink that never closes (a FIN from the fuzz is
        never answered, so no later call races a FIN or a reset);
  7103  a UDP sink;
  7104  a dialer: "dial PORT" from a host makes a TCP connection to that
        host's PORT, held open and silent (a listener with a connection
        waiting in its queue).
    python3 fuzz_peers.py"""
import resource, selectors, socket, struct

# Every connection is held for good: room for many seeds' worth.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
held = []

def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, ("listen", port))

for port in (7002, 7003, 7004):
    listener(port)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 7103))
u.setblocking(False)
sel.register(u, selectors.EVENT_READ, ("udp", 7103))
dialer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dialer.bind(("0.0.0.0", 7104))
dialer.setblocking(False)
sel.register(dialer, selectors.EVENT_READ, ("dial", 7104))

while True:
    for key, _ in sel.select():
        kind, port = key.data
        s = key.fileobj
        if kind == "listen":
            try:
                c, _ = s.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            if port == 7002:
                c.shutdown(socket.SHUT_WR)
            held.append(c)
            sel.register(c, selectors.EVENT_READ, ("conn", port))
        elif kind == "dial":
            try:
                req, (host, _) = s.recvfrom(64)
                port = int(req.split()[1])
                c = socket.create_connection((host, port), timeout=3)
                held.append(c)
            except (OSError, ValueError, IndexError):
                pass
        elif kind == "udp":
            try:
                s.recv(65536)
            except OSError:
                pass
        else:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if port == 7003 and data:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                data = b""
            if not data:
                sel.unregister(s)
                if port == 7003:
                    s.close()
                # others: held open, never closed (no FIN back)
