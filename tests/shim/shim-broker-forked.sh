# Process families through the broker: nginx in its default shape (a
# master and 2 forked workers, as root) and a fork-per-connection Python
# server run as nobody with no capability (the shape of PostgreSQL, which
# refuses root), both at once on one interface through `xdpload daemon`:
# every request served byte-exact, A's kernel sees no TCP segment, the
# broker counts each family as one program, and once they have quit every
# frame is back with the broker.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
chmod 755 "$tmp"
server=
trap '[ -n "$server" ] && kill -9 "$server" $(pgrep -P "$server") 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
mkdir -p "$tmp/www" "$tmp/tmp"
head -c 1000000 /dev/urandom >"$tmp/www/f"
chmod -R a+rX "$tmp"  # nginx's workers run as nobody
printf 'allow user root\nallow user nobody ports 9000-9099\n' >"$tmp/policy"
broker_up --policy "$tmp/policy"

nginx_conf "$tmp/nginx.conf" "$tmp" on 2
cat >"$tmp/forking.py" <<'PY'
import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            data = self.rfile.read1(65536)
            if not data:
                return
            self.wfile.write(data)
class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
Server((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
PY

bg_preload_a nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx.err"
server=$BG_PID
ip netns exec "$NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  --ambient-caps=-all --bounding-set=-all \
  env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" python3 "$tmp/forking.py" "$IP_A" 9010 \
  2>"$tmp/forking.err" &
forking=$!
wait_for 50 listening 8080
wait_for 50 listening 9010
wait_for 50 bash -c "[ \$(pgrep -c -P $server) -ge 2 ]"

segs=$(kernel_counter "$NS_A" TcpInSegs)
load_forked_server "http://$IP_A:8080/f" "$tmp/www/f"
in_b python3 "$TOP/tests/peers/many_flows.py" tcp-clients "$IP_A" 9010 20 65536 >"$tmp/fork.out" 2>&1
rc=$?
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
grep -E "requests in|Socket errors|Non-2xx" "$tmp/wrk.out"
head -n1 "$tmp/fork.out"
cat "$BROKER_STATUS"
check "nginx (master and 2 workers) through the broker: 5 of 5 requests byte-exact ($FETCHED_OK)" \
  [ "$FETCHED_OK" -eq 5 ]
check "nginx: wrk served requests (${WRK_REQUESTS:-0}), no socket errors" \
  bash -c "[ ${WRK_REQUESTS:-0} -gt 100 ] && ! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
check "the forking server as nobody: 20 connections, each in its own child, intact" [ "$rc" -eq 0 ]
wait_for 30 grep -q "^program .* uid 65534 " "$BROKER_STATUS"  # (written every 200 ms)
check "the forking server runs as uid 65534" grep -q "^program .* uid 65534 " "$BROKER_STATUS"
check "both families accelerated: A's kernel saw no TCP segment (+$((segs_after - segs)))" \
  [ "$segs_after" -eq "$segs" ]
check "the broker counts each family as one program" [ "$(programs_listed)" -eq 2 ]

kill -QUIT "$server"
for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server" 2>/dev/null && kill -9 "$server" $(pgrep -P "$server") 2>/dev/null
wait "$server" 2>/dev/null
server=
kill "$forking"
wait "$forking" 2>/dev/null
wait_programs 0
sleep 0.5
cat "$BROKER_STATUS" "$tmp/nginx.err" "$tmp/forking.err"
check "every frame is back with the broker (held 0)" grep -q '^frames .* held 0$' "$BROKER_STATUS"
check "no inherited socket failed" \
  bash -c "! grep -qiE 'not supported|cannot use it|handed to the kernel' $tmp/nginx.err $tmp/error.log $tmp/forking.err"
finish
