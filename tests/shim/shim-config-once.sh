# A bad configuration is said once, by the process whose socket could have
# been accelerated, not by every process that loads the library (a shell, a
# pyenv shim, every compiler of a build run under the wrapper):
# - processes that make no TCP or UDP socket say nothing;
# - the one that does says it in one line; others of the same run that make
#   none stay silent;
# - the same for a missing interface and an unknown XDPLOAD_* variable;
# - XDPLOAD_STRICT=1 still stops the program at start, socket or not.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
no_socket='true; ls / >/dev/null; cat /etc/hostname >/dev/null; python3 -c pass; sort </dev/null'
one_socket="$no_socket; python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)'; python3 -c pass"

lines() { grep -c . "$1"; }
for case in "XDPLOAD_FRAMES=lots|XDPLOAD_FRAMES=lots is not a whole number" \
            "XDPLOAD_IFACE=nosuch0|interface 'nosuch0'" \
            "XDPLOAD_SPINUSEC=5|unknown variable XDPLOAD_SPINUSEC ignored; did you mean XDPLOAD_SPIN_USEC?"; do
  setting=${case%%|*} text=${case#*|}
  ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$setting" \
    bash -c "$no_socket" 2>"$tmp/none.err"
  ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$setting" \
    bash -c "$one_socket" 2>"$tmp/one.err"
  cat "$tmp/none.err" "$tmp/one.err"
  check "$setting: processes without a socket say nothing" [ "$(lines "$tmp/none.err")" -eq 0 ]
  check "$setting: the one with a socket says it, once" \
    bash -c "[ \$(grep -c . $tmp/one.err) -eq 1 ] && grep -qF -- \"$text\" $tmp/one.err"
done
PRELOAD_A env XDPLOAD_FRAMES=lots XDPLOAD_STRICT=1 true 2>"$tmp/strict.err"
rc=$?
cat "$tmp/strict.err"
check "XDPLOAD_STRICT=1: a bad value stops the program at start (exit $rc)" \
  bash -c "[ $rc -eq 1 ] && grep -q 'fatal: XDPLOAD_FRAMES=lots' $tmp/strict.err"
finish
