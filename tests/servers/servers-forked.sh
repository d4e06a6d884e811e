# nginx in its default shape (master_process on, 2 workers: the master
# listens, the forked workers accept) under xdpload. Forked children cannot
# use the parent's stack yet (the fork issue), so the connections the stack
# completed waited on the master's listener with nobody to accept them:
# curl hung, silently. Now, a second after connections start waiting
# unaccepted in a process that forked, the listener is handed to the
# kernel (which listens on the same port, shared with the workers), the
# waiting connections are reset, and one line says so. Then every request
# is served, on the kernel path: not accelerated, but not hung.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
mkdir -p "$tmp/www" "$tmp/tmp"
head -c 1000000 /dev/urandom >"$tmp/www/f"
chmod -R a+rX "$tmp"  # the workers run as nobody
cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
error_log $tmp/error.log warn;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/tmp; proxy_temp_path $tmp/tmp; fastcgi_temp_path $tmp/tmp;
  uwsgi_temp_path $tmp/tmp; scgi_temp_path $tmp/tmp;
  server { listen $IP_A:8080; root $tmp/www; }
}
CONF
bg_preload_a nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
load_forked_server "http://$IP_A:8080/f" "$tmp/www/f"
kill "$server"
wait "$server" 2>/dev/null
# nginx points its standard error at its error log once it has started.
cat "$tmp/nginx.err" "$tmp/error.log"
grep "xdpload:" "$tmp/nginx.err" "$tmp/error.log" | sed 's/^[^:]*://' >"$tmp/ours"
grep -E "requests in|Socket errors|Non-2xx" "$tmp/wrk.out"
check "5 of 5 requests after the first served byte-exact ($FETCHED_OK)" [ "$FETCHED_OK" -eq 5 ]
check "wrk: requests served (${WRK_REQUESTS:-0}), no socket errors" \
  bash -c "[ ${WRK_REQUESTS:-0} -gt 10 ] && ! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
check "one line says the listener went to the kernel, and why" \
  one_line_with "$tmp/ours" "port 8080: no process has accepted the"
finish
