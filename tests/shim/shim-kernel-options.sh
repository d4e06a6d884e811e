# A socket that sets an option xdpload does not serve stays with the kernel,
# and the user is told: one line per option at the default log level (not
# one per socket), and xdpload-stat counts the sockets by option. Here: two
# TCP listeners ask for TCP_MD5SIG (not served), a UDP socket
# sets IP_TRANSPARENT, another asks for hardware transmit timestamps (not
# served); an IPv6-only socket is not such a case (it carries no IPv4) and is
# not reported, nor is a UDP socket that asks for receive timestamps (served),
# nor a listener that asks for TCP_FASTOPEN (served as Linux serves it while
# net.ipv4.tcp_fastopen lacks the server bit, its default: connections open
# with the ordinary handshake; unbound, haproxy's tfo and nginx's fastopen=
# set it).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/prog.py" <<'PY'
import socket, struct, sys, time
IP_TRANSPARENT, TCP_FASTOPEN, TCP_MD5SIG = 19, 23, 14
keep = []
# struct tcp_md5sig: the peer's address (a sockaddr_storage), flags,
# prefix length, key length, ifindex, the key (80 bytes)
peer = struct.pack("=HH4s", socket.AF_INET, 0, socket.inet_aton(sys.argv[2])).ljust(128, b"\0")
md5 = peer + struct.pack("=BBHi", 0, 0, 6, 0) + b"secret".ljust(80, b"\0")
for port in (9601, 9602):
    t = socket.socket()
    t.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5)
    t.bind((sys.argv[1], port))
    t.listen(1)
    keep.append(t)
fast = socket.socket()
fast.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 5)
fast.bind((sys.argv[1], 9608))
fast.listen(1)
keep.append(fast)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
u.bind((sys.argv[1], 9603))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.setsockopt(socket.SOL_SOCKET, 37, (1 << 0) | (1 << 6))  # SO_TIMESTAMPING TX_HARDWARE|RAW_HARDWARE
tx.bind((sys.argv[1], 9606))
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, 37, (1 << 3) | (1 << 4))  # SO_TIMESTAMPING RX_SOFTWARE|SOFTWARE
rx.bind((sys.argv[1], 9607))
six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
six.bind(("::", 9604))
six.listen(1)
served = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
served.bind((sys.argv[1], 9605))
keep += [u, tx, rx, six, served]
print("ready", flush=True)
time.sleep(30)
PY
bg_preload_a python3 "$tmp/prog.py" "$IP_A" "$IP_B" >"$tmp/out" 2>"$tmp/err"
prog=$BG_PID
wait_for 100 grep -q ready "$tmp/out"
wait_for 50 has_segment "$prog"
"$BUILD/xdpload-stat" -p "$prog" --json >"$tmp/json"
"$BUILD/xdpload-stat" -p "$prog" >"$tmp/text"
kill "$prog"
wait "$prog" 2>/dev/null
cat "$tmp/err" "$tmp/text"
check "one line per option, naming it, at the default log level" \
  bash -c "[ \$(grep -c . $tmp/err) -eq 3 ] && grep -q 'set option TCP_MD5SIG, which xdpload does not serve on TCP sockets' $tmp/err && grep -q 'set option IP_TRANSPARENT, which xdpload does not serve on UDP sockets' $tmp/err && grep -q 'set option SO_TIMESTAMPING (hardware transmit stamps), which' $tmp/err"
check "xdpload-stat counts the sockets by option" \
  python3 -c "import json,sys; p=json.load(open('$tmp/json'))['processes'][0]; k=p['kernel_options']; assert k == {'TCP_MD5SIG': 2, 'IP_TRANSPARENT': 1, 'SO_TIMESTAMPING': 1}, k; assert p['counters']['accelerated_udp'] == 2, p['counters']"
check "... and says so in its text" grep -q "left with the kernel because of option TCP_MD5SIG: 2 socket(s)" "$tmp/text"
check "the TCP_FASTOPEN listener is accelerated (the only TCP socket that is)" \
  python3 -c "import json; p=json.load(open('$tmp/json'))['processes'][0]; assert p['counters']['accelerated_tcp'] == 1, p['counters']"
finish
