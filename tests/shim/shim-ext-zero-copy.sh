# The extensions API's zero-copy receive and send (include/xdpload/
# extensions.h 1.1; shim/ext/zero_copy.cc), through both stubs, against
# kernel peers in B (socat), with tests/progs/ext_zero_copy.c:
# 1. A 100 MB stream from B received in place under xdpload (after its
#    first 1000 bytes by recv(), so the receive in place starts inside a
#    segment): byte-exact, every byte after those counted as given in
#    place, every piece inside the link's frames (the UMEM, where
#    XDPLOAD_LOG=3 says it is) and none copied out of them, no buffer held
#    at the end, A's kernel took none of it (a segment or two at most: the
#    closing handshake's last ACK may reach it after the program is gone).
# 2. A 100 MB file sent to B in lent frames (read() straight into each):
#    byte-exact at B, the frames lent inside the UMEM, every byte counted
#    as sent from lent frames and as leaving the frame it was written in (no
#    copy into other frames), A's kernel sent no TCP segment.
# 3. Misuse, each refused with Linux's errno for it and nothing lost:
#    made-up handles, handles named twice or released twice, a forked
#    child releasing its parent's frame, a received buffer sent, lengths
#    out of range, flags not taken, a pipe, a closed descriptor; then an
#    echo round trip in place still works, and a UDP datagram is received
#    in place with its source.
# 4. Without xdpload: every call answers "not present" (-ENOSYS).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 100M /dev/urandom >"$tmp/src"
bg_b python3 "$TOP/tests/peers/echo_peer.py" serve 0.0.0.0 7201 7202
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7202' | grep -q 7202"

# within_frames OUT WAY ERR: the program's "WAY: ... at LO-HI" range lies
# inside the "frames at LO-HI" XDPLOAD_LOG=3 printed.
within_frames() {
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
out, way, err = open(sys.argv[1]).read(), sys.argv[2], open(sys.argv[3]).read()
p = re.search(way + r": (?:pieces|frames) at (0x[0-9a-f]+)-(0x[0-9a-f]+)", out)
u = re.search(r"frames at (0x[0-9a-f]+)-(0x[0-9a-f]+)", err)
print("handed out:", p and p.groups(), "frames:", u and u.groups())
sys.exit(0 if p and u and int(u[1], 16) <= int(p[1], 16) < int(p[2], 16) <= int(u[2], 16) else 1)
PY
}

for kind in shared static; do
  prog="$BUILD/tests/ext_zero_copy_$kind"

  # 1. Receive in place.
  bg_b socat -u OPEN:"$tmp/src" TCP4-LISTEN:7210,reuseaddr
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7210' | grep -q 7210"
  in0=$(kernel_counter "$NS_A" TcpInSegs)
  PRELOAD_A env XDPLOAD_LOG=3 timeout 120 "$prog" recv "$IP_B" 7210 "$tmp/got" >"$tmp/recv" 2>"$tmp/recv.err"
  in1=$(kernel_counter "$NS_A" TcpInSegs)
  echo "== $kind stub: receive in place"
  cat "$tmp/recv"
  grep 'exit: zero-copy' "$tmp/recv.err"
  check "$kind stub: 100 MB received in place, byte-exact" cmp -s "$tmp/src" "$tmp/got"
  check "$kind stub: all but the first 1000 bytes given in place, from the frames they arrived in, none held at the end" bash -c "
    grep -qx 'recv: 1000 bytes by recv(), 104856600 in place in [0-9]* pieces, end 0' $tmp/recv &&
    grep -qx 'recv: counted in place all, buffers held at the end 0, copied out of frames none' $tmp/recv"
  # (The closing handshake's last ACK may reach A's kernel once the
  # program is gone: a few segments; the 100 MB through it would be ~70000.)
  check "$kind stub: the pieces lie in the link's frames (the UMEM)" \
    within_frames "$tmp/recv" recv "$tmp/recv.err"
  check "$kind stub: the 100 MB did not go through A's kernel (TCP segments in +$((in1 - in0)))" \
    [ $((in1 - in0)) -le 4 ]
  wait "$BG_PID" 2>/dev/null
  rm -f "$tmp/got"

  # 2. Send from lent frames.
  # (B starts reading after half a second: its window closes, and the
  # sender must wait for room with no acknowledgement coming.)
  bg_b socat -u TCP4-LISTEN:7211,reuseaddr SYSTEM:"sleep 0.5; cat >$tmp/got"
  sink=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7211' | grep -q 7211"
  out0=$(kernel_counter "$NS_A" TcpOutSegs)
  PRELOAD_A env XDPLOAD_LOG=3 timeout 120 "$prog" send "$IP_B" 7211 "$tmp/src" >"$tmp/send" 2>"$tmp/send.err"
  out1=$(kernel_counter "$NS_A" TcpOutSegs)
  wait "$sink" 2>/dev/null
  echo "== $kind stub: send from lent frames"
  cat "$tmp/send"
  grep 'exit: zero-copy' "$tmp/send.err"
  check "$kind stub: 100 MB sent from lent frames, byte-exact at B" cmp -s "$tmp/src" "$tmp/got"
  check "$kind stub: every byte counted as sent from lent frames, none held at the end" bash -c "
    grep -qx 'send: 104857600 bytes in [0-9]* frames' $tmp/send &&
    grep -qx 'send: counted from lent frames all, copied 0, buffers held at the end 0' $tmp/send &&
    grep -q 'exit: zero-copy calls: 0 bytes received in place .*, 104857600 bytes sent from lent frames (0 copied)' $tmp/send.err"
  sent_in_place=$(sed -n 's/.*; \([0-9]*\) bytes of TCP data left the frames they were written in.*/\1/p' "$tmp/send.err")
  # (All but a few hundred bytes: while B's window is closed, lwIP's
  # zero-window probes carry a byte of the next segment in a copy.)
  check "$kind stub: the frames went to the wire where the program wrote them ($sent_in_place bytes)" \
    [ "${sent_in_place:-0}" -ge $((104857600 - 65536)) ]
  # (A send waiting for room for a whole frame sleeps; it once spun with
  # the stack's lock held while the send buffer had room for less. While
  # B does not read, no acknowledgement comes to make room.)
  check "$kind stub: a send waiting for room sleeps (it does not spin holding the lock)" \
    grep -qx 'send: waits for room that slept: some' "$tmp/send"
  check "$kind stub: the lent frames lie in the link's frames (the UMEM)" \
    within_frames "$tmp/send" send "$tmp/send.err"
  check "$kind stub: the connection was on the stack (A's kernel sent TCP +$((out1 - out0)))" \
    [ "$out1" -eq "$out0" ]
  rm -f "$tmp/got"

  # 3. Misuse.
  PRELOAD_A timeout 60 "$prog" misuse "$IP_B" 7201 7202 >"$tmp/misuse" 2>"$tmp/misuse.err"
  echo "== $kind stub: misuse"
  cat "$tmp/misuse" "$tmp/misuse.err"
  m=$tmp/misuse
  check "$kind stub: made-up and twice-named handles refused (EINVAL), nothing released" bash -c "
    grep -qx 'release of a made-up handle -22' $m &&
    grep -qx 'release of a good and a made-up handle -22' $m &&
    grep -qx 'release of one handle twice in a call -22' $m &&
    grep -qx 'release of the 2 lent frames 0' $m && grep -qx 'release of them again -22' $m"
  check "$kind stub: a forked child cannot release its parent's frame" \
    grep -qx "a forked child releasing its parent's frame: refused yes" "$m"
  check "$kind stub: descriptors not on the stack: a pipe ESOCKTNOSUPPORT, a closed one EBADF" bash -c "
    grep -qx 'recv on a pipe -94' $m && grep -qx 'recv on a closed descriptor -9' $m"
  check "$kind stub: arguments out of range refused (EINVAL), EAGAIN with nothing to read" bash -c "
    grep -qx 'recv with no room -22' $m && grep -qx 'recv with MSG_PEEK -22' $m &&
    grep -qx 'recv with nothing to read, MSG_DONTWAIT -11' $m && grep -qx 'alloc of 0 frames -22' $m &&
    grep -qx 'send of 0 bytes -22' $m && grep -qx 'send of more than the frame takes -22' $m &&
    grep -qx 'send of one frame twice -22' $m && grep -qx 'send with MSG_OOB -22' $m &&
    grep -qx 'send of a made-up handle -22' $m && grep -qx 'send of a received buffer -22' $m"
  check "$kind stub: frames lent take a segment each" \
    grep -qx 'alloc of 2 frames 2, each takes a segment yes' "$m"
  check "$kind stub: after all that, an echo round trip in place, nothing held" bash -c "
    grep -qx \"after all that, a round trip: sent 1 frame, echo 'hello'\" $m &&
    grep -qx 'buffers held at the end 0' $m"
  check "$kind stub: UDP: a datagram in place with its source; no frames lent (EOPNOTSUPP)" bash -c "
    grep -qx 'alloc on UDP -95' $m && grep -qx 'UDP recv with nothing to read, MSG_DONTWAIT -11' $m &&
    grep -qx \"UDP recv 17 bytes in 1 piece(s): 'datagram in place' from $IP_B:7202\" $m &&
    grep -qx 'UDP release 0' $m"

  # 4. Without xdpload.
  in_a timeout 60 "$prog" misuse "$IP_B" 7201 7202 >"$tmp/absent" 2>&1
  check "$kind stub, without xdpload: not present, every call -ENOSYS" bash -c "
    grep -qx 'present 0' $tmp/absent && grep -qx 'release of a made-up handle -38' $tmp/absent &&
    grep -qx 'recv on a pipe -38' $tmp/absent && grep -qx 'alloc of 0 frames -38' $tmp/absent &&
    grep -qx 'send of 0 bytes -38' $tmp/absent"
done
finish
