"""Echo servers and checking clients, on whatever sockets the process gets
(kernel ones, or xdpload's when preloaded).

  echo_peer.py serve IP TCP_PORTS UDP_PORTS    echo on every port (comma lists)
  echo_peer.py tcp IP PORT BYTES               send BYTES, expect them back
  echo_peer.py udp IP PORT COUNT               COUNT datagrams of 512 bytes, echoed

Clients exit 0 when every byte came back intact, 1 otherwise.
"""
import os
import socket
import sys
import threading


def echo_tcp(conn):
    with conn:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
        except ConnectionResetError:
            return  # (the client reset it: some tests do so on purpose)


def tcp_server(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=echo_tcp, args=(conn,), daemon=True).start()


def udp_server(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data, peer)


def ports(text):
    return [int(p) for p in text.split(",") if p]


def serve(ip, tcp_ports, udp_ports):
    threads = [threading.Thread(target=tcp_server, args=(ip, p), daemon=True) for p in ports(tcp_ports)]
    threads += [threading.Thread(target=udp_server, args=(ip, p), daemon=True) for p in ports(udp_ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def tcp_client(ip, port, nbytes):
    payload = os.urandom(nbytes)
    s = socket.create_connection((ip, port), timeout=20)
    got = bytearray()

    def reader():
        while len(got) < nbytes:
            chunk = s.recv(65536)
            if not chunk:
                break
            got.extend(chunk)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join()
    s.close()
    return bytes(got) == payload


def udp_client(ip, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    for i in range(count):
        msg = i.to_bytes(4, "big") + os.urandom(508)
        for _ in range(3):  # a datagram may be lost; ask again
            s.sendto(msg, (ip, port))
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                continue
            if data == msg:
                ok += 1
                break
    return ok == count


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "tcp":
        sys.exit(0 if tcp_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])) else 1)
    elif mode == "udp":
        sys.exit(0 if udp_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])) else 1)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
