# apache2 (Debian's, mpm_event: the parent listens, forked children serve)
# under xdpload in A, curl and wrk from B. Every child used to abort at
# start with glibc's "realloc(): invalid next size", then the parent: the
# options apache sets on its listener were written past the end of lwIP's
# listening PCB (603e4be). Now: no crash, the 1 MB file byte-exact, served
# accelerated by the children, which share the parent's stack (the fork
# issue): A's kernel sees no TCP segment.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v apache2 >/dev/null || skip "apache2 is not installed (make deps)"
netns_up
tmp=$(mktemp -d)
trap '[ -n "${KEEP_CORE:-}" ] && cp $tmp/run/core* /tmp/ 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
mkdir "$tmp/www" "$tmp/run"
head -c 1000000 /dev/urandom >"$tmp/www/f"
chmod -R a+rX "$tmp"
chown www-data "$tmp/run"
m=/usr/lib/apache2/modules
cat >"$tmp/httpd.conf" <<CFG
ServerRoot /etc/apache2
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
ServerName xdpload-test
Listen $IP_A:8080
PidFile $tmp/run/apache.pid
ErrorLog $tmp/error.log
DefaultRuntimeDir $tmp/run
Mutex file:$tmp/run default
CoreDumpDirectory $tmp/run
User www-data
Group www-data
DocumentRoot $tmp/www
<Directory $tmp/www>
  Require all granted
</Directory>
CFG
bg_preload_a apache2 -f "$tmp/httpd.conf" -DFOREGROUND 2>"$tmp/apache.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
segs=$(kernel_counter "$NS_A" TcpInSegs)
load_forked_server "http://$IP_A:8080/f" "$tmp/www/f"
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
alive=0
kill -0 "$server" 2>/dev/null && alive=1
kill "$server"
wait "$server" 2>/dev/null
cat "$tmp/apache.err"
grep -v "AH00558\|resuming normal\|Command line" "$tmp/error.log" | tail -10
grep -E "requests in|Socket errors|Non-2xx" "$tmp/wrk.out"
check "apache still runs after the requests" [ "$alive" -eq 1 ]
check "no child aborted (no heap corruption, no signal in the error log)" \
  bash -c "! grep -qiE 'invalid next size|corrupt|exit signal|Segmentation|Aborted' $tmp/apache.err $tmp/error.log"
check "5 of 5 requests after the first byte-exact ($FETCHED_OK)" [ "$FETCHED_OK" -eq 5 ]
check "wrk: requests served (${WRK_REQUESTS:-0}), no socket errors" \
  bash -c "[ ${WRK_REQUESTS:-0} -gt 10 ] && ! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
check "accelerated: A's kernel saw no TCP segment (+$((segs_after - segs)))" [ "$segs_after" -eq "$segs" ]
check "no listener handed to the kernel" bash -c "! grep -q 'handed to the kernel' $tmp/apache.err"
finish
