#!/usr/bin/env python3
"""TCP_CONGESTION as a program sees it.

  congestion_client.py HOST PORT HOLD

Opens two connections to HOST:PORT: the first keeps the namespace's default
congestion control, the second asks for "cubic". Prints what getsockopt
says for each ("default NAME", "cubic NAME"), what asking for an unknown
name gives ("nope ERRNO-NAME"), sends 1 MB on each, prints whether TCP_INFO's
round trip (tcpi_rtt, microseconds) is that of a veth pair, above 0 and
below 40 ms ("rtt sane"), prints "ready" and holds the connections HOLD
seconds (for xdpload-stat to look at them).
"""
import errno
import socket
import struct
import sys
import time

TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


def name_of(s):
    return s.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode()


host, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conns = []
for want in (None, "cubic"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if want:
        s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, want.encode())
    s.connect((host, port))
    print("default" if want is None else want, name_of(s), flush=True)
    conns.append(s)
try:
    conns[0].setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"nope")
    print("nope accepted", flush=True)
except OSError as e:
    print("nope", errno.errorcode.get(e.errno, str(e.errno)), flush=True)
print("after-nope", name_of(conns[0]), flush=True)
for s in conns:
    s.sendall(b"x" * 1000000)
# struct tcp_info: tcpi_rtt is the 16th 32-bit field, after 8 bytes of u8s.
rtt = struct.unpack_from("I", conns[1].getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 8 + 15 * 4)[0]
print("rtt", "sane" if 0 < rtt < 40000 else rtt, flush=True)
print("ready", flush=True)
time.sleep(hold)
for s in conns:
    s.close()
