# memcached, unmodified, under xdpload, started as root and running as
# nobody (-u: it gives up root before it opens its sockets, so the stack
# starts at the privilege drop); memcslap and memcaslap (libmemcached-tools)
# from the other namespace: no errors, no failed verification.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_preload_a env XDPLOAD_LOG=1 memcached -u nobody -l "$IP_A" -p 11211 -t 2 2>"$tmp/server.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :11211' | grep -q 11211"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
for t in set get; do
  in_b timeout 120 memcslap --servers="$IP_A:11211" --concurrency=4 --execute-number=20000 --test=$t \
    >"$tmp/slap-$t.out" 2>&1
  rc=$?
  grep -E "Time to" "$tmp/slap-$t.out"
  check "memcslap $t: exits 0, no errors" bash -c "[ $rc -eq 0 ] && ! grep -qi 'error\\|failure' $tmp/slap-$t.out"
done
in_b timeout 60 memcaslap --servers="$IP_A:11211" --threads=2 --concurrency=32 --time=5s \
  --verify=0.05 >"$tmp/aslap.out" 2>&1
rc=$?
grep -E "verify_failed|TPS|cmd_get|cmd_set" "$tmp/aslap.out"
check "memcaslap: exits 0" [ $rc -eq 0 ]
check "memcaslap: ran operations" grep -q "TPS:" "$tmp/aslap.out"
check "memcaslap: no failed verification" grep -q "verify_failed: 0" "$tmp/aslap.out"
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
rx=$(xstat_counter "$server" rx_frames)
cat "$tmp/server.err"
echo "xdpload rx frames $rx; A's kernel TcpInSegs +$((segs_after - segs_before))"
check "accelerated although it runs as nobody (no fallback)" \
  bash -c "! grep -q 'acceleration off' $tmp/server.err && [ $rx -gt 100000 ]"
check "A's kernel saw almost none of it" [ $((segs_after - segs_before)) -lt 1000 ]
check "the server runs as nobody" bash -c "[ \$(ps -o user= -p $server) = nobody ]"
finish
