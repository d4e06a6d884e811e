# nginx in its default shape (master_process on: the master listens, the
# forked workers accept) under xdpload, with 2 and then 4 workers: the
# workers share the master's stack (one stack per process family), so every
# request is served accelerated: A's kernel sees no TCP segment. Then
# `nginx -s reload` (the master forks new workers, the old ones leave) keeps
# serving, and a graceful quit leaves nothing behind: no process, no
# statistics segment, no XDP program.
# The workers transmit on rings of their own (xdpload-stat's per-queue
# tx_frames).
# Before the stack was shared, the workers' inherited listener failed with
# EOPNOTSUPP (wrk made 0 requests); then the listener was handed to the
# kernel after a second (served, not accelerated).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 "$server" $(pgrep -P "$server") 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
mkdir -p "$tmp/www" "$tmp/tmp"
head -c 1000000 /dev/urandom >"$tmp/www/f"
chmod -R a+rX "$tmp"  # the workers run as nobody

for workers in 2 4; do
  nginx_conf "$tmp/nginx.conf" "$tmp" on "$workers"
  : >"$tmp/error.log"
  segs=$(kernel_counter "$NS_A" TcpInSegs)
  bg_preload_a nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx.err"
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
  wait_for 50 bash -c "[ \$(pgrep -c -P $server) -ge $workers ]"
  # (wrk for 10 s, as the issue of forking servers asks of nginx.)
  WRK_SECONDS=10 load_forked_server "http://$IP_A:8080/f" "$tmp/www/f"
  grep -E "requests in|Socket errors|Non-2xx" "$tmp/wrk.out"
  check "$workers workers: 5 of 5 requests byte-exact ($FETCHED_OK)" [ "$FETCHED_OK" -eq 5 ]
  check "$workers workers: wrk served requests (${WRK_REQUESTS:-0}), no socket errors" \
    bash -c "[ ${WRK_REQUESTS:-0} -gt 100 ] && ! grep -qE 'Socket errors|Non-2xx' $tmp/wrk.out"
  # The forked workers transmit on rings of their own, not on the master's
  # (queue 0's: all of them queued on its socket's mutex). How the
  # connections spread over the workers is nginx's affair: at least one
  # worker's ring.
  tx_rings=$(queues_with_tx "$server" skip-first)
  check "$workers workers: frames left on $tx_rings rings other than the master's (at least 1)" \
    [ "$tx_rings" -ge 1 ]
  if [ "$workers" -eq 4 ]; then
    old=$(pgrep -P "$server" | sort)
    nginx -c "$tmp/nginx.conf" -s reload
    # New workers replace the old ones.
    wait_for 100 bash -c "[ \"\$(pgrep -P $server | sort | comm -12 - <(echo '$old'))\" = '' ] && [ \$(pgrep -c -P $server) -ge $workers ]"
    got=0
    for i in 1 2 3 4 5; do
      in_b curl -sS --max-time 10 -o "$tmp/got" "http://$IP_A:8080/f" && cmp -s "$tmp/got" "$tmp/www/f" &&
        got=$((got + 1))
    done
    check "after nginx -s reload, the new workers serve: 5 of 5 byte-exact ($got)" [ "$got" -eq 5 ]
  fi
  segs_after=$(kernel_counter "$NS_A" TcpInSegs)
  check "$workers workers: accelerated, A's kernel saw no TCP segment (+$((segs_after - segs)))" \
    [ "$segs_after" -eq "$segs" ]
  pids="$server $(pgrep -P "$server")"
  # Graceful quit: the workers finish, then the master.
  kill -QUIT "$server"
  for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  check "$workers workers: nginx quit gracefully within 10 s" bash -c "! kill -0 $server 2>/dev/null"
  # (Never wait unbounded: a master that did not quit is killed with its workers.)
  kill -0 "$server" 2>/dev/null && kill -9 "$server" $(pgrep -P "$server") 2>/dev/null
  wait "$server" 2>/dev/null
  server=
  left=
  for p in $pids; do
    kill -0 "$p" 2>/dev/null && left="$left process $p"
    [ "$(segments_created_by "$p")" -eq 0 ] || left="$left segment-of-$p"
  done
  xdp_attached "$NS_A" "$IF_A" && left="$left XDP-program"
  check "$workers workers: nothing left behind after the quit:${left:- nothing}" [ -z "$left" ]
  # nginx points its standard error at its error log once it has started.
  cat "$tmp/nginx.err" "$tmp/error.log"
  check "$workers workers: no inherited socket failed" \
    bash -c "! grep -qiE 'not supported|cannot use it|handed to the kernel' $tmp/nginx.err $tmp/error.log"
done
finish
