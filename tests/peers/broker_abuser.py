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

MAGIC, VERSION = 0x524B4258, 3  # rings/broker_protocol.h kVersion
HELLO, WELCOME, CLAIM, RELEASE, REPLY, SHARE, FLOW, HANDOVER = 1, 2, 3, 4, 5, 6, 7, 8
BUILD, FINISH, DROP = 1, 2, 3


def header(op, magic=MAGIC, version=VERSION, seq=0):
    """rings/broker_protocol.h Header: the answer repeats seq, the request's number."""
    return struct.pack("<IHHI", magic, version, op, seq)


def hello(name=b"abuser"):
    return header(HELLO) + name.ljust(64, b"\0")


def claim(proto, port, op=CLAIM, seq=0):
    return header(op, seq=seq) + struct.pack("<BBH", proto, 0, port)


def flow(proto, port, on=1, remote_ip=b"\x0a\x00\x00\x02", remote_port=1234, op=FLOW):
    return header(op) + struct.pack("<BBH4sHH", proto, on, port, remote_ip, remote_port, 0)


def handover(step, local_port, local_ip, remote_ip, remote_port=1234, mss=1460, in_len=0,
             out_len=0, in_flight=0):
    """rings/broker_protocol.h HandoverMsg: a header, the step, rings/tcp_repair.h RepairState."""
    state = struct.pack("<4s4sHHHBBBBHIIIIIIIIIII", local_ip, remote_ip, local_port, remote_port,
                        mss, 0, 0, 0, 0, 0, 1000, 2000, 0, 1000, 65535, 65535, 2000, 65535,
                        in_len, out_len, in_flight)
    return header(HANDOVER) + struct.pack("<B3x", step) + state


def memfd(data=b""):
    fd = os.memfd_create("abuser")
    os.write(fd, data)
    return fd


def interface_address(iface):
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface.encode()))  # SIOCGIFADDR
    s.close()
    return req[20:24]


def connect(iface):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect("\0xdpload-broker:" + iface)
    return s


def ask(s, data, fds=(), keep=None):
    """Sends one message (with descriptors), returns (op, status) of the answer.
    Descriptors that come back are closed, or appended to `keep`."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([data], anc)
    msg, anc, flags, _ = s.recvmsg(4096, socket.CMSG_SPACE(4 * 80))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in got:
                if keep is not None:
                    keep.append(fd)
                else:
                    os.close(fd)
    magic, version, op, seq = struct.unpack_from("<IHHI", msg)
    status = struct.unpack_from("<i", msg, 12)[0]
    global last_text, last_seq
    last_text = msg[16:216].split(b"\0")[0].decode(errors="replace") if len(msg) >= 216 else ""
    last_seq = seq
    return op, status


last_text = ""
last_seq = 0


def main():
    iface = sys.argv[1]
    bad = 0

    def expect_error(name, s, data, fds=(), want=None, saying=None):
        nonlocal bad
        try:
            op, status = ask(s, data, fds)
        except OSError as e:
            print(f"{name}: no answer ({e})")
            bad += 1
            return
        ok = op == REPLY and status != 0 and (want is None or status == want)
        ok = ok and (saying is None or saying in last_text)
        print(f"{name}: op {op} status {errno.errorcode.get(status, status)}"
              f"{' (' + last_text + ')' if saying else ''}{'' if ok else '  <-- WRONG'}")
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
    op, status = ask(s, header(HELLO, seq=7) + b"abuser".ljust(64, b"\0"))
    print(f"hello: op {op} status {status} number {last_seq}")
    if op != WELCOME or status != 0 or last_seq != 7:
        bad += 1
    # Every answer repeats its request's number: a program that gave up on
    # a late answer tells it from the next one's by it.
    for seq in (0xC0FFEE, 0xFFFFFFFF):
        op, status = ask(s, claim(socket.IPPROTO_UDP, 9501, op=RELEASE, seq=seq))
        ok = op == REPLY and status == errno.ENOENT and last_seq == seq
        print(f"answer numbered as its request {seq:#x}: op {op} number {last_seq:#x}"
              f"{'' if ok else '  <-- WRONG'}")
        bad += not ok
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
    # A connection built by the broker for a program without CAP_NET_ADMIN:
    # only on a TCP port the program holds (claimed, and no other user's
    # socket on it now), at the interface's address, to a real peer, with
    # a state and bytes a TCP connection can have; the socket comes back
    # only once out of repair mode.
    ifaddr = interface_address(iface)
    peer = ifaddr[:3] + bytes([(ifaddr[3] % 250) + 1])  # (on the interface's subnet)
    m = memfd()
    expect_error("handover without the bytes' memfd", s, handover(BUILD, 9503, ifaddr, peer),
                 want=errno.EBADF)
    expect_error("handover on a port not claimed", s, handover(BUILD, 9503, ifaddr, peer), [m],
                 want=errno.EPERM)
    expect_error("handover of the wrong size", s, handover(BUILD, 9503, ifaddr, peer)[:-4], [m],
                 want=errno.EPROTO)
    expect_error("handover finished before it was built", s, handover(FINISH, 9503, ifaddr, peer),
                 want=errno.ENOENT)
    expect_error("handover dropped before it was built", s, handover(DROP, 9503, ifaddr, peer),
                 want=errno.ENOENT)
    expect_error("handover of no known step", s, handover(9, 9503, ifaddr, peer), [m],
                 want=errno.EINVAL)
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("0.0.0.0", 9503))
    held.listen(1)
    op, status = ask(s, claim(socket.IPPROTO_TCP, 9503), [held.fileno()])
    print(f"tcp claim: op {op} status {status}")
    bad += not (op == REPLY and status == 0)
    expect_error("handover at another address than the interface's", s,
                 handover(BUILD, 9503, b"\x7f\x00\x00\x01", peer), [m], want=errno.EPERM)
    for name, where in (("no peer", bytes(4)), ("loopback", b"\x7f\x00\x00\x01"),
                        ("a multicast group", b"\xe0\x00\x00\x01"), ("this host", ifaddr)):
        expect_error(f"handover towards {name}", s, handover(BUILD, 9503, ifaddr, where), [m],
                     want=errno.EINVAL)
    expect_error("handover with an impossible state (mss 10)", s,
                 handover(BUILD, 9503, ifaddr, peer, mss=10), [m], want=errno.EINVAL)
    expect_error("handover of more bytes than the memfd holds", s,
                 handover(BUILD, 9503, ifaddr, peer, in_len=100), [m], want=errno.EINVAL)
    expect_error("handover of more bytes than a stack holds", s,
                 handover(BUILD, 9503, ifaddr, peer, out_len=64 << 20), [m], want=errno.EINVAL)
    # The port let go (its listener closed, not released: the claim is
    # old) and bound by another user since: refused; then by nobody at all.
    held.close()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            o = socket.socket()
            o.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            o.bind(("0.0.0.0", 9503))  # (bound only: sock_diag lists it as bound-inactive)
            os.write(ready_w, b"y")
            time.sleep(5)
        except OSError as e:
            os.write(ready_w, b"n")
            print(f"(another user's bind: {e})")
        os._exit(0)
    os.close(ready_w)
    if os.read(ready_r, 1) == b"y":
        expect_error("handover on a port another user's socket holds now", s,
                     handover(BUILD, 9503, ifaddr, peer), [m], want=errno.EPERM,
                     saying="uid 65534 has a socket")
    else:
        print("handover on a port another user's socket holds now: could not bind  <-- WRONG")
        bad += 1
    os.close(ready_r)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    expect_error("handover on a claimed port the program no longer holds", s,
                 handover(BUILD, 9503, ifaddr, peer), [m], want=errno.EPERM,
                 saying="holds no socket")
    # A legitimate one: built, then finished; the socket that comes back is
    # connected and no longer in repair mode (its repair options refused).
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("0.0.0.0", 9503))
    held.listen(1)
    pr, pw = os.pipe()
    expect_error("handover with a pipe for the memfd (reads that may block)", s,
                 handover(BUILD, 9503, ifaddr, peer), [pr], want=errno.EINVAL)
    os.close(pr)
    os.close(pw)
    op, status = ask(s, handover(BUILD, 9503, ifaddr, peer, remote_port=1235), [m])
    op2, status2 = ask(s, handover(DROP, 9503, ifaddr, peer, remote_port=1235))
    print(f"handover built, then dropped: status {status}, {status2}")
    bad += not (op == REPLY and status == 0 and op2 == REPLY and status2 == 0)
    expect_error("handover finished after it was dropped", s,
                 handover(FINISH, 9503, ifaddr, peer, remote_port=1235), want=errno.ENOENT)
    op, status = ask(s, handover(BUILD, 9503, ifaddr, peer), [m])
    print(f"handover built: op {op} status {status}")
    bad += not (op == REPLY and status == 0)
    expect_error("the same handover built twice", s, handover(BUILD, 9503, ifaddr, peer), [m],
                 want=errno.EALREADY)
    back = []
    op, status = ask(s, handover(FINISH, 9503, ifaddr, peer), keep=back)
    ok = op == REPLY and status == 0 and len(back) == 1
    if ok:
        c = socket.socket(fileno=back[0])
        try:
            c.setsockopt(socket.IPPROTO_TCP, 20, 1)  # TCP_REPAIR_QUEUE: only in repair mode
            ok = False
        except OSError as e:
            ok = e.errno == errno.EPERM
        ok = ok and c.getpeername() == (socket.inet_ntoa(peer), 1234)
        c.close()
    print(f"handover finished: op {op} status {status}, a connected socket out of repair mode: {ok}")
    bad += not ok
    held.close()
    os.close(m)
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
