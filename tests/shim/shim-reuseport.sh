# SO_REUSEPORT groups: sockets that each bind the same port with
# SO_REUSEPORT share its new connections (TCP listeners) and its unicast
# datagrams (UDP), each flow going to one member chosen by a hash of its
# addresses and ports (Linux's reuseport_select_sock): the shape of nginx's
# "listen ... reuseport", of DNS servers and of event-loop-per-core servers,
# one socket per worker. Before lwIP patch 0019 the stack refused a second
# listener on the port (it went to the kernel, which never saw a SYN: the
# port is steered to the stack), and the first took every connection; the
# other workers starved.
#
# Each case runs on the kernel path and under xdpload with the same client
# in B, which makes 40 new flows and asks each which member answered:
# - tcp-threads: one process, two listeners, served from one select loop;
# - tcp-fork: two processes (a parent and its child), a listener each, as
#   nginx's workers with reuseport;
# - udp: one process, two UDP sockets, 40 datagrams from 40 source ports.
# Each member must take at least 4 of the 40 (a fair hash leaves one fewer
# than 4 about once in 10^8), every flow answered exactly once, and under
# xdpload A's kernel must see none of it (both members accelerated).
# Then nginx with two workers and "listen ... reuseport": both workers serve
# (their pids in the access log), and A's kernel sees none of it.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/nginx.sh"
need_root
netns_up
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; pkill -9 -f "nginx -c $tmp/" 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT

cat >"$tmp/server.py" <<'PY'
import os, select, socket, sys
mode, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind = socket.SOCK_DGRAM if mode == "udp" else socket.SOCK_STREAM
def member():
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s
def serve(socks, names, n):
    # Until n are served, or the test says the client is done (tcp-fork:
    # each process serves its share only).
    served = 0
    while served < n and not os.path.exists(stop):
        ready, _, _ = select.select(socks, [], [], 0.2)
        for s in ready:
            name = names[socks.index(s)]
            if kind == socket.SOCK_DGRAM:
                _, peer = s.recvfrom(100)
                s.sendto(name.encode(), peer)
            else:
                c, _ = s.accept()
                c.sendall(name.encode())
                c.close()
            served += 1
    return served
if mode == "tcp-fork":
    first = member()
    pid = os.fork()
    if pid == 0:
        second = member()
        print("listening", flush=True)
        serve([second], ["1"], 40)
        os._exit(0)
    # (the child serves member 1; the parent member 0, until the client ends)
    serve([first], ["0"], 40)
    os.waitpid(pid, 0)
else:
    socks = [member(), member()]
    print("listening", flush=True)
    serve(socks, ["0", "1"], 40)
PY

cat >"$tmp/client.py" <<'PY'
import socket, sys, time
mode, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = {}
for i in range(40):
    if mode == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        who = None
        for _ in range(5):
            s.sendto(b"which", (ip, port))
            try:
                who = s.recv(100).decode()
                break
            except socket.timeout:
                pass
    else:
        s = socket.create_connection((ip, port), timeout=5)
        who = s.recv(100).decode()
    s.close()
    counts[who] = counts.get(who, 0) + 1
print("member 0: %d, member 1: %d, other: %d" % (counts.get("0", 0), counts.get("1", 0),
      40 - counts.get("0", 0) - counts.get("1", 0)), flush=True)
PY

# A client line "member 0: X, member 1: Y, other: Z": each member at least
# 4, nothing unanswered.
shared() {
  awk -F'[:,] ' '/^member 0/ { seen = 1; ok = $2 >= 4 && $4 >= 4 && $6 == 0 } END { exit !(seen && ok) }' "$1"
}

port=9640
for mode in tcp-threads tcp-fork udp; do
  for path in kernel xdpload; do
    out="$tmp/$mode-$path"
    if [ "$path" = xdpload ]; then
      bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/server.py" "$mode" "$port" "$out.stop" \
        >"$out.server" 2>&1
    else
      bg_a python3 "$tmp/server.py" "$mode" "$port" "$out.stop" >"$out.server" 2>&1
    fi
    server=$BG_PID
    wait_for 50 grep -q listening "$out.server"
    sleep 0.2  # (tcp-fork: the parent's member is there before the child says so)
    segs=$(kernel_counter "$NS_A" TcpInSegs)
    dgrams=$(kernel_counter "$NS_A" UdpInDatagrams)
    in_b timeout 60 python3 "$tmp/client.py" "$mode" "$IP_A" "$port" >"$out.client" 2>&1
    segs=$(($(kernel_counter "$NS_A" TcpInSegs) - segs))
    dgrams=$(($(kernel_counter "$NS_A" UdpInDatagrams) - dgrams))
    touch "$out.stop"
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    server=
    echo "== $mode, $path: $(cat "$out.client") (A's kernel: TcpInSegs +$segs, UdpInDatagrams +$dgrams)"
    grep -v "^xdpload: exit" "$out.server"
    check "$mode, $path: both members took a share of the 40 flows, each answered once" shared "$out.client"
    if [ "$path" = xdpload ]; then
      check "$mode, xdpload: A's kernel saw none of it (both members on the stack)" \
        [ "$segs" -eq 0 -a "$dgrams" -eq 0 ]
    fi
    port=$((port + 1))
  done
done

# nginx, two workers, each with its own listener (reuseport): both serve.
# wrk's 40 connections are 40 flows; each request's worker pid is logged.
nginx_conf "$tmp/nginx.conf" "$tmp/ngx" on 2 "log_format pids '\$pid'; access_log $tmp/ngx/access.log pids;"
sed -i "s|access_log off;||; s|listen $IP_A:8080;|listen $IP_A:8080 reuseport;|" "$tmp/nginx.conf"
echo "<html>hello</html>" >"$tmp/ngx/www/index.html"
chmod a+x "$tmp" "$tmp/ngx" && chmod -R a+rX "$tmp/ngx/www"
for path in kernel xdpload; do
  rm -f "$tmp/ngx/access.log"
  if [ "$path" = xdpload ]; then
    bg_preload_a env XDPLOAD_LOG=1 nginx -c "$tmp/nginx.conf" >"$tmp/nginx-$path.out" 2>&1
  else
    bg_a nginx -c "$tmp/nginx.conf" >"$tmp/nginx-$path.out" 2>&1
  fi
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
  sleep 0.5
  segs=$(kernel_counter "$NS_A" TcpInSegs)
  in_b timeout 30 wrk -t2 -c40 -d1s "http://$IP_A:8080/index.html" >"$tmp/wrk-$path.out" 2>&1
  segs=$(($(kernel_counter "$NS_A" TcpInSegs) - segs))
  kill -QUIT "$server"
  wait "$server" 2>/dev/null
  server=
  echo "== nginx reuseport, $path: requests per worker pid: $(sort "$tmp/ngx/access.log" | uniq -c | tr -s ' \n' ' ') (A's kernel: TcpInSegs +$segs)"
  grep -E "Requests/sec|errors" "$tmp/wrk-$path.out"
  check "nginx reuseport, $path: both workers served" \
    [ "$(sort -u "$tmp/ngx/access.log" | wc -l)" -eq 2 ]
  [ "$path" = xdpload ] && check "nginx reuseport, xdpload: A's kernel saw none of it" [ "$segs" -eq 0 ]
done
finish
