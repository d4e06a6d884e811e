#!/usr/bin/env python3
"""A UDP receiver for the tests of an accelerated socket's kernel side.

  udp_receiver.py MODE PORT COUNT [GROUP ADDR | OWN-ADDR]

Binds 0.0.0.0:PORT (SO_REUSEADDR), joins multicast GROUP on the interface
of address ADDR if given, prints "ready", then receives until COUNT
datagrams or 3 s of silence (10 s before the first), and prints "got N".
MODE says how it waits:
- timeout: a socket timeout (CPython polls, then receives without
  blocking);
- epoll-et: non-blocking, epoll edge-triggered, draining to EAGAIN at each
  event; after each drain that read something it sends itself one
  datagram from a second socket to OWN-ADDR (through the kernel), which
  arrives microseconds after the receive that found none: one datagram
  from outside starts the chain.
"""
import select
import socket
import struct
import sys

mode, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if len(sys.argv) > 5:  # (a group to join)
    mreq = struct.pack("4s4s", socket.inet_aton(sys.argv[4]), socket.inet_aton(sys.argv[5]))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
print("ready", flush=True)
got = 0
if mode == "timeout":
    s.settimeout(10)
    try:
        while got < count:
            s.recv(100)
            got += 1
            s.settimeout(3)
    except socket.timeout:
        pass
else:
    s.setblocking(False)
    me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own = sys.argv[4] if len(sys.argv) == 5 else "127.0.0.1"
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
    while got < count:
        if not ep.poll(3 if got else 10):
            break
        before = got
        while True:
            try:
                s.recv(100)
                got += 1
            except BlockingIOError:
                break
        if before < got < count:
            me.sendto(b"to myself", (own, port))
print("got", got, flush=True)
