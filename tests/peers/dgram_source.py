"""Datagrams on request, with a chosen TOS and TTL (a kernel socket, in the
peer namespace): dgram_source.py PORT

A request is a datagram "COUNT SIZE TOS TTL [DONE_PORT]": COUNT datagrams of
SIZE bytes go back to the requester's address, then, with DONE_PORT, one
"done" datagram to that port of the same address (so that a receiver that
lets its buffer fill knows when the burst is over). Prints "ready" once
bound.
"""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    req, (ip, port) = s.recvfrom(256)
    parts = [int(x) for x in req.split()]
    count, size, tos, ttl = parts[:4]
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    for i in range(count):
        s.sendto(bytes([65 + i % 26]) * size, (ip, port))
    if len(parts) > 4:
        s.sendto(b"done", (ip, parts[4]))
