# haproxy, unmodified, under xdpload in A as an HTTP proxy to a kernel HTTP
# server in B; curl in B through it: byte-exact, both legs accelerated.
# haproxy sets TCP_QUICKACK on its listening socket, which used to reach an
# lwIP assertion (tcp_output on a listening PCB) and abort the program; the
# smallest reproduction, a Python listener setting the option, comes first.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v haproxy >/dev/null || skip "haproxy is not installed (make deps)"
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT

PRELOAD_A env XDPLOAD_LOG=1 python3 -c "
import socket
s = socket.socket()
s.bind(('$IP_A', 7000))
s.listen(4)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
c = socket.socket()
c.bind(('$IP_A', 0))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
print('ok')" >"$tmp/quickack.out" 2>"$tmp/quickack.err"
rc=$?
cat "$tmp/quickack.err"
check "TCP_QUICKACK and TCP_CORK on a listener and a bound socket: no abort (exit $rc)" \
  bash -c "[ $rc -eq 0 ] && grep -qx ok $tmp/quickack.out && grep -q '1 tcp' $tmp/quickack.err"

mkdir "$tmp/www"
head -c 1000000 /dev/urandom >"$tmp/www/f"
bg_b python3 -m http.server 8080 --directory "$tmp/www" --bind "$IP_B"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :8080' | grep -q 8080"
cat >"$tmp/haproxy.cfg" <<CFG
global
  maxconn 200
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind $IP_A:8000
  default_backend be
backend be
  server s1 $IP_B:8080
CFG
bg_preload_a env XDPLOAD_LOG=1 haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.err"
proxy=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8000' | grep -q 8000"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
ok=0
for i in 1 2 3 4 5; do
  in_b curl -sS --max-time 20 -o "$tmp/got" "http://$IP_A:8000/f" && cmp -s "$tmp/got" "$tmp/www/f" &&
    ok=$((ok + 1))
done
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
rx=$(xstat_counter "$proxy" rx_bytes)
tx=$(xstat_counter "$proxy" tx_bytes)
# Paused and resumed (SIGTTOU, SIGTTIN; what a reload does): haproxy
# suspends its listener with connect(AF_UNSPEC) and resumes it with
# listen(). Paused, nothing listens; resumed, the listener is on the stack
# again. (It used to refuse the disconnect with EISCONN: never paused; and
# a listen() after one was EINVAL.)
hp=$(for p in $(ip netns pids "$NS_A"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = haproxy ] && echo "$p"; done | head -1)
kill -TTOU "$hp"
wait_for 50 grep -q "Paused frontend fe" "$tmp/haproxy.err"
in_b curl -sS --max-time 5 -o /dev/null "http://$IP_A:8000/f" 2>"$tmp/paused.err"
paused_rc=$?
kill -TTIN "$hp"
wait_for 50 grep -q "Resumed frontend fe" "$tmp/haproxy.err"
segs_before2=$(kernel_counter "$NS_A" TcpInSegs)
in_b curl -sS --max-time 20 -o "$tmp/got" "http://$IP_A:8000/f" && cmp -s "$tmp/got" "$tmp/www/f"
resumed_rc=$?
segs_after2=$(kernel_counter "$NS_A" TcpInSegs)
kill "$proxy"; wait "$proxy" 2>/dev/null
grep -v "^\[NOTICE\]\|^\[WARNING\]" "$tmp/haproxy.err" | head -20
echo "xdpload rx bytes $rx, tx bytes $tx; A's kernel TcpInSegs +$((segs_after - segs_before))"
check "haproxy did not abort" bash -c "! grep -qi 'assertion\|abort' $tmp/haproxy.err"
check "5 of 5 curl downloads through haproxy byte-exact ($ok)" [ "$ok" -eq 5 ]
check "both legs accelerated: xdpload received the 5 MB from B's server and sent them to B's curl" \
  bash -c "[ ${rx:-0} -gt 5000000 ] && [ ${tx:-0} -gt 5000000 ]"
check "A's kernel saw almost none of it" [ $((segs_after - segs_before)) -lt 100 ]
check "paused (connect AF_UNSPEC): a connection is refused ($(cat "$tmp/paused.err"))" \
  bash -c "[ $paused_rc -eq 7 ] && ! grep -q 'refused to pause\|failed to pause' $tmp/haproxy.err"
check "resumed (listen again): a download byte-exact, on the stack (A's kernel TcpInSegs +$((segs_after2 - segs_before2)))" \
  bash -c "[ $resumed_rc -eq 0 ] && [ $((segs_after2 - segs_before2)) -lt 20 ]"
finish
