"""A remote peer a test program commands, on kernel sockets in the other
namespace: it makes events happen on the program's sockets on cue.

Control connection on port 7010, one command per line, answered "OK":
  CONNECT <port>   open a connection to the program's address:<port>
  ACCEPT           take the program's next connection to port 7011
  SEND <n>         send n bytes on the current connection
  SHUTWR           shut down the writing side (FIN)
  RESET            reset the connection (SO_LINGER 0, close)
  CLOSE            close it
  DRAIN            read whatever the program sent, for half a second
  UDP <port> <n>   send an n-byte datagram to the program's address:<port>
"""
import socket
import struct
import sys
import threading
import time


def serve(ctl, peer_ip, data_listener):
    data = None
    buf = b""
    f = ctl.makefile("rb")
    for line in f:
        words = line.decode().split()
        if not words:
            continue
        cmd = words[0]
        if cmd == "CONNECT":
            data = socket.create_connection((peer_ip, int(words[1])))
        elif cmd == "ACCEPT":
            data, _ = data_listener.accept()
        elif cmd == "SEND":
            data.sendall(b"x" * int(words[1]))
        elif cmd == "SHUTWR":
            data.shutdown(socket.SHUT_WR)
        elif cmd == "RESET":
            data.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            data.close()
            data = None
        elif cmd == "CLOSE":
            data.close()
            data = None
        elif cmd == "DRAIN":
            data.settimeout(0.05)
            end = time.time() + 0.5
            while time.time() < end:
                try:
                    if not data.recv(1 << 20):
                        break
                except socket.timeout:
                    pass
            data.settimeout(None)
        elif cmd == "UDP":
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(b"u" * int(words[2]), (peer_ip, int(words[1])))
            u.close()
        ctl.sendall(b"OK\n")
    if data:
        data.close()


def main():
    ctl_listener = socket.socket()
    ctl_listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ctl_listener.bind(("0.0.0.0", 7010))
    ctl_listener.listen(8)
    data_listener = socket.socket()
    data_listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    data_listener.bind(("0.0.0.0", 7011))
    data_listener.listen(8)
    print("ready", flush=True)
    while True:
        ctl, (peer_ip, _) = ctl_listener.accept()
        threading.Thread(target=serve, args=(ctl, peer_ip, data_listener), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
