#!/usr/bin/env python3
"""Sends a file over TCP and prints how long the transfer took, in seconds:
from just after the connection is up to the receiver's end of stream
(the receiver closes when it has everything), so that neither process
start-up nor connection set-up counts.

  timed_send.py HOST PORT FILE [CONGESTION]

CONGESTION (cubic, reno...) is asked for with TCP_CONGESTION before the
connection is made.
"""
import socket
import sys
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
# One read of a byte in every page, from user space, before the clock
# starts. read() filled the pages from the kernel; a kernel sender then
# copies them from the kernel again, xdpload copies them from user space.
# On a guest with shadow page tables (this PVM machine) the first access
# to a page from the other privilege level costs about 9 us (measured:
# 110-120 ms for the 12,800 pages of 50 MB, then 0.4 ms), which only the
# xdpload sender would pay inside the timed part. Touched from both sides
# first, neither pays it: a program's own data is its own to start with.
data[::4096]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if len(sys.argv) > 4:
    s.setsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_CONGESTION", 13), sys.argv[4].encode())
s.connect((host, port))
t0 = time.monotonic()
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(f"{time.monotonic() - t0:.4f}")
