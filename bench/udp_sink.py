#!/usr/bin/env python3
"""Counts the datagrams that reach a UDP port, for the bulk floor
(bench/xsk_bulk.cc): prints "received N" once none has come for half a
second after the first (or for TIMEOUT seconds before it).

  udp_sink.py PORT [TIMEOUT]
"""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# As much buffer as the host allows (SO_RCVBUFFORCE, root): the reader is
# slower than the sender, and what the socket cannot hold is dropped.
s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 64 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]) if len(sys.argv) > 2 else 10)
buf = bytearray(65536)
n = 0
try:
    while True:
        s.recv_into(buf)
        n += 1
        s.settimeout(0.5)
except socket.timeout:
    pass
print("received", n)
