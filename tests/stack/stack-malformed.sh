# Malformed frames sent at the stack from namespace B (scapy): wrong UDP,
# TCP and IP header checksums, lengths that disagree (IP total length past
# the frame, UDP length off, TCP data offset out of range), TCP options that
# run past the header, headers the XDP program cannot read, random bytes
# after valid headers. The ones steered to the stack are dropped and counted
# (xdpload-stat), the ones the XDP program passes are dropped by A's kernel,
# and the program under xdpload keeps serving TCP and UDP byte-exact.
. "$(dirname "$0")/../lib/common.sh"
need_root
python3 -c 'import scapy.all' 2>/dev/null || skip "python3-scapy not installed"
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
peer="$TOP/tests/peers/echo_peer.py"
bg_a "$TOP/tools/xdpload" --iface "$IF_A" -- python3 "$peer" serve 0.0.0.0 7300 7301
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -lunH 'sport = :7301' | grep -q 7301"
wait_for 50 test -e "/dev/shm/xdpload-0/$server"
# A first exchange, so that the counters below start from a working stack.
check "echo works before" in_b python3 "$peer" udp "$IP_A" 7301 5

# json COUNTER: one counter of the server, from xdpload-stat.
counter() { xstat_counter "$server" "$1"; }
bad0=$(counter rx_bad_checksum) mal0=$(counter rx_malformed)
hdr0=$(kernel_counter "$NS_A" IpInHdrErrors) trunc0=$(kernel_counter "$NS_A" IpExtInTruncatedPkts)
in_b python3 "$TOP/tests/peers/malformed_frames.py" "$IF_B" "$MAC_A" "$IP_A" 7300 7301 20 >"$tmp/sent"
cat "$tmp/sent"
sleep 1.2  # xdpload-stat's lwIP figures are refreshed about once a second
bad=$(( $(counter rx_bad_checksum) - bad0 )) mal=$(( $(counter rx_malformed) - mal0 ))
hdr=$(( $(kernel_counter "$NS_A" IpInHdrErrors) - hdr0 ))
trunc=$(( $(kernel_counter "$NS_A" IpExtInTruncatedPkts) - trunc0 ))
want() { sed -n "s/.*$1=\\([0-9]*\\).*/\\1/p" "$tmp/sent"; }
echo "stack: bad checksum +$bad (sent $(want bad_checksum)), malformed +$mal (sent $(want malformed)); kernel: header errors +$hdr, truncated +$trunc (sent $(want kernel))"
check "every frame with a wrong checksum dropped and counted" [ "$bad" -ge "$(want bad_checksum)" ]
check "every frame with inconsistent lengths dropped and counted" [ "$mal" -ge "$(want malformed)" ]
check "frames the XDP program cannot read go to A's kernel, which drops them" \
  [ $((hdr + trunc)) -ge "$(want kernel)" ]
check "the program under xdpload is still running" kill -0 "$server"
check "UDP echo still byte-exact" in_b python3 "$peer" udp "$IP_A" 7301 200
check "TCP echo still byte-exact (2 MB)" in_b python3 "$peer" tcp "$IP_A" 7300 2000000

# Bytes after a UDP datagram (UDP length shorter than the IP payload): Linux
# trims them and delivers the datagram; so does the stack. The echo comes
# back to B's listener without the padding.
cat >"$tmp/padded.py" <<'PY'
import socket, sys
from scapy.all import IP, UDP, Ether, Raw, conf, sendp
conf.verb = 0
iface, mac, ip, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("0.0.0.0", 40010))
r.settimeout(3)
# UDP checksum 0: none (the sum would cover the UDP length only).
f = Ether(dst=mac) / IP(dst=ip) / UDP(sport=40010, dport=port, len=8 + 5, chksum=0) / Raw(b"hello" + b"P" * 15)
sendp(f, iface=iface)
try:
    print(r.recv(100).decode())
except socket.timeout:
    print("timeout")
PY
got=$(in_b python3 "$tmp/padded.py" "$IF_B" "$MAC_A" "$IP_A" 7301)
check "a padded UDP datagram is trimmed and delivered, as Linux does ($got)" [ "$got" = hello ]
check "A's kernel still answers ping" in_b ping -c 2 -W 2 -q "$IP_A"
finish
