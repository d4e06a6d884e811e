# sendfile() and splice() into TCP connections on the stack (shim/files/):
# the file is read by io_uring straight into transmit frames, and each frame
# goes to the wire from where it lies (one copy: page cache to frame).
# 1. tests/progs/sendfile_parity.c on the kernel and under xdpload, against
#    the same cksum sinks in B: every line the same (counts, errno, file
#    positions, SIGPIPE, the bytes B received), and under xdpload A's kernel
#    sent no TCP segment. Before, splice() into an accelerated socket went
#    to its kernel twin, which is not connected.
#    Again with B advertising a small MSS (the segment queue fills first),
#    and with XDPLOAD_SENDFILE=copy (through a buffer).
# 2. A 200 MB file in sendfile() calls (Python's os.sendfile): byte-exact
#    at B; the exit line says the bytes were read into frames by io_uring
#    and sent from those frames; the stack holds no frame at exit.
#    And once more with the file dropped from the page cache: the reads
#    that would wait for the disk are made without the stack's lock.
# 3. The same with io_uring disabled (kernel.io_uring_disabled=2, restored
#    on exit): pread, said once at XDPLOAD_LOG=1, byte-exact.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
uring_sysctl=/proc/sys/kernel/io_uring_disabled
uring_was=$(cat "$uring_sysctl" 2>/dev/null || echo "")
cleanup() {
  [ -n "$uring_was" ] && echo "$uring_was" >"$uring_sysctl"
  rm -rf "$tmp"
  netns_down
}
trap cleanup EXIT

# 1. Parity.
bg_b socat TCP4-LISTEN:9950,reuseaddr,fork SYSTEM:'cksum'
bg_b socat TCP4-LISTEN:9951,reuseaddr,fork SYSTEM:'sleep 1; cksum'
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9950' | grep -q 9950"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9951' | grep -q 9951"
mkdir "$tmp/k" "$tmp/x"
in_a "$BUILD/tests/sendfile_parity" "$IP_B" 9950 "$tmp/k" >"$tmp/kernel" 2>"$tmp/kernel.err"
cat "$tmp/kernel.err"
segs0=$(kernel_counter "$NS_A" TcpOutSegs)
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  timeout 300 "$BUILD/tests/sendfile_parity" "$IP_B" 9950 "$tmp/x" >"$tmp/xdpload" 2>"$tmp/xdpload.err"
segs1=$(kernel_counter "$NS_A" TcpOutSegs)
cat "$tmp/xdpload.err"
check "the kernel run sent the files whole (case 1, 14)" \
  bash -c "grep -q '^1: received: 1048576 bytes, matching: yes' $tmp/kernel && grep -q '^14: received: 67108864 bytes, matching: yes' $tmp/kernel"
# (case 12's socket never connects: it stays with the kernel, 1 segment-free SIGPIPE)
check "under xdpload the connections were on the stack (A's kernel sent TCP +$((segs1 - segs0)))" \
  [ "$segs1" -eq "$segs0" ]
check "under xdpload the files were read into frames by io_uring and sent from them" \
  grep -qE 'exit: sendfile and splice: [1-9][0-9]* bytes read into frames \([1-9][0-9]* reads by io_uring, 0 by pread, [0-9]+ waited for the disk without the lock\).*; [1-9][0-9]* bytes sent from the frames' "$tmp/xdpload.err"
if diff -u "$tmp/kernel" "$tmp/xdpload"; then
  pass "identical results ($(wc -l <"$tmp/kernel") lines)"
else
  fail "results differ (diff above: - kernel, + xdpload)"
fi

# 1b. The same with B advertising a small MSS (536): lwIP's segment queue
# fills before its send buffer, and what was read must still all go (a
# pipe's bytes read and then refused would be lost).
in_b ip route replace "${IP_B%.*}.0/24" dev "$IF_B" advmss 536
mkdir "$tmp/xs"
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" \
  timeout 300 "$BUILD/tests/sendfile_parity" "$IP_B" 9950 "$tmp/xs" >"$tmp/xdpload-mss" 2>"$tmp/xdpload-mss.err"
cat "$tmp/xdpload-mss.err"
# (Not case 14 here: while B's reader sleeps, B takes small segments in a
# drip, a segment's worth now and then as it collapses its queue, so a
# loop of non-blocking calls may never meet EAGAIN before B wakes.)
if diff -u <(grep -v '^14\.' "$tmp/kernel") <(grep -v '^14\.' "$tmp/xdpload-mss"); then
  pass "small MSS: identical results (but case 14's)"
else
  fail "small MSS: results differ (diff above: - kernel, + xdpload)"
fi
in_b ip route replace "${IP_B%.*}.0/24" dev "$IF_B"

# 1c. XDPLOAD_SENDFILE=copy: the same results through a buffer.
mkdir "$tmp/xc"
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_SENDFILE=copy XDPLOAD_LOG=1 \
  timeout 300 "$BUILD/tests/sendfile_parity" "$IP_B" 9950 "$tmp/xc" >"$tmp/xdpload-copy" 2>"$tmp/xdpload-copy.err"
grep 'exit: sendfile' "$tmp/xdpload-copy.err"
# (Its plain send() calls still go from frames: not counted here.)
check "XDPLOAD_SENDFILE=copy: the bytes went through a buffer, none was read into frames" \
  grep -qE 'exit: sendfile and splice: 0 bytes read into frames .*, [1-9][0-9]* bytes through a buffer' "$tmp/xdpload-copy.err"
if diff -u "$tmp/kernel" "$tmp/xdpload-copy"; then
  pass "XDPLOAD_SENDFILE=copy: identical results"
else
  fail "XDPLOAD_SENDFILE=copy: results differ (diff above: - kernel, + xdpload)"
fi

# 2 and 3. A 200 MB file, with io_uring and without.
head -c 200000000 /dev/urandom >"$tmp/big.bin"
cat >"$tmp/send.py" <<'PY'
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
f = os.open(sys.argv[3], os.O_RDONLY)
size, off, calls = os.fstat(f).st_size, 0, 0
while off < size:
    n = os.sendfile(s.fileno(), f, off, size - off)
    if n == 0:
        break
    off += n
    calls += 1
s.close()
print("sent %d bytes in %d calls" % (off, calls), file=sys.stderr)
PY
big_run() {  # big_run NAME: the file to B, through sendfile under xdpload
  rm -f "$tmp/got"
  bg_b socat -u TCP4-LISTEN:9960,reuseaddr OPEN:"$tmp/got",creat,trunc
  local sink=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :9960' | grep -q 9960"
  local s0 s1
  s0=$(kernel_counter "$NS_A" TcpOutSegs)
  in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
    timeout 120 python3 "$tmp/send.py" "$IP_B" 9960 "$tmp/big.bin" 2>"$tmp/$1.err"
  s1=$(kernel_counter "$NS_A" TcpOutSegs)
  # The sink ends with the connection; one that does not (a sender that
  # died without closing) is stopped.
  wait_for 300 bash -c "! kill -0 $sink 2>/dev/null"
  kill "$sink" 2>/dev/null
  wait "$sink" 2>/dev/null
  cat "$tmp/$1.err"
  check "$1: 200 MB byte-exact at B" cmp -s "$tmp/big.bin" "$tmp/got"
  check "$1: through xdpload, not A's kernel (A's kernel sent TCP +$((s1 - s0)))" [ "$s1" -eq "$s0" ]
  check "$1: the stack holds no frame at exit" grep -q 'exit: stack holds 0 frames' "$tmp/$1.err"
}
big_run io_uring
check "io_uring: the file's bytes were read into frames by io_uring and sent from them" \
  grep -qE 'exit: sendfile and splice: (20[0-9]{7}) bytes read into frames \([0-9]+ reads by io_uring, 0 by pread, [0-9]+ waited for the disk without the lock\), 0 bytes through a buffer; (20[0-9]{7}) bytes sent' "$tmp/io_uring.err"

# 2b. The file not in the page cache (written back, then dropped): the
# frames the cache cannot fill are read from the disk without the stack's
# lock.
sync "$tmp/big.bin"
python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$tmp/big.bin"
big_run cold
check "cold: frames the page cache could not fill were read from the disk without the lock" \
  grep -qE 'exit: sendfile and splice: 20[0-9]{7} bytes read into frames \([0-9]+ reads by io_uring, 0 by pread, [1-9][0-9]* waited for the disk without the lock\)' "$tmp/cold.err"

if [ -n "$uring_was" ]; then
  echo 2 >"$uring_sysctl"
  big_run pread
  echo "$uring_was" >"$uring_sysctl"
  grep -v 'exit:' "$tmp/pread.err" | grep 'io_uring' >"$tmp/pread.said"
  check "pread: io_uring unavailable said once" one_line_with "$tmp/pread.said" 'io_uring is not available'
  check "pread: the file's bytes were read into frames by pread" \
    grep -qE 'exit: sendfile and splice: 20[0-9]{7} bytes read into frames \(0 reads by io_uring, [0-9]+ by pread,' "$tmp/pread.err"
else
  echo "note: this kernel has no kernel.io_uring_disabled; the pread fallback is not exercised"
fi
finish
