"""A burst of sequenced multicast datagrams, and a receiver that reads it
slowly; on whatever sockets the process gets (kernel, or xdpload's).

  mcast_burst.py send IFACE_IP GROUP PORT COUNT    COUNT 64-byte datagrams, at once
  mcast_burst.py receive IFACE_IP GROUP PORT COUNT [HOLD]
                                                   joins GROUP on the interface of
                                                   IFACE_IP, reads, sleeping 1 ms
                                                   every 1,000 datagrams; prints
                                                   "ready", then how many arrived;
                                                   with HOLD, prints "done" and
                                                   waits for the file HOLD to exist

The receiver's buffer (SO_RCVBUFFORCE, 64 MB) is large enough for the kernel
to keep the whole burst; it stops after COUNT datagrams or 3 s of silence
and exits 0 when none was lost, duplicated or damaged.
"""
import os
import socket
import struct
import sys
import time

SO_RCVBUFFORCE = 33


def send(ip, group, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    pad = bytes(56)
    for seq in range(count):
        s.sendto(struct.pack("!Q", seq) + pad, (group, port))
    return True


def receive(ip, group, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    s.bind((group, port))
    mreq = socket.inet_aton(group) + socket.inet_aton(ip)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    print("ready", flush=True)
    s.settimeout(3)
    seen = bytearray(count)
    got = bad = dup = 0
    while got < count:
        try:
            data = s.recv(2048)
        except socket.timeout:
            break
        if len(data) != 64:
            bad += 1
            continue
        seq = struct.unpack("!Q", data[:8])[0]
        if seq >= count:
            bad += 1
            continue
        if seen[seq]:
            dup += 1
            continue
        seen[seq] = 1
        got += 1
        if got % 1000 == 0:
            time.sleep(0.001)
    print(f"received {got} of {count}, {dup} duplicated, {bad} bad", flush=True)
    return got == count and dup == 0 and bad == 0


def main():
    mode, ip, group, port, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    ok = (send if mode == "send" else receive)(ip, group, port, count)
    if len(sys.argv) > 6:
        print("done", flush=True)
        while not os.path.exists(sys.argv[6]):
            time.sleep(0.05)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
