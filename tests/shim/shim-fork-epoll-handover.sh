# An epoll set made after a fork watches a socket that the child then moves
# between the stack and the kernel (tests/progs/fork_epoll_handover.c), run
# in A on the kernel and under xdpload: the parent's epoll_wait must report
# the same.
# - exec: the child execs a program that inherits a connection, which
#   under xdpload hands it from the stack to the kernel in the child, while
#   the parent sleeps in epoll_wait on it; the bytes B sends a second later
#   must wake the parent ("readable hello"). Also with the parent asleep
#   in poll() or select() on the set's descriptor, or in epoll_wait on a
#   set that nests it (exec-poll, exec-select, exec-nested): those
#   sleepers watch the set from outside, and must make the change the
#   child queued once woken (by the change, or by the child's departure:
#   not told apart here).
# - to-stack: the child connects a bound socket to a server in B, through
#   the stack; the parent's set must no longer report the unconnected
#   kernel socket's HUP ("OUT").
# Before, the child changed the kernel's epoll instance by the parent's
# descriptor number, which means nothing in the child: the parent saw
# nothing for its 5 s in the first, and HUP beside OUT in the second; the
# outside sleepers, before they were woken for it, nothing for their 5 s.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT  # (netns_down ends what runs in the namespaces)
FEH="$BUILD/tests/fork_epoll_handover"

# Servers in B: on 7400 one that sends nothing, on 7401 one that sends
# "hello" a second after the connection; both read until the client closes.
for port in 7400 7401; do
  bg_b python3 -c '
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1]))); l.listen(8)
while True:
    c, _ = l.accept()
    try:
        if sys.argv[1] == "7401":
            time.sleep(1); c.sendall(b"hello")
        while c.recv(100): pass
    except OSError:
        pass  # (a client that failed closes with "hello" unread: a reset)
    c.close()' "$port"
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$port' | grep -q $port"
done

for case in exec exec-poll exec-select exec-nested to-stack; do
  port=7401
  [ "$case" = to-stack ] && port=7400
  in_a timeout 30 "$FEH" "$case" "$IP_B" "$port" >"$tmp/kernel-$case" 2>&1
  echo "kernel $case: $(cat "$tmp/kernel-$case")"
  opens=$(kernel_counter "$NS_A" TcpActiveOpens)
  PRELOAD_A env XDPLOAD_LOG=2 timeout 30 "$FEH" "$case" "$IP_B" "$port" >"$tmp/xdpload-$case" 2>"$tmp/xdpload-$case.err"
  opens_after=$(kernel_counter "$NS_A" TcpActiveOpens)
  echo "xdpload $case: $(cat "$tmp/xdpload-$case")"
  check "$case: the parent's epoll_wait reports as on the kernel" \
    cmp -s "$tmp/kernel-$case" "$tmp/xdpload-$case"
  check "$case: the connection went through the stack (A's kernel opened none)" \
    [ "$opens_after" = "$opens" ]
  if [ "$case" != to-stack ]; then
    check "$case: the kernel reported the bytes (readable hello)" grep -qx "readable hello" "$tmp/kernel-$case"
    check "$case: the child's exec handed the connection to the kernel" \
      grep -q "connection handed to the kernel with its state" "$tmp/xdpload-$case.err"
  else
    check "to-stack: the kernel reported OUT alone" grep -qx "OUT" "$tmp/kernel-$case"
  fi
done
grep -hv "clock:" "$tmp/xdpload-exec.err" "$tmp/xdpload-to-stack.err" | head -30
finish
