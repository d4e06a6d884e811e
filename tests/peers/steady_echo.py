"""Steady echo traffic, to see whether something else disturbs it.

  steady_echo.py IP UDP_PORT TCP_PORT STOP_FILE

One UDP socket and one TCP connection to echo servers, each sending a
message and waiting for its echo in turn, until STOP_FILE exists. Prints

  udp N echoes, E errors, max gap G ms
  tcp N echoes, E errors, max gap G ms

where an error is a wrong echo, a lost datagram (no echo in 1 s) or a
failed TCP call, and the gap is the longest wait for one echo. Exit 0 when
there were no errors.
"""
import os
import socket
import sys
import threading
import time


def udp_loop(ip, port, stop, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    n = err = 0
    gap = 0.0
    seq = 0
    while not os.path.exists(stop):
        msg = seq.to_bytes(8, "big") + b"u" * 56
        seq += 1
        t = time.monotonic()
        s.sendto(msg, (ip, port))
        try:
            ok = s.recv(2048) == msg
        except socket.timeout:
            ok = False
        gap = max(gap, time.monotonic() - t)
        n += ok
        err += not ok
    out.append(f"udp {n} echoes, {err} errors, max gap {gap * 1000:.1f} ms")
    out.append(err)


def tcp_loop(ip, port, stop, out):
    n = err = 0
    gap = 0.0
    try:
        c = socket.create_connection((ip, port), timeout=5)
        seq = 0
        while not os.path.exists(stop):
            msg = seq.to_bytes(8, "big") + b"t" * 1016
            seq += 1
            t = time.monotonic()
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                part = c.recv(len(msg) - len(got))
                if not part:
                    raise OSError("connection closed")
                got += part
            gap = max(gap, time.monotonic() - t)
            if got == msg:
                n += 1
            else:
                err += 1
        c.close()
    except OSError as e:
        print("tcp error:", e, flush=True)
        err += 1
    out.append(f"tcp {n} echoes, {err} errors, max gap {gap * 1000:.1f} ms")
    out.append(err)


def main():
    ip, uport, tport, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    u, t = [], []
    threads = [threading.Thread(target=udp_loop, args=(ip, uport, stop, u)),
               threading.Thread(target=tcp_loop, args=(ip, tport, stop, t))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(u[0])
    print(t[0])
    sys.exit(0 if u[1] == 0 and t[1] == 0 else 1)


if __name__ == "__main__":
    main()
