# The extensions API (include/xdpload/extensions.h) through both stubs
# (libxdpload_ext.so and .a), run without xdpload and under it, against a UDP
# echo in B (tests/progs/ext_probe.c prints one line per fact):
# - without xdpload: not present, every call gives its "not present" answer,
#   and the program still works;
# - under xdpload: present; a UDP socket on the stack described as it is
#   (protocol, addresses), a pipe not; the process's counters; a size
#   smaller than version 1.0's refused; spinning chosen per thread: with UDP
#   receives spinning, none of 300 blocking round trips sleeps (the
#   counter of waits that slept stays flat), and with spinning off they do;
#   a spin without limit still ends on SIGALRM (EINTR) and at SO_RCVTIMEO.
# - a stub built for a newer minor version than this xdpload serves is
#   refused, said in one line, and answers "not present".
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve 0.0.0.0 "" 7101
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7101' | grep -q 7101"

for kind in shared static; do
  probe="$BUILD/tests/ext_probe_$kind"
  in_a "$probe" "$IP_B" 7101 >"$tmp/$kind.kernel" 2>&1
  echo "== $kind stub, without xdpload"
  cat "$tmp/$kind.kernel"
  check "$kind stub, without xdpload: not present, each call's answer for that" bash -c "
    grep -qx 'present 0' $tmp/$kind.kernel &&
    grep -qx 'fd_stat of the UDP socket 0' $tmp/$kind.kernel &&
    grep -qx 'counters -38' $tmp/$kind.kernel &&
    grep -qx 'get_spin -38 mask 0' $tmp/$kind.kernel &&
    grep -qx 'set_spin udp recv on 0' $tmp/$kind.kernel &&
    grep -qx 'sleeping: waits that slept unknown' $tmp/$kind.kernel"

  PRELOAD_A "$probe" "$IP_B" 7101 >"$tmp/$kind.xdpload" 2>"$tmp/$kind.err"
  echo "== $kind stub, under xdpload"
  cat "$tmp/$kind.xdpload"
  x=$tmp/$kind.xdpload
  check "$kind stub, under xdpload: present" grep -qx 'present 1' "$x"
  check "$kind stub: a pipe is not on the stack" grep -qx 'fd_stat of a pipe 0' "$x"
  check "$kind stub: the UDP socket is, as getsockname and connect say" \
    grep -qx 'fd_stat of the UDP socket 1 protocol 17 listening 0 local matches remote matches' "$x"
  check "$kind stub: sizes below version 1.0's refused (EINVAL)" bash -c "
    grep -qx 'fd_stat with a size too small -22' $x && grep -qx 'counters with a size too small -22' $x"
  check "$kind stub: the process's counters" \
    grep -qx 'counters 0 frames both ways yes, udp out yes, accelerated udp 1' "$x"
  check "$kind stub: no thread spins unless it asks (XDPLOAD_SPIN_USEC unset); a type out of range is EINVAL" \
    bash -c "grep -qx 'get_spin 0 mask 0' $x && grep -qx 'set_spin out of range -22' $x"
  check "$kind stub: spinning on UDP receives, for this thread: none of 300 waits slept" bash -c "
    grep -qx 'get_spin 0: udp recv spins, tcp recv sleeps' $x &&
    grep -qx 'spinning: waits that slept none' $x"
  check "$kind stub: a spin without limit ends on a signal (EINTR) and at SO_RCVTIMEO (EAGAIN)" bash -c "
    grep -qx 'spinning recv, SIGALRM without SA_RESTART: -1 EINTR within 5 s yes' $x &&
    grep -qx 'spinning recv, SO_RCVTIMEO: -1 EAGAIN' $x"
  check "$kind stub: spinning off again: waits sleep" grep -qx 'sleeping: waits that slept some' "$x"
done

# A stub newer than this xdpload: a copy of the shared stub that claims
# minor version 99, which the library refuses.
cp "$BUILD/libxdpload_ext.so" "$tmp/libxdpload_ext.so"
python3 - "$tmp/libxdpload_ext.so" <<'PY'
import struct, subprocess, sys
path = sys.argv[1]
out = subprocess.run(["nm", "-D", path], capture_output=True, text=True).stdout
addr = next(int(l.split()[0], 16) for l in out.splitlines() if l.endswith(" xdpload_ext_version"))
# The symbol's file offset: its section's address and offset (readelf -S).
secs = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
for l in secs.splitlines():
    f = l.replace("[ ", "[").split()
    if len(f) > 5 and f[0].startswith("[") and f[2] in ("PROGBITS",):
        sa, so, sz = int(f[3], 16), int(f[4], 16), int(f[5], 16)
        if sa <= addr < sa + sz:
            off = addr - sa + so
            break
data = bytearray(open(path, "rb").read())
major, minor = struct.unpack_from("<II", data, off)
assert (major, minor) == (1, 1), (major, minor)
struct.pack_into("<II", data, off, 1, 99)
open(path, "wb").write(data)
PY
PRELOAD_A env LD_LIBRARY_PATH="$tmp" "$BUILD/tests/ext_probe_shared" "$IP_B" 7101 >"$tmp/newer" 2>"$tmp/newer.err"
cat "$tmp/newer.err"
check "a stub built for extensions 1.99: refused in one line, not present" bash -c "
  grep -qx 'present 0' $tmp/newer && grep -qx 'counters -38' $tmp/newer &&
  [ \$(grep -c 'built for extensions 1.99, this xdpload serves 1.1' $tmp/newer.err) -eq 1 ]"
finish
