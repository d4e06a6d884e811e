# nginx, unmodified, one worker (master_process off, daemon off), under
# xdpload: wrk from the other namespace on a small page for 10 s with no
# socket errors and only 2xx answers, and curl fetching a 100 MB file
# byte-exact; with sendfile off, and on (the file read by io_uring into the
# frames it is sent from: xdpload-stat's counters say so).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
secs=${WRK_SECONDS:-10}
mkdir -p "$tmp/www" "$tmp/tmp"
head -c 100000000 /dev/urandom >"$tmp/www/big.bin"
echo "<html>hello from nginx under xdpload</html>" >"$tmp/www/index.html"
for sendfile in off on; do
  nginx_conf "$tmp/nginx.conf" "$tmp" off 1 "sendfile $sendfile;"
  bg_preload_a nginx -c "$tmp/nginx.conf"
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
  segs_before=$(kernel_counter "$NS_A" TcpInSegs)
  in_b timeout $((secs + 30)) wrk -t2 -c50 -d"${secs}s" "http://$IP_A:8080/index.html" >"$tmp/wrk.out" 2>&1
  rc=$?
  grep -E "Requests/sec|Latency|errors|Non-2xx" "$tmp/wrk.out"
  check "sendfile $sendfile: wrk exits 0" [ $rc -eq 0 ]
  check "sendfile $sendfile: served requests" grep -q "Requests/sec" "$tmp/wrk.out"
  check "sendfile $sendfile: no socket errors, no non-2xx answers" \
    bash -c "! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
  in_b timeout 120 curl -sS -o "$tmp/got" "http://$IP_A:8080/big.bin"
  check "sendfile $sendfile: 100 MB byte-exact" cmp -s "$tmp/www/big.bin" "$tmp/got"
  segs_after=$(kernel_counter "$NS_A" TcpInSegs)
  rx=$(xstat_counter "$server" rx_frames)
  echo "xdpload rx frames $rx; A's kernel TcpInSegs +$((segs_after - segs_before))"
  check "sendfile $sendfile: through xdpload, not A's kernel" \
    bash -c "[ $rx -gt 100000 ] && [ $((segs_after - segs_before)) -lt 1000 ]"
  from_frames=$(xstat_counter "$server" tx_zero_copy_bytes)
  uring=$(xstat_counter "$server" file_reads_uring)
  echo "bytes sent from the frames a file was read into: $from_frames; io_uring reads: $uring"
  if [ "$sendfile" = on ]; then
    check "sendfile on: the file went from the frames io_uring read it into" \
      bash -c "[ $from_frames -ge 100000000 ] && [ $uring -gt 0 ]"
  else
    # (nginx's writes of what it read still leave from frames: send()'s.)
    pread=$(xstat_counter "$server" file_reads_pread)
    check "sendfile off: no file read into frames" bash -c "[ $uring -eq 0 ] && [ $pread -eq 0 ]"
  fi
  kill "$server"
  wait "$server" 2>/dev/null
done
check "no errors logged by nginx" bash -c "! grep -q '\\[error\\]\\|\\[crit\\]\\|\\[alert\\]' $tmp/error.log"
finish
