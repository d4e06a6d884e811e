"""Watches IPv4 UDP packets arriving on an interface (a packet socket, in the
peer namespace) and prints, for each to a port in [LOW, HIGH], its
destination port and whether it has DF set: df_watch.py IFACE LOW HIGH

and whether its IP header checksum is right. Prints "ready" once the
socket is bound.
"""
import socket
import struct
import sys

ETH_P_IP = 0x0800
iface, low, high = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
s.bind((iface, ETH_P_IP))
print("ready", flush=True)
while True:
    pkt = s.recv(65535)
    if len(pkt) < 28 or pkt[9] != 17:
        continue
    ihl = (pkt[0] & 0x0F) * 4
    flags = struct.unpack("!H", pkt[6:8])[0]
    dport = struct.unpack("!H", pkt[ihl + 2:ihl + 4])[0]
    if low <= dport <= high:
        total = sum(struct.unpack("!%dH" % (ihl // 2), pkt[:ihl]))
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        ok = "good" if total == 0xFFFF else "bad"
        print(f"port {dport} df {1 if flags & 0x4000 else 0} checksum {ok}", flush=True)
