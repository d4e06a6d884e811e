"""A slow TCP reader: slow_sink.py PORT TIMEOUT

Accepts one connection with a small receive buffer, waits half a second
before it starts reading (so that the sender's last few hundred KB are still
queued on its side), then reads to end-of-file or TIMEOUT seconds of
silence, and prints: BYTES SHA256 eof|timeout.
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
except socket.timeout:
    end = "timeout"
c.close()
print(n, h.hexdigest(), end, flush=True)
