# curl under xdpload downloads a 100 MB file from an HTTP server on the
# kernel (Python's http.server) in the other namespace: byte-exact, and the
# bytes came through the stack, not A's kernel.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
mkdir "$tmp/www"
head -c 100000000 /dev/urandom >"$tmp/www/big.bin"
bg_b python3 -m http.server 8080 --directory "$tmp/www" --bind "$IP_B"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :8080' | grep -q 8080"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
PRELOAD_A env XDPLOAD_LOG=1 curl -sS -o "$tmp/got" "http://$IP_B:8080/big.bin" 2>"$tmp/curl.err"
rc=$?
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
cat "$tmp/curl.err"
check "curl exits 0" [ $rc -eq 0 ]
check "the download is byte-exact" cmp -s "$tmp/www/big.bin" "$tmp/got"
check "A's kernel saw almost no TCP segments ($((segs_after - segs_before)))" \
  [ $((segs_after - segs_before)) -lt 100 ]
check "xdpload received the 100 MB" [ "$(exit_rx_bytes "$tmp/curl.err")" -gt 100000000 ]
finish
