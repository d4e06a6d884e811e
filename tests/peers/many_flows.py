"""Many flows, each with its own source port, so that a multi-queue
interface spreads them over its receive queues; on whatever sockets the
process gets (kernel ones, or xdpload's when preloaded).

  many_flows.py tcp-clients IP PORT CONNS BYTES   CONNS connections one after
                                                  another to an echo server,
                                                  BYTES each, checked
  many_flows.py udp-senders IP PORT SENDERS COUNT SENDERS sockets, COUNT
                                                  sequenced datagrams each
  many_flows.py udp-receiver IP PORT SENDERS COUNT  expects them all
  many_flows.py udp-echo-clients IP PORT SENDERS COUNT  SENDERS sockets, COUNT
                                                  datagrams each to a UDP echo
                                                  server, each echo checked

With --hold FILE (last arguments) it prints "done" when it has finished and
then waits for FILE to exist, so that a test can read its xdpload-stat
counters while it still runs. Exit 0 when every
byte or datagram arrived intact, 1 otherwise; the first line of output is
a summary.
"""
import os
import socket
import sys
import time

from echo_peer import tcp_client as tcp_once  # one connection, BYTES echoed and checked


def tcp_clients(ip, port, conns, nbytes):
    ok = 0
    for _ in range(conns):
        try:
            ok += tcp_once(ip, port, nbytes)
        except OSError as e:
            print("connection failed:", e, flush=True)
    print(f"tcp {ok} of {conns} connections intact", flush=True)
    return ok == conns


def udp_senders(ip, port, senders, count):
    socks = []
    for _ in range(senders):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        socks.append(s)
    # A moderate rate: one datagram from each sender in turn, a pause per
    # round, so that no receive buffer or ring is the limit.
    for seq in range(count):
        for i, s in enumerate(socks):
            s.sendto(i.to_bytes(2, "big") + seq.to_bytes(4, "big") + bytes(58), (ip, port))
        time.sleep(0.001)
    print(f"udp sent {senders * count}", flush=True)
    return True


def udp_receiver(ip, port, senders, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ip, port))
    print("ready", flush=True)
    s.settimeout(10)
    seen = [set() for _ in range(senders)]
    sources = set()
    bad = 0
    want = senders * count
    got = 0
    while got < want:
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            break
        i, seq = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:6], "big")
        if len(data) != 64 or i >= senders or seq >= count or seq in seen[i]:
            bad += 1
            continue
        seen[i].add(seq)
        sources.add(peer[1])
        got += 1
    print(f"udp {got} of {want} datagrams from {len(sources)} source ports, {bad} bad", flush=True)
    return got == want and bad == 0 and len(sources) == senders


def udp_echo_clients(ip, port, senders, count):
    socks = []
    for _ in range(senders):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        s.settimeout(1)
        socks.append(s)
    ok = 0
    for seq in range(count):
        for i, s in enumerate(socks):
            msg = i.to_bytes(2, "big") + seq.to_bytes(4, "big") + os.urandom(122)
            # A lost datagram is sent again (UDP may lose); a wrong one counts.
            for _ in range(3):
                s.sendto(msg, (ip, port))
                try:
                    data = s.recv(2048)
                except socket.timeout:
                    continue
                ok += data == msg
                break
    print(f"udp {ok} of {senders * count} datagrams echoed intact from {senders} source ports", flush=True)
    return ok == senders * count


def main():
    args = sys.argv[1:]
    hold = None
    if len(args) > 2 and args[-2] == "--hold":
        hold, args = args[-1], args[:-2]
    mode, ip, port, n, m = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
    fn = {"tcp-clients": tcp_clients, "udp-senders": udp_senders, "udp-receiver": udp_receiver,
          "udp-echo-clients": udp_echo_clients}[mode]
    ok = fn(ip, port, n, m)
    if hold:
        print("done", flush=True)
        while not os.path.exists(hold):
            time.sleep(0.05)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
