"""A program that is running through a broker when the broker dies.

  broker_loss_client.py PEER_IP TCP_PORT UDP_PORT NEW_UDP_PORT GO_FILE [THIRD_PORT GO2_FILE]

Echoes UDP on UDP_PORT (a thread), keeps a TCP connection to an echo server
at PEER_IP:TCP_PORT, prints "connected", and waits for GO_FILE. Then it
keeps using the connection until a call fails, and prints "tcp: ERRNO" (or
"tcp: hang" if a call blocks for 5 s); then it opens a UDP socket on
NEW_UDP_PORT, echoes on it too and prints "new socket ready". With
THIRD_PORT, it then waits for GO2_FILE, opens a UDP socket there, echoes
and prints "third socket ready". It runs until killed.
"""
import errno
import os
import socket
import sys
import threading
import time


def echo(sock):
    # Short timeouts: each call goes through the preload again.
    sock.settimeout(0.2)
    while True:
        try:
            data, peer = sock.recvfrom(2048)
        except socket.timeout:
            continue
        sock.sendto(data, peer)


def udp_on(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    threading.Thread(target=echo, args=(s,), daemon=True).start()
    return s


def main():
    peer, tport, uport, new_port, go = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                        int(sys.argv[4]), sys.argv[5])
    keep = [udp_on(uport)]
    c = socket.create_connection((peer, tport), timeout=5)
    c.sendall(b"h" * 1000)
    got = b""
    while len(got) < 1000:
        got += c.recv(1000 - len(got))
    print("connected", flush=True)
    while not os.path.exists(go):
        time.sleep(0.02)
    result = "no error"
    try:
        for _ in range(100000):
            c.sendall(b"x" * 1000)
            got = b""
            while len(got) < 1000:
                part = c.recv(1000 - len(got))
                if not part:
                    raise OSError(0, "end of file")
                got += part
    except socket.timeout:
        result = "hang"
    except OSError as e:
        result = errno.errorcode.get(e.errno, str(e))
    print("tcp:", result, flush=True)
    keep.append(udp_on(new_port))
    print("new socket ready", flush=True)
    if len(sys.argv) > 7:
        third, go2 = int(sys.argv[6]), sys.argv[7]
        while not os.path.exists(go2):
            time.sleep(0.02)
        keep.append(udp_on(third))
        print("third socket ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
