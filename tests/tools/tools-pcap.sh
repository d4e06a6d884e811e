# xdpload --pcap: the capture of an nc transfer opens in tshark, and the TCP
# payload in it, reassembled by tshark, equals the bytes transferred, both
# directions (nc under xdpload in A receives 2 MB from B and sends 1 MB
# back). Also: the capture holds xdpload's frames only (A's kernel had no
# part), and an unwritable capture file is one line and the kernel path.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v tshark >/dev/null || skip "tshark not installed"
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 2000000 /dev/urandom >"$tmp/to-a"
head -c 1000000 /dev/urandom >"$tmp/to-b"

segs0="$(kernel_counter "$NS_A" TcpInSegs) $(kernel_counter "$NS_A" TcpOutSegs)"
bg_a "$TOP/tools/xdpload" --iface "$IF_A" --pcap "$tmp/a.pcap" --log 1 -- \
  bash -c "nc -l 7000 <$tmp/to-b >$tmp/a-got 2>$tmp/a.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7000' | grep -q 7000"
# B sends its 2 MB and shuts its side down only once A's 1 MB is in: nc in
# A ends at B's end-of-file, stopping its own send wherever it stood.
in_b python3 - "$IP_A" "$tmp/to-a" "$tmp/b-got" <<'PY'
import socket, sys, threading
ip, src, dst = sys.argv[1:]
s = socket.create_connection((ip, 7000))
got = bytearray()
have_1mb = threading.Event()
def reader():
    while True:
        b = s.recv(65536)
        if not b:
            break
        got.extend(b)
        if len(got) >= 1000000:
            have_1mb.set()
    have_1mb.set()
t = threading.Thread(target=reader)
t.start()
s.sendall(open(src, "rb").read())
have_1mb.wait(30)
s.shutdown(socket.SHUT_WR)
t.join(30)
open(dst, "wb").write(got)
PY
wait "$server"
segs1="$(kernel_counter "$NS_A" TcpInSegs) $(kernel_counter "$NS_A" TcpOutSegs)"
cat "$tmp/a.err"
check "nc under xdpload got the 2 MB" cmp -s "$tmp/to-a" "$tmp/a-got"
check "nc in B got the 1 MB back" cmp -s "$tmp/to-b" "$tmp/b-got"
check "the library reports the capture" grep -q "exit: [0-9]* frames written to $tmp/a.pcap" "$tmp/a.err"

# tshark reassembles the stream; "follow,tcp,raw" prints each direction's
# payload in hex, the second direction's lines indented by a tab.
tshark -r "$tmp/a.pcap" -q -z follow,tcp,raw,0 >"$tmp/follow" 2>"$tmp/tshark.err"
check "tshark reads the capture" [ $? -eq 0 ]
cat "$tmp/tshark.err"
# Node 0 is the side that sent the first segment (B, the client).
sed -n '/^=====/,/^=====/p' "$tmp/follow" | grep -v '^=\|^Follow\|^Filter\|^Node' |
  grep -v $'^\t' | tr -d '\n' | xxd -r -p >"$tmp/pcap-to-a"
sed -n '/^=====/,/^=====/p' "$tmp/follow" | grep $'^\t' | tr -d '\t\n' | xxd -r -p >"$tmp/pcap-to-b"
echo "payload in the capture: $(stat -c %s "$tmp/pcap-to-a") bytes B->A, $(stat -c %s "$tmp/pcap-to-b") bytes A->B"
check "captured payload B->A equals the 2 MB sent" cmp -s "$tmp/to-a" "$tmp/pcap-to-a"
check "captured payload A->B equals the 1 MB sent" cmp -s "$tmp/to-b" "$tmp/pcap-to-b"
frames=$(tshark -r "$tmp/a.pcap" 2>/dev/null | wc -l)
syns=$(tshark -r "$tmp/a.pcap" -Y 'tcp.flags.syn==1' 2>/dev/null | wc -l)
echo "frames $frames, SYN and SYN-ACK $syns"
check "the handshake is in the capture (SYN and SYN-ACK)" [ "$syns" -eq 2 ]
# xdpload's frames only, and all of them: as many as its port received and
# sent (the exit line), and A's kernel carried no TCP segment meanwhile.
port_frames=$(sed -n 's/.*exit: rx \([0-9]*\) frames .*, tx \([0-9]*\) frames .*/\1 \2/p' "$tmp/a.err" |
  awk '{print $1 + $2}')
check "the capture holds the port's frames, no other ($frames captured, ${port_frames:-?} through the port)" \
  [ "$frames" = "${port_frames:-none}" ]
check "A's kernel had no part in the transfer (TCP in/out segments $segs0 -> $segs1)" [ "$segs0" = "$segs1" ]

# UDP datagrams xdpload builds in place in transmit frames (no copy) are in
# the capture too, whole: 50 sent by A, 50 echoed by B.
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve 0.0.0.0 "" 7002
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7002' | grep -q 7002"
in_a "$TOP/tools/xdpload" --iface "$IF_A" --pcap "$tmp/udp.pcap" -- \
  python3 "$TOP/tests/peers/echo_peer.py" udp "$IP_B" 7002 50
check "UDP echo under xdpload" [ $? -eq 0 ]
out_ok=$(tshark -r "$tmp/udp.pcap" -Y "udp.dstport == 7002 && udp.length == 520" 2>/dev/null | wc -l)
back=$(tshark -r "$tmp/udp.pcap" -Y "udp.srcport == 7002 && udp.length == 520" 2>/dev/null | wc -l)
echo "UDP in the capture: $out_ok sent, $back received"
check "the 50 datagrams sent are in the capture, whole" [ "$out_ok" -eq 50 ]
check "the 50 echoes are in the capture" [ "$back" -eq 50 ]
kill "$BG_PID"

# A capture file that cannot be created: one line, the transfer still works.
bg_b bash -c "nc -l -N 7001 >$tmp/b-got2"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7001' | grep -q 7001"
in_a "$TOP/tools/xdpload" --iface "$IF_A" --pcap /nonexistent/dir/x.pcap -- \
  nc -N "$IP_B" 7001 <"$tmp/to-b" 2>"$tmp/bad.err"
rc=$?
wait "$BG_PID"
cat "$tmp/bad.err"
check "unwritable capture: nc still works" bash -c "[ $rc -eq 0 ] && cmp -s $tmp/to-b $tmp/b-got2"
check "unwritable capture: one line naming the file" \
  bash -c "[ \$(wc -l <$tmp/bad.err) -eq 1 ] && grep -q 'XDPLOAD_PCAP=/nonexistent/dir/x.pcap' $tmp/bad.err"
finish
