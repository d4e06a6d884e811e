"""A program busy with its sockets in one of several shapes, to be ended by
a signal at any moment (tests/shim/shim-signal-any-moment.sh).

  signal_target.py MODE IP

TCP to IP:7600 (a sink), UDP to IP:7601 (an echo server). MODE:
  tcp       sends to the sink without end
  udp       a datagram and its echo (or 50 ms), without end
  short     connects, sends 1000 bytes and closes, without end
  forked    forks; parent and child each send to the sink without end
  forkloop  a connection, a child that writes to it and _exits, waited for
  execloop  a connection, a child that execs /bin/true, waited for
  exit      fills a connection to IP:7602 (a peer that never reads) and
            exits: exit() goes on delivering for XDPLOAD_EXIT_LINGER_MS
Prints "ready" once its first socket is made.
"""
import os
import socket
import sys

mode, ip = sys.argv[1], sys.argv[2]
announced = False


def ready():
    global announced
    if not announced:
        announced = True
        print("ready", flush=True)


def tcp():
    s = socket.create_connection((ip, 7600))
    ready()
    chunk = b"x" * 65536
    while True:
        s.sendall(chunk)


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.05)
    ready()
    while True:
        s.sendto(b"ping", (ip, 7601))
        try:
            s.recv(100)
        except socket.timeout:
            pass


def short():
    while True:
        s = socket.create_connection((ip, 7600))
        ready()
        s.sendall(b"x" * 1000)
        s.close()


def forked():
    os.fork()
    tcp()


def child_loop(exec_it):
    while True:
        s = socket.create_connection((ip, 7600))
        ready()
        s.sendall(b"y" * 1000)
        pid = os.fork()
        if pid == 0:
            if exec_it:
                os.execv("/bin/true", ["true"])
            s.sendall(b"z" * 1000)
            os._exit(0)
        s.close()
        os.waitpid(pid, 0)


def exiting():
    s = socket.create_connection((ip, 7602))
    s.setblocking(False)
    try:
        while True:
            s.send(b"w" * 65536)
    except BlockingIOError:
        pass
    ready()
    sys.exit(0)


{"exit": exiting, "tcp": tcp, "udp": udp, "short": short, "forked": forked,
 "forkloop": lambda: child_loop(False), "execloop": lambda: child_loop(True)}[mode]()
