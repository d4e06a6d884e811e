# Malformed frames sent at the stack from namespace B (scapy): wrong UDP,
# TCP and IP header checksums, lengths that disagree (IP total length past
# the frame, UDP length off, TCP data offset out of range), TCP options that
# run past the header, headers the XDP program cannot read, random bytes
# after valid headers. The ones steered to the stack are dropped and counted
# (xdpload-stat), each class exactly, the ones the XDP program passes are
# dropped by A's kernel, none is answered, and the program under xdpload
# keeps serving TCP and UDP byte-exact.
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
wait_for 50 has_segment "$server"
# A first exchange, so that the counters below start from a working stack.
check "echo works before" in_b python3 "$peer" udp "$IP_A" 7301 5

# Each class in its own phase, and each phase must move exactly its own
# counter by exactly the number of frames sent (the counters of the stack's
# driver are live; those of A's kernel are its own): a frame counted twice,
# in the wrong class or not at all shows. Nothing may come back to B: no
# echo, no SYN-ACK, no ICMP (B's kernel counters, across the phase and a
# marker exchange after it, move by the marker's 3 echoes only).
counter() { xstat_counter "$server" "$1"; }
bad_now() { counter rx_bad_checksum; }
mal_now() { counter rx_malformed; }
ker_now() { echo $(( $(kernel_counter "$NS_A" IpInHdrErrors) + $(kernel_counter "$NS_A" IpExtInTruncatedPkts) )); }
reached() { [ "$($1)" -ge "$2" ]; }  # reached FUNCTION VALUE
b_replies() {  # B's kernel: UDP datagrams, UDP to closed ports, TCP segments, ICMP messages
  echo "$(kernel_counter "$NS_B" UdpInDatagrams) $(kernel_counter "$NS_B" UdpNoPorts)" \
    "$(kernel_counter "$NS_B" TcpInSegs) $(kernel_counter "$NS_B" IcmpInMsgs)"
}
phase() {  # CLASS bad|mal|ker: send the class, then compare every counter
  local class=$1 which=$2 want r0 r1 d=()
  declare -A base=([bad]=$(bad_now) [mal]=$(mal_now) [ker]=$(ker_now)) exp=([bad]=0 [mal]=0 [ker]=0)
  r0=($(b_replies))
  in_b python3 "$TOP/tests/peers/malformed_frames.py" "$IF_B" "$MAC_A" "$IP_A" 7300 7301 20 "$class" \
    >"$tmp/sent-$class"
  want=$(sed -n "s/.*$class=\([0-9]*\).*/\1/p" "$tmp/sent-$class")
  exp[$which]=$want
  # (counted as they pass: waited for, then the marker's echo shows the
  # stack has moved past them)
  wait_for 100 reached "${which}_now" $((base[$which] + want))
  in_b python3 "$peer" udp "$IP_A" 7301 3 || fail "$class: the marker echo after the phase"
  r1=($(b_replies))
  local db=$(( $(bad_now) - base[bad] )) dm=$(( $(mal_now) - base[mal] )) dk=$(( $(ker_now) - base[ker] ))
  for i in 0 1 2 3; do d+=($((r1[i] - r0[i]))); done
  echo "$class: sent $want; bad checksum +$db, malformed +$dm, A's kernel header errors +$dk; B received (udp, udp no port, tcp, icmp) +${d[*]}"
  check "$class: exactly the $want frames counted, in their own class" \
    [ "$db/$dm/$dk" = "${exp[bad]}/${exp[mal]}/${exp[ker]}" ]
  check "$class: nothing came back to B but the marker's 3 echoes" [ "${d[*]}" = "3 0 0 0" ]
}
phase bad_checksum bad
phase malformed mal
phase kernel ker
# TCP SYNs whose options run past the header (answered, as Linux answers
# them), and valid headers followed by random bytes: whatever they count,
# the program carries on.
in_b python3 "$TOP/tests/peers/malformed_frames.py" "$IF_B" "$MAC_A" "$IP_A" 7300 7301 20 options >/dev/null
in_b python3 "$TOP/tests/peers/malformed_frames.py" "$IF_B" "$MAC_A" "$IP_A" 7300 7301 20 fuzz >/dev/null
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
