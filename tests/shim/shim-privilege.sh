# Without privilege, a program under the preload runs on the kernel path
# with one warning line; with XDPLOAD_STRICT=1 it exits with a clear error.
# A bad XDPLOAD_* value is reported the same way.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 1000000 /dev/urandom >"$tmp/in"
chmod 644 "$tmp/in"
chmod o+rx "$BUILD" 2>/dev/null
as_nobody() { ip netns exec "$NS_A" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

bg_b bash -c "nc -l -N 7000 >$tmp/got"
server=$BG_PID
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7000' | grep -q 7000"
as_nobody env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" nc -N "$IP_B" 7000 \
  <"$tmp/in" 2>"$tmp/nobody.err"
rc=$?
wait "$server"
cat "$tmp/nobody.err"
check "unprivileged: the program works (kernel path)" bash -c "[ $rc -eq 0 ] && cmp -s $tmp/in $tmp/got"
check "unprivileged: exactly one line on stderr" [ "$(wc -l <"$tmp/nobody.err")" -eq 1 ]
check "unprivileged: it says why and that it runs on the kernel path" \
  grep -q "xdpload: acceleration off, running on the kernel path: .*CAP_NET_RAW" "$tmp/nobody.err"

as_nobody env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_STRICT=1 \
  nc -N "$IP_B" 7000 <"$tmp/in" >"$tmp/strict.out" 2>"$tmp/strict.err"
rc=$?
cat "$tmp/strict.err"
check "strict: exits with an error" [ $rc -ne 0 ]
check "strict: says so clearly" grep -q "xdpload: fatal: .*XDPLOAD_STRICT=1" "$tmp/strict.err"

# (Said at the program's first socket: shim-config-once.)
a_socket="import socket; socket.socket()"
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_SPIN_USEC=abc \
  python3 -c "$a_socket" 2>"$tmp/bad.err"
rc=$?
cat "$tmp/bad.err"
check "bad value: the program still runs" [ $rc -eq 0 ]
check "bad value: one line naming the variable and the range" \
  bash -c "[ \$(wc -l <$tmp/bad.err) -eq 1 ] && grep -q 'XDPLOAD_SPIN_USEC=abc is not a whole number' $tmp/bad.err"
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE=no-such-if python3 -c "$a_socket" 2>"$tmp/noif.err"
rc=$?
cat "$tmp/noif.err"
check "missing interface: runs, one line" bash -c "[ $rc -eq 0 ] && grep -q \"interface 'no-such-if' does not exist\" $tmp/noif.err"

# A root program that changes its own thread's capabilities, then its
# user (setpriv does both): the stack starts before the privilege drop,
# but our progress thread must not exist yet, or glibc's set*id broadcast
# finds threads with other capabilities and aborts the program.
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2 \
  setpriv --reuid nobody --regid nogroup --clear-groups --inh-caps +net_raw --ambient-caps +net_raw \
  true 2>"$tmp/setpriv.err"
rc=$?
cat "$tmp/setpriv.err"
check "setpriv with capabilities under the preload exits 0 (status $rc)" [ $rc -eq 0 ]
check "...after starting the stack before the privilege drop" grep -q "before the process gives up root" "$tmp/setpriv.err"
finish
