"""Bad input to an xdpload broker's socket, as a buggy or hostile local
program would send it (rings/broker_protocol.h has the real layout).

  broker_abuser.py IFACE

Each case prints "case: answer" and the run ends with "survived" if the
broker answered every malformed message with an error (never a welcome or
a success) and is still accepting connections at the end. Exit 0 then.
"""
import array
import errno
import os
import socket
import struct
import sys
import time

MAGIC, VERSION = 0x524B4258, 2  # rings/broker_protocol.h kVersion
HELLO, WELCOME, CLAIM, RELEASE, REPLY, SHARE, FLOW = 1, 2, 3, 4, 5, 6, 7


def header(op, magic=MAGIC, version=VERSION):
    return struct.pack("<IHH", magic, version, op)


def hello(name=b"abuser"):
    return header(HELLO) + name.ljust(64, b"\0")


def claim(proto, port, op=CLAIM):
    return header(op) + struct.pack("<BBH", proto, 0, port)


def flow(proto, port, on=1, remote_ip=b"\x0a\x00\x00\x02", remote_port=1234, op=FLOW):
    return header(op) + struct.pack("<BBH4sHH", proto, on, port, remote_ip, remote_port, 0)


def connect(iface):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect("\0xdpload-broker:" + iface)
    return s


def ask(s, data, fds=()):
    """Sends one message (with descriptors), returns (op, status) of the answer."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([data], anc)
    msg, anc, flags, _ = s.recvmsg(4096, socket.CMSG_SPACE(4 * 80))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in got:
                os.close(fd)
    magic, version, op = struct.unpack_from("<IHH", msg)
    status = struct.unpack_from("<i", msg, 8)[0]
    return op, status


def main():
    iface = sys.argv[1]
    bad = 0

    def expect_error(name, s, data, fds=(), want=None):
        nonlocal bad
        try:
            op, status = ask(s, data, fds)
        except OSError as e:
            print(f"{name}: no answer ({e})")
            bad += 1
            return
        ok = op == REPLY and status != 0 and (want is None or status == want)
        print(f"{name}: op {op} status {errno.errorcode.get(status, status)}{'' if ok else '  <-- WRONG'}")
        bad += not ok

    s = connect(iface)
    expect_error("garbage", s, b"garbage", want=errno.EPROTO)
    expect_error("wrong magic", s, header(HELLO, magic=0xDEADBEEF) + bytes(64), want=errno.EPROTO)
    expect_error("wrong version", s, header(HELLO, version=99) + bytes(64), want=errno.EPROTO)
    expect_error("truncated hello", s, hello()[:20], want=errno.EPROTO)
    expect_error("oversized message", s, hello() + bytes(2000), want=errno.EPROTO)
    expect_error("unknown operation", s, header(77) + bytes(4), want=errno.EPROTO)
    expect_error("claim before hello", s, claim(socket.IPPROTO_UDP, 9500), want=errno.EPROTO)

    # A proper hello: the broker serves this connection from now on.
    op, status = ask(s, hello())
    print(f"hello: op {op} status {status}")
    if op != WELCOME or status != 0:
        bad += 1
    expect_error("second hello", s, hello(), want=errno.EPROTO)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", 9500))
    expect_error("claim without a socket", s, claim(socket.IPPROTO_UDP, 9500), want=errno.EPERM)
    expect_error("claim of a port the socket does not hold", s, claim(socket.IPPROTO_UDP, 9600),
                 [u.fileno()], want=errno.EPERM)
    expect_error("claim of tcp with a udp socket", s, claim(socket.IPPROTO_TCP, 9500),
                 [u.fileno()], want=errno.EPERM)
    p = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    expect_error("claim with a unix socket", s, claim(socket.IPPROTO_UDP, 9500), [p.fileno()],
                 want=errno.EPERM)
    expect_error("claim of icmp", s, claim(1, 9500), [u.fileno()], want=errno.EINVAL)
    expect_error("claim of port 0", s, claim(socket.IPPROTO_UDP, 0), [u.fileno()], want=errno.EINVAL)
    expect_error("claim with four descriptors", s, claim(socket.IPPROTO_UDP, 9500),
                 [p.fileno(), p.fileno(), p.fileno(), p.fileno()], want=errno.EPERM)
    expect_error("release of a port not claimed", s, claim(socket.IPPROTO_UDP, 9501, op=RELEASE),
                 want=errno.ENOENT)
    expect_error("claim of the wrong size", s, claim(socket.IPPROTO_UDP, 9500) + b"x", [u.fileno()],
                 want=errno.EPROTO)
    # Per-flow steering of a port shared with the kernel: only for the
    # program's own ports.
    expect_error("share of a port not claimed", s, flow(socket.IPPROTO_TCP, 9502, op=SHARE),
                 want=errno.ENOENT)
    expect_error("flow on a port not claimed", s, flow(socket.IPPROTO_TCP, 9502), want=errno.ENOENT)
    expect_error("flow of the wrong size", s, flow(socket.IPPROTO_TCP, 9502)[:-2], want=errno.EPROTO)
    expect_error("flow of icmp", s, flow(1, 9502), want=errno.EINVAL)
    expect_error("share of icmp", s, flow(1, 9502, op=SHARE), want=errno.EINVAL)
    # A flow is the stack's (1) or the kernel's (2, a connection handed over).
    expect_error("flow neither the stack's nor the kernel's", s, flow(socket.IPPROTO_TCP, 9502, on=3),
                 want=errno.EINVAL)
    # The legitimate claim, after all that, works.
    op, status = ask(s, claim(socket.IPPROTO_UDP, 9500), [u.fileno()])
    print(f"valid claim: op {op} status {status}")
    bad += not (op == REPLY and status == 0)
    s.close()

    # A flood of connections that never say hello.
    flood = []
    for _ in range(300):
        try:
            flood.append(connect(iface))
        except OSError:
            pass
    print(f"flood: {len(flood)} connections made")
    for f in flood:
        f.close()

    # Still serving (once the backlog the flood filled has drained).
    for _ in range(50):
        try:
            s = connect(iface)
            break
        except OSError:
            time.sleep(0.1)
    else:
        s = connect(iface)
    op, status = ask(s, hello(b"after"))
    print(f"hello after the abuse: op {op} status {status}")
    bad += not (op == WELCOME and status == 0)
    s.close()
    print("survived" if bad == 0 else f"{bad} wrong answers")
    sys.exit(0 if bad == 0 else 1)


if __name__ == "__main__":
    main()
