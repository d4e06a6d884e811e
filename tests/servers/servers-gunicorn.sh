# gunicorn (Debian's) with 2 sync workers and a tiny WSGI app under xdpload
# in A: the arbiter listens and forks the workers, which accept on its
# listener with the family's stack. wrk from B: requests served, no socket
# errors, A's kernel sees no TCP segment. Before the stack was shared the
# workers' accept failed with EOPNOTSUPP.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v gunicorn >/dev/null || skip "gunicorn is not installed (make deps)"
netns_up
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 "$server" $(pgrep -P "$server") 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/app.py" <<'PY'
def app(environ, start_response):
    body = b"hello from gunicorn under xdpload\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
PY
bg_preload_a gunicorn --chdir "$tmp" --workers 2 --worker-class sync --bind "$IP_A:8000" \
  --worker-tmp-dir "$tmp" app:app 2>"$tmp/gunicorn.err"
server=$BG_PID
wait_for 100 bash -c "ip netns exec $NS_B curl -sf http://$IP_A:8000/ >/dev/null"
# (The attempts before it listened reached A's kernel; from here, none may.)
segs=$(kernel_counter "$NS_A" TcpInSegs)
got=$(in_b curl -sS --max-time 5 "http://$IP_A:8000/")
in_b timeout 30 wrk -t1 -c4 -d3s "http://$IP_A:8000/" >"$tmp/wrk.out" 2>&1
requests=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
workers=$(pgrep -c -P "$server")
kill -TERM "$server"
for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
stopped=1
kill -0 "$server" 2>/dev/null && stopped=0
wait "$server" 2>/dev/null
server=
grep -E "requests in|Socket errors|Non-2xx" "$tmp/wrk.out"
grep -vE "Booting worker|Listening at|Using worker|Starting gunicorn|Handling signal|Worker exiting|Shutting down" "$tmp/gunicorn.err"
check "the app answers through the workers" [ "$got" = "hello from gunicorn under xdpload" ]
check "2 workers ran ($workers)" [ "$workers" -eq 2 ]
check "wrk: requests served (${requests:-0}), no socket errors" \
  bash -c "[ ${requests:-0} -gt 100 ] && ! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
check "accelerated: A's kernel saw no TCP segment (+$((segs_after - segs)))" [ "$segs_after" -eq "$segs" ]
check "gunicorn stopped on SIGTERM within 10 s" [ $stopped -eq 1 ]
check "no worker failed" bash -c "! grep -qiE 'Traceback|WORKER TIMEOUT|not supported|Errno' $tmp/gunicorn.err"
finish
