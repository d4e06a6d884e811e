# redis-server, unmodified, under xdpload; redis-benchmark from the other
# namespace on the kernel path: the default test set, 100000 requests, with
# pipelining 1 and 16: every test completes, no errors. A BGSAVE (a forked
# child writing the dump with kernel descriptors only) succeeds meanwhile.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_preload_a redis-server --port 6379 --bind "$IP_A" --save "" --appendonly no \
  --protected-mode no --daemonize no --dir "$tmp" --logfile "$tmp/redis.log"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B redis-cli -h $IP_A ping | grep -q PONG"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
for p in 1 16; do
  in_b timeout 300 redis-benchmark -h "$IP_A" -p 6379 -n 100000 -P $p --csv >"$tmp/bench-$p.csv" 2>"$tmp/bench-$p.err"
  rc=$?
  tests=$(grep -c '^"' "$tmp/bench-$p.csv")
  tail -n +1 "$tmp/bench-$p.csv" | cut -d, -f1,2 | tr '\n' ' '
  echo
  check "-P $p: redis-benchmark exits 0" [ $rc -eq 0 ]
  check "-P $p: all $((tests - 1)) tests reported" [ "$tests" -ge 20 ]
  check "-P $p: no errors" bash -c "! grep -qi 'error' $tmp/bench-$p.csv $tmp/bench-$p.err"
  if [ $p = 1 ]; then
    in_b redis-cli -h "$IP_A" bgsave
    wait_for 100 bash -c "ip netns exec $NS_B redis-cli -h $IP_A info persistence | grep -q 'rdb_bgsave_in_progress:0'"
    check "BGSAVE from a forked child succeeded" \
      bash -c "ip netns exec $NS_B redis-cli -h $IP_A info persistence | grep -q 'rdb_last_bgsave_status:ok' && [ -s $tmp/dump.rdb ]"
  fi
done
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
rx=$(xstat_counter "$server" rx_frames)
echo "xdpload rx frames $rx; A's kernel TcpInSegs +$((segs_after - segs_before))"
check "the server still runs" kill -0 "$server"
check "the requests went through xdpload" [ "$rx" -gt 1000000 ]
check "A's kernel saw almost none of them" [ $((segs_after - segs_before)) -lt 1000 ]
finish
