"""DNS queries for a.test (type A) against SERVER: N over UDP, one at a
time, then M TCP connections of 10 queries each (a 2-byte length before
each message, RFC 1035 4.2.2). Prints "udp K/N tcp L/M*10": the queries
answered with the record a.test's zone gives (10.1.2.3) and the query's own
id. Exits 1 if any went unanswered. With "fastopen", the first TCP
connection is made by a sendto() with MSG_FASTOPEN: its first query rides
in the SYN where the client's net.ipv4.tcp_fastopen lets it (0x4: without a
cookie), and a server that does not take it gets it again after the
handshake.

usage: dns_load.py SERVER N M [fastopen]"""
import socket
import struct
import sys

server, n_udp, n_tcp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fastopen = sys.argv[4:] == ["fastopen"]
WANT = socket.inet_aton("10.1.2.3")


def query(qid):
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    name = b"".join(bytes([len(p)]) + p for p in (b"a", b"test")) + b"\0"
    return header + name + struct.pack("!HH", 1, 1)  # type A, class IN


def good(answer, qid):
    if len(answer) < 12:
        return False
    rid, flags, _, ancount = struct.unpack("!HHHH", answer[:8])
    return rid == qid and flags & 0x8000 and (flags & 0xF) == 0 and ancount >= 1 and WANT in answer


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


udp_ok = misses = 0
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
for i in range(n_udp):
    qid = (i * 7919 + 1) & 0xFFFF
    u.sendto(query(qid), (server, 53))
    try:
        while True:  # (a late answer to an earlier query is not this one's)
            answer, _ = u.recvfrom(4096)
            if struct.unpack("!H", answer[:2])[0] == qid:
                break
        udp_ok += good(answer, qid)
    except socket.timeout:
        misses += 1
        if misses == 5:  # (no server: not 500 timeouts)
            break

tcp_ok = 0
for c in range(n_tcp):
    try:
        conn = socket.socket()
        if not (fastopen and c == 0):
            conn.settimeout(5)
            conn.connect((server, 53))
        with conn:
            for i in range(10):
                qid = (c * 10 + i + 1) & 0xFFFF
                q = query(qid)
                if fastopen and c == 0 and i == 0:  # (blocking: connects, then sends the rest)
                    message = struct.pack("!H", len(q)) + q
                    sent = conn.sendto(message, socket.MSG_FASTOPEN, (server, 53))
                    conn.settimeout(5)
                    conn.sendall(message[sent:])
                else:
                    conn.sendall(struct.pack("!H", len(q)) + q)
                (length,) = struct.unpack("!H", read_exactly(conn, 2))
                tcp_ok += good(read_exactly(conn, length), qid)
    except OSError as e:
        print("tcp connection %d: %s" % (c, e), file=sys.stderr)

print("udp %d/%d tcp %d/%d" % (udp_ok, n_udp, tcp_ok, n_tcp * 10))
sys.exit(0 if udp_ok == n_udp and tcp_ok == n_tcp * 10 else 1)
