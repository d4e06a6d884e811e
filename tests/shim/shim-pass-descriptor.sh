# A socket of the stack passed to another process over a Unix socket
# (SCM_RIGHTS): Node.js's cluster passes each accepted connection (or the
# listener) to a worker it started with fork+exec; HAProxy and Envoy pass
# their listeners to a new process; systemd-style socket passing. The
# receiving process cannot reach the sender's stack (an exec'd program is
# outside its family), and its descriptor is the kernel socket beside the
# stack's: the library hands the socket to the kernel before the message
# leaves (a connection with its state, TCP_REPAIR: its bytes not yet read
# included), so that the receiver's copy works, as on Linux. Before, the
# receiver's read() said ENOTCONN and its accept() waited for ever.
#
# tests/progs/pass_descriptor.c, each mode run on the kernel path and under
# xdpload, the outputs compared, a client in B:
# - connection: accepted after the client's line arrived, passed unread to
#   an exec'd receiver that answers it;
# - listener: passed to an exec'd receiver that accepts and answers;
# - udp: passed to an exec'd receiver that answers a datagram, the
#   sender's copy still open;
# - the same three with a forked (not exec'd) receiver;
# - malformed: an SCM_RIGHTS message whose cmsg_len runs past the control
#   buffer, naming the listener: the kernel refuses it (EINVAL), and the
#   listener, passed nowhere, stays the stack's (the first version of the
#   hand-over read the descriptors past the buffer and handed it over).
# A sendmsg that passes a socket leaves errno as it was.
# The modes run one after another on one port: the listener case binds it
# again while the connection case's TIME-WAIT (the receiver closed first)
# lasts, with SO_REUSEADDR, as Linux allows. A connection handed to the
# kernel after accept() now ends in a TIME-WAIT that carries its
# listener's SO_REUSEADDR, as an accepted socket's does on Linux; before,
# the bind said EADDRINUSE for a minute.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
port=7230

# client MODE: B's side of one case; prints the reply.
client() {
  if [[ $1 == *udp ]]; then
    in_b python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b'hi there', ('$IP_A', $port))
try:
    print(s.recvfrom(100)[0].decode())
except OSError as e:
    print('client:', e)"
  else
    in_b python3 -c "
import socket
try:
    s = socket.create_connection(('$IP_A', $port), timeout=5)
    s.sendall(b'hello line\n')
    print(s.recv(100).decode().strip())
except OSError as e:
    print('client:', e)"
  fi
}

# run MODE kernel|xdpload
run() {
  local mode=$1 how=$2 pre=()
  [ "$how" = xdpload ] && pre=(env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=2)
  in_a timeout 20 "${pre[@]}" "$BUILD/tests/pass_descriptor" "$mode" "$IP_A" "$port" \
    >"$tmp/$mode-$how.out" 2>"$tmp/$mode-$how.err" &
  local pid=$!
  wait_for 50 grep -q ready "$tmp/$mode-$how.out"
  client "$mode" >"$tmp/$mode-$how.client"
  wait "$pid"
  echo "exit $?" >>"$tmp/$mode-$how.out"
}

for mode in connection listener udp forked-connection forked-listener forked-udp malformed; do
  run "$mode" kernel
  run "$mode" xdpload
  echo "== $mode"
  cat "$tmp/$mode-kernel.out" "$tmp/$mode-xdpload.client"
  grep -E "passed|handed|kernel's from now on" "$tmp/$mode-xdpload.err"
  reply="echo: hello line"
  [[ $mode == *udp ]] && reply="echo: hi there"
  check "$mode, kernel path: the receiver answers" grep -qx "$reply" "$tmp/$mode-kernel.client"
  check "$mode, under xdpload: the receiver answers" grep -qx "$reply" "$tmp/$mode-xdpload.client"
  check "$mode, under xdpload: the same output as on the kernel path" \
    diff "$tmp/$mode-kernel.out" "$tmp/$mode-xdpload.out"
  # (Accelerated until passed: the hand-over is what the library did.)
  case $mode in
    malformed)
      check "$mode: refused (EINVAL), the listener stays the stack's" \
        bash -c "grep -q 'malformed sendmsg: -1 Invalid argument' $tmp/$mode-xdpload.out &&
                 ! grep -q 'kernel.s from now on' $tmp/$mode-xdpload.err"
      continue ;;
    *connection)
      check "$mode: the connection was the stack's, handed to the kernel with its state" \
        grep -q "passed to another process: connection handed to the kernel with its state" \
        "$tmp/$mode-xdpload.err" ;;
    *)
      check "$mode: the socket was the stack's, the kernel's once passed" \
        grep -q "is the kernel's from now on" "$tmp/$mode-xdpload.err" ;;
  esac
  check "$mode: said once at the default level" \
    [ "$(grep -c "is passed to another process (SCM_RIGHTS)" "$tmp/$mode-xdpload.err")" -eq 1 ]
done
check "the listener case bound the port during the connection case's TIME-WAIT" \
  grep -q "passes the listener" "$tmp/listener-xdpload.out"
finish
