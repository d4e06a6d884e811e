"""A slow TCP reader: slow_sink.py PORT TIMEOUT

Accepts one connection with a small receive buffer, waits half a second
before it starts reading, then reads 64 KB every 20 ms (about 3 MB/s, so
that the sender's last few hundred KB are still queued on its side when it
has written everything and exits, however fast its TCP is) to end-of-file
or TIMEOUT seconds of silence (or a reset), and prints: BYTES SHA256
eof|timeout|reset.
"""
import hashlib
import socket
import sys
import time

port, timeout = int(sys.argv[1]), float(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
l.bind(("0.0.0.0", port))
l.listen(1)
c, _ = l.accept()
time.sleep(0.5)
c.settimeout(timeout)
h, n, end = hashlib.sha256(), 0, "eof"
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
        time.sleep(0.02)
except socket.timeout:
    end = "timeout"
except ConnectionResetError:
    end = "reset"
c.close()
print(n, h.hexdigest(), end, flush=True)
