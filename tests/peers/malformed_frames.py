"""Malformed frames at an accelerated port, from the other namespace (scapy,
raw Ethernet on the test veth). Each kind is sent COUNT times; the last line
printed says how many of each class went out:

  sent bad_checksum=N malformed=N kernel=N options=N fuzz=N

bad_checksum: the stack's driver should drop and count them as bad
checksums (UDP, TCP, IP header); malformed: as malformed (lengths that
disagree); kernel: the XDP program cannot read their ports and passes them to
the kernel, which drops them; options: TCP SYNs whose options run past the
header (the stack parses them safely, as Linux does); fuzz: valid headers up
to the ports, random bytes after.

  malformed_frames.py IFACE DST_MAC DST_IP TCP_PORT UDP_PORT COUNT [CLASS]

With CLASS, only that class is sent (and counted in the last line).
"""
import os
import random
import sys

from scapy.all import IP, TCP, UDP, Ether, Raw, conf, sendp  # noqa: E402

iface, dst_mac, dst_ip, tcp_port, udp_port, count = sys.argv[1:7]
only = sys.argv[7] if len(sys.argv) > 7 else None
tcp_port, udp_port, count = int(tcp_port), int(udp_port), int(count)
conf.verb = 0
eth = Ether(dst=dst_mac)


def b(pkt):
    return bytes(pkt)


def ip_udp(payload=b"x" * 32, **ip):
    return IP(dst=dst_ip, **ip) / UDP(sport=40000, dport=udp_port) / Raw(payload)


frames = {"bad_checksum": [], "malformed": [], "kernel": [], "options": [], "fuzz": []}
for _ in range(count):
    # Checksums wrong: UDP, TCP, and the IP header's.
    frames["bad_checksum"].append(b(eth / IP(dst=dst_ip) / UDP(sport=40000, dport=udp_port, chksum=0x1234) / Raw(b"y" * 20)))
    frames["bad_checksum"].append(b(eth / IP(dst=dst_ip) / TCP(sport=40001, dport=tcp_port, flags="S", chksum=0x1234)))
    frames["bad_checksum"].append(b(eth / IP(dst=dst_ip, chksum=0x1234) / UDP(sport=40000, dport=udp_port) / Raw(b"z" * 20)))
    # Lengths that disagree.
    raw = bytearray(b(eth / ip_udp()))
    raw[16:18] = (200).to_bytes(2, "big")  # IP total length past the frame
    frames["malformed"].append(bytes(raw))
    frames["malformed"].append(b(eth / IP(dst=dst_ip) / UDP(sport=40000, dport=udp_port, len=400) / Raw(b"q" * 20)))
    frames["malformed"].append(b(eth / IP(dst=dst_ip) / UDP(sport=40000, dport=udp_port, len=7) / Raw(b"q" * 20)))
    frames["malformed"].append(b(eth / IP(dst=dst_ip) / TCP(sport=40001, dport=tcp_port, flags="A", dataofs=15) / Raw(b"w" * 8)))
    frames["malformed"].append(b(eth / IP(dst=dst_ip) / TCP(sport=40001, dport=tcp_port, flags="A", dataofs=2) / Raw(b"w" * 8)))
    # Headers the XDP program cannot read: truncated inside the UDP header,
    # IP header length below 5 words.
    frames["kernel"].append(b(eth / ip_udp())[: 14 + 20 + 4])
    raw = bytearray(b(eth / ip_udp()))
    raw[14] = 0x44
    frames["kernel"].append(bytes(raw))
    # TCP options that run past the header (data offset 6: 4 option bytes):
    # an MSS option claiming 40 bytes, a window-scale option claiming 9.
    for opts in (b"\x02\x28\x05\xb4", b"\x03\x09\x07\x01"):
        t = TCP(sport=random.randint(41000, 60000), dport=tcp_port, flags="S", dataofs=6)
        frames["options"].append(b(eth / IP(dst=dst_ip) / t / Raw(opts)))
    # Valid up to the ports, then random bytes and random lengths.
    for proto in (UDP(sport=40002, dport=udp_port), TCP(sport=40003, dport=tcp_port)):
        head = b(eth / IP(dst=dst_ip) / proto)
        frames["fuzz"].append(head[:38] + os.urandom(random.randint(0, 300)))

if only:
    frames = {only: frames[only]}
for kind in frames:
    sendp(frames[kind], iface=iface)
print("sent " + " ".join(f"{k}={len(v)}" for k, v in frames.items()))
