# nc under xdpload in namespace A against nc on the kernel in B, as client
# and as server: 100 MB each way with equal sha256. Proof of bypass: A's
# kernel TCP counters do not move with the traffic, xdpload's do. The
# client's writes leave from the frames they were copied into, with
# checksums the kernel completes (checked by B's kernel in a third run).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 100000000 /dev/urandom >"$tmp/in"
want=$(sha256sum <"$tmp/in" | cut -d' ' -f1)

# A is the client.
bg_b bash -c "nc -l -N 7000 >$tmp/b-got"
server=$BG_PID
wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
PRELOAD_A env XDPLOAD_LOG=1 nc -N "$IP_B" 7000 <"$tmp/in" 2>"$tmp/client.err"
rc=$?
wait "$server"
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
cat "$tmp/client.err"
check "nc client under xdpload exits 0" [ $rc -eq 0 ]
check "100 MB A->B: sha256 equal" [ "$(sha256sum <"$tmp/b-got" | cut -d' ' -f1)" = "$want" ]
check "A's kernel saw almost no TCP segments ($((segs_after - segs_before)))" \
  [ $((segs_after - segs_before)) -lt 100 ]
check "xdpload sent the 100 MB" [ "$(exit_tx_bytes "$tmp/client.err")" -gt 100000000 ]
# nc's writes went straight into transmit frames, segment by segment (a
# copy into lwIP's heap, then into a frame, before): most of the data (the
# tail of each write shorter than a segment goes through lwIP's buffer, and
# the next write first fills that segment up: 92.5 MB of 100 here).
in_frames=$(sed -n 's/.*exit: tx data: \([0-9]*\) bytes of TCP data sent from the frames.*/\1/p' "$tmp/client.err")
check "most of the 100 MB left from the frames nc's writes were copied into (${in_frames:-0} bytes)" \
  [ "${in_frames:-0}" -gt 80000000 ]
# The kernel completed the segments' checksums (AF_XDP transmit metadata,
# kernels from 6.11, copy mode). (B's kernel trusts a partial checksum from
# a veth peer: the next block has them verified.)
if kernel_at_least 6 11; then
  offloaded=$(sed -n 's/.*exit: \([0-9]*\) TCP checksums completed by the kernel.*/\1/p' "$tmp/client.err")
  check "the kernel completed the checksums of the 100 MB's segments (${offloaded:-0})" \
    [ "${offloaded:-0}" -gt 68000 ]
fi

# What the metadata asks for, checked by a kernel: with a test-only UMEM
# flag the kernel completes each checksum in software before the frame
# leaves, and B's kernel (which trusts a partial checksum from a veth peer
# without looking) verifies every one.
if kernel_at_least 6 11; then
  head -c 20000000 "$tmp/in" >"$tmp/in20"
  bg_b bash -c "nc -l -N 7002 >$tmp/b-got20"
  server=$BG_PID
  wait_for 30 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7002' | grep -q 7002"
  errors_before=$(kernel_counter "$NS_B" TcpInCsumErrors)
  PRELOAD_A env XL_TEST_TX_SW_CSUM=1 XDPLOAD_LOG=1 timeout 30 nc -N "$IP_B" 7002 \
    <"$tmp/in20" 2>"$tmp/sw-csum.err"
  # The reader ends once it has written everything out (within 10 s; a
  # stalled transfer leaves it waiting, and the checks say so).
  for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill "$server" 2>/dev/null
  wait "$server"
  errors_after=$(kernel_counter "$NS_B" TcpInCsumErrors)
  offloaded=$(sed -n 's/.*exit: \([0-9]*\) TCP checksums completed by the kernel.*/\1/p' "$tmp/sw-csum.err")
  check "checksums completed from our metadata: 20 MB A->B byte-exact" cmp -s "$tmp/in20" "$tmp/b-got20"
  check "B's kernel found no bad TCP checksum ($((errors_after - errors_before)))" \
    [ "$errors_after" -eq "$errors_before" ]
  check "the kernel completed them (${offloaded:-0} segments)" [ "${offloaded:-0}" -gt 13000 ]
fi

# A is the server.
bg_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  bash -c "nc -l -N 7001 >$tmp/a-got 2>$tmp/server.err"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :7001' | grep -q 7001"
segs_before=$(kernel_counter "$NS_A" TcpInSegs)
in_b nc -N "$IP_A" 7001 <"$tmp/in"
wait "$server"
rc=$?
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
cat "$tmp/server.err"
check "nc server under xdpload exits 0" [ $rc -eq 0 ]
check "100 MB B->A: sha256 equal" [ "$(sha256sum <"$tmp/a-got" | cut -d' ' -f1)" = "$want" ]
check "A's kernel saw almost no TCP segments ($((segs_after - segs_before)))" \
  [ $((segs_after - segs_before)) -lt 100 ]
check "xdpload received the 100 MB" [ "$(exit_rx_bytes "$tmp/server.err")" -gt 100000000 ]
finish
