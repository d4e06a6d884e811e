# Everything xdpload does not accelerate goes to the kernel untouched:
# - nc and curl under the preload to 127.0.0.1 work;
# - a program that only touches files and pipes produces byte-identical
#   output with and without the preload;
# - a loopback client reaches an accelerated listener through the kernel,
#   while a remote client reaches the same listener through the stack;
# - one UDP socket sending to the peer, 127.0.0.1 and the peer's DNS port in
#   turn sends each datagram on its own destination's path;
# - libbpf that cannot be loaded (it is loaded when the stack starts) means
#   one line on stderr and the kernel path.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 5000000 /dev/urandom >"$tmp/in"

bg_a bash -c "nc -l -N 127.0.0.1 7300 >$tmp/lo-got"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7300' | grep -q 7300"
PRELOAD_A nc -N 127.0.0.1 7300 <"$tmp/in"
wait "$server"
check "nc under the preload to 127.0.0.1" cmp -s "$tmp/in" "$tmp/lo-got"
mkdir "$tmp/www" && cp "$tmp/in" "$tmp/www/f"
bg_a python3 -m http.server 8081 --directory "$tmp/www" --bind 127.0.0.1
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8081' | grep -q 8081"
PRELOAD_A curl -sS -o "$tmp/curl-got" http://127.0.0.1:8081/f
check "curl under the preload to 127.0.0.1" cmp -s "$tmp/in" "$tmp/curl-got"

script='seq 1 200000 | sort -rn | gzip -c | gunzip -c | sha256sum
tar -C /usr/share/doc -cf - bash 2>/dev/null | sha256sum
python3 -c "import os,hashlib; fd=os.open(\"/etc/passwd\",os.O_RDONLY); print(hashlib.sha256(os.read(fd,1<<20)).hexdigest()); r,w=os.pipe(); os.write(w,b\"x\"*1000); print(len(os.read(r,2000)))"
dd if=/dev/zero bs=64k count=100 status=none | md5sum
echo "$$" >/dev/null; ls /usr/bin | head -50 | md5sum'
in_a bash -c "$script" >"$tmp/plain" 2>&1
PRELOAD_A bash -c "$script" >"$tmp/preloaded" 2>&1
check "files and pipes: byte-identical output with and without the preload" \
  cmp "$tmp/plain" "$tmp/preloaded"

# One listener, both paths: a local client (kernel) and a remote one (stack).
cat >"$tmp/server.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7400))
s.listen(4)
for _ in range(2):
    c, peer = s.accept()
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    print(peer[0], len(data), flush=True)
    c.close()
PY
bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/server.py" >"$tmp/both.out" 2>"$tmp/both.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7400' | grep -q 7400"
in_a nc -N 127.0.0.1 7400 <"$tmp/in"
segs0=$(kernel_counter "$NS_A" TcpInSegs)
in_b nc -N "$IP_A" 7400 <"$tmp/in"
wait "$server"
segs1=$(kernel_counter "$NS_A" TcpInSegs)
cat "$tmp/both.out" "$tmp/both.err"
check "the listener and the remote connection were accelerated, the loopback one not" \
  grep -q "2 tcp and" "$tmp/both.err"
check "the loopback client reached it through the kernel" grep -q "^127.0.0.1 5000000$" "$tmp/both.out"
check "the remote client reached it" grep -q "^$IP_B 5000000$" "$tmp/both.out"
rx=$(exit_rx_bytes "$tmp/both.err")
check "... through the stack (received ${rx:-0} bytes; A's kernel TcpInSegs +$((segs1 - segs0)))" \
  bash -c "[ ${rx:-0} -ge 5000000 ] && [ $segs1 -eq $segs0 ]"

# One UDP socket, three destinations in turn: the peer (the stack), 127.0.0.1
# (the kernel) and the peer's port 53 (the kernel: XDPLOAD_DNS_KERNEL). The
# socket remembers its last destination's verdict; each datagram must still
# take its own destination's path.
cat >"$tmp/count.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(5)
got = set()
try:
    while len(got) < 300:
        got.add(s.recv(100))
except socket.timeout:
    pass
print(len(got), flush=True)
PY
bg_b python3 "$tmp/count.py" 0.0.0.0 7501 >"$tmp/peer.count"
peer_rx=$BG_PID
bg_b python3 "$tmp/count.py" 0.0.0.0 53 >"$tmp/dns.count"
dns_rx=$BG_PID
bg_a python3 "$tmp/count.py" 127.0.0.1 7502 >"$tmp/lo.count"
lo_rx=$BG_PID
for p in 7501 53; do wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :$p' | grep -q $p"; done
wait_for 50 bash -c "ip netns exec $NS_A ss -lunH 'sport = :7502' | grep -q 7502"
out0=$(kernel_counter "$NS_A" UdpOutDatagrams)
PRELOAD_A env XDPLOAD_LOG=1 python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(b'p%d' % i, ('$IP_B', 7501))
    s.sendto(b'l%d' % i, ('127.0.0.1', 7502))
    s.sendto(b'd%d' % i, ('$IP_B', 53))
    if i % 50 == 0: time.sleep(0.01)
" 2>"$tmp/three.err"
out1=$(kernel_counter "$NS_A" UdpOutDatagrams)
wait "$peer_rx" "$dns_rx" "$lo_rx"
cat "$tmp/three.err"
echo "peer $(cat "$tmp/peer.count") loopback $(cat "$tmp/lo.count") dns $(cat "$tmp/dns.count"); A's kernel UdpOutDatagrams +$((out1 - out0))"
check "one UDP socket, three destinations in turn: every datagram arrived" \
  bash -c "[ \"\$(cat $tmp/peer.count) \$(cat $tmp/lo.count) \$(cat $tmp/dns.count)\" = '300 300 300' ]"
check "... the peer's through the stack, the loopback and DNS ones through the kernel" \
  bash -c "grep -q '1 udp' $tmp/three.err && [ $((out1 - out0)) -eq 600 ]"

# libbpf is loaded when the stack starts: when it cannot be, one line says
# so and the program carries on over the kernel.
bg_b bash -c "nc -l -N 7003 >$tmp/nolib-got"
listener=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7003' | grep -q 7003"
PRELOAD_A env XL_TEST_LIBBPF=libbpf-missing.so.1 nc -N "$IP_B" 7003 <"$tmp/in" 2>"$tmp/nolib.err"
wait "$listener"
cat "$tmp/nolib.err"
check "without libbpf: the transfer went through the kernel, byte-exact" cmp -s "$tmp/in" "$tmp/nolib-got"
check "without libbpf: one line on stderr says why" \
  bash -c "[ \$(wc -l <$tmp/nolib.err) -eq 1 ] && grep -q 'acceleration off.*cannot load libbpf' $tmp/nolib.err"
finish
