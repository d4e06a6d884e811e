#!/usr/bin/env python3
"""Connections where the server closes first and the client comes back from
the same source port: the case of a server in TIME-WAIT (RFC 6191).

  reconnect_peer.py server PORT COUNT [HOLD]
      accepts COUNT connections one after another; each: reads "ping\\n",
      answers "pong\\n" and closes first (the server's end goes to TIME-WAIT);
      then stays HOLD seconds (default 0) for its counters to be read.
  reconnect_peer.py client HOST PORT SRCPORT COUNT GAP
      COUNT times: binds SRCPORT, connects, sends "ping\\n", reads "pong\\n"
      and the server's FIN, closes, waits GAP seconds. Prints "connected N"
      for each connection made.

Every blocking step has a 30 s guard so that a stuck handshake ends the
peer with an error instead of hanging the test.
"""
import socket
import sys
import time

GUARD = 30.0


def serve(port, count, hold):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    ls.settimeout(GUARD * 2)
    for n in range(count):
        c, _ = ls.accept()
        c.settimeout(GUARD)
        got = b""
        while not got.endswith(b"\n"):
            chunk = c.recv(64)
            if not chunk:
                break
            got += chunk
        c.sendall(b"pong\n")
        c.close()
        print("served", n + 1, flush=True)
    ls.close()
    time.sleep(hold)


def connect(host, port, srcport, count, gap):
    for n in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(GUARD)
        s.bind(("0.0.0.0", srcport))
        s.connect((host, port))
        print("connected", n + 1, flush=True)
        s.sendall(b"ping\n")
        got = b""
        while True:
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        if got != b"pong\n":
            print("unexpected reply", got, file=sys.stderr)
            sys.exit(1)
        s.close()
        time.sleep(gap)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0)
    else:
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                float(sys.argv[6]))
