# The shapes in which servers fork (tests/progs/fork_patterns.c), run in A
# on the kernel and then under xdpload, with the same client in B: the
# client's transcript must be the same, and under xdpload A's kernel must
# see none of the traffic (every process of the family used the stack).
# - accept-fork: the parent accepts and forks a child per connection, then
#   closes its copy (PostgreSQL's, inetd's shape); the connection ends with
#   EOF when the child exits (_exit).
# - prefork: 4 workers accept on the listener their parent made (nginx's,
#   apache prefork's, gunicorn's shape); each of 40 connections is accepted
#   exactly once.
# - udp-turns: parent and child answer on one UDP socket in turn.
# - parent-exits: the parent exits at once, the child serves.
# - threaded: fork while another thread polls a socket of its own.
# - inetd: the parent accepts, the child puts the connection on fds 0 and 1
#   and execs a program that echoes there (the connection becomes the
#   kernel's at exec, with its state: TCP_REPAIR).
# - epoll-shared: an epoll set made before fork is one set in both
#   processes: a socket the child adds is seen ready by the parent's wait.
# - killed-child: each connection's child is killed with SIGKILL while the
#   parent lives: the client gets EOF (an idle connection) or a reset
#   (bytes left unread), as from Linux closing a dead process's sockets,
#   within a second (the survivor closes them for the dead).
# Before the stack was shared, every inherited socket failed with
# EOPNOTSUPP in the child.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
FP="$BUILD/tests/fork_patterns"

# run MODE PATTERN PORT N: server in A, client in B; transcripts in $tmp.
run() {
  local mode=$1 pat=$2 port=$3 n=$4
  local out="$tmp/$mode-$pat"
  if [ "$mode" = xdpload ]; then
    bg_preload_a env XDPLOAD_LOG=1 "$FP" server "$pat" "$port" "$n" >"$out.server" 2>&1
  else
    in_a "$FP" server "$pat" "$port" "$n" >"$out.server" 2>&1 &
    BG_PID=$!
  fi
  server=$BG_PID
  wait_for 50 grep -q "listening" "$out.server"
  [ "$pat" = prefork ] && wait_for 50 grep -q "workers ready" "$out.server"
  in_b timeout 60 "$FP" client "$pat" "$IP_A" "$port" "$n" >"$out.client" 2>"$out.client-err"
  [ "$pat" = prefork ] && kill -TERM "$server"
  # The server ends by itself (or by the SIGTERM above): wait up to 20 s.
  for _ in $(seq 200); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  local kids
  kids=$(pgrep -P "$server")
  kill -9 "$server" $kids 2>/dev/null
  wait "$server" 2>/dev/null
  echo "$?" >"$out.rc"
  server=
  # parent-exits: the orphan child may still be finishing.
  sleep 0.3
}

port=7300
for pat in accept-fork prefork udp-turns parent-exits threaded inetd epoll-shared killed-child; do
  n=6
  [ "$pat" = prefork ] && n=4
  run kernel "$pat" "$port" "$n"
  port=$((port + 2))
  segs=$(kernel_counter "$NS_A" TcpInSegs)
  dgrams=$(kernel_counter "$NS_A" UdpInDatagrams)
  run xdpload "$pat" "$port" "$n"
  port=$((port + 2))
  segs_after=$(kernel_counter "$NS_A" TcpInSegs)
  dgrams_after=$(kernel_counter "$NS_A" UdpInDatagrams)
  echo "== $pat: kernel client / xdpload client / xdpload server"
  cat "$tmp/kernel-$pat.client"
  echo "--"
  cat "$tmp/xdpload-$pat.client" "$tmp/xdpload-$pat.client-err"
  echo "--"
  cat "$tmp/xdpload-$pat.server"
  check "$pat: the client saw the same under xdpload as on the kernel" \
    diff "$tmp/kernel-$pat.client" "$tmp/xdpload-$pat.client"
  check "$pat: no inherited socket failed (EOPNOTSUPP)" \
    bash -c "! grep -q 'not supported\|EOPNOTSUPP\|cannot use it' '$tmp/xdpload-$pat.server'"
  # (inetd's exec'd program holds the connection as a kernel socket.)
  [ "$pat" = inetd ] && continue
  check "$pat: A's kernel saw none of it (TcpInSegs +$((segs_after - segs)), UdpInDatagrams +$((dgrams_after - dgrams)))" \
    [ "$segs_after" -eq "$segs" -a "$dgrams_after" -eq "$dgrams" ]
done

# What each pattern must have shown (the kernel run proves the client).
check "accept-fork: 6 connections echoed by their child, each ended by EOF" \
  [ "$(grep -c '^connection [0-9]: child: line 0' "$tmp/xdpload-accept-fork.client")" -eq 6 ]
check "accept-fork: the server saw every child succeed" grep -q "children done, 0 failed" "$tmp/xdpload-accept-fork.server"
check "prefork: 40 of 40 connections answered once, then EOF" grep -q "prefork: 40 of 40 answered once" "$tmp/xdpload-prefork.client"
check "prefork: the workers served 40 in all" grep -q "^served 40$" "$tmp/xdpload-prefork.server"
check "udp-turns: parent, child, parent answered" \
  bash -c "grep -q 'datagram 0: parent' $tmp/xdpload-udp-turns.client && grep -q 'datagram 1: child' $tmp/xdpload-udp-turns.client && grep -q 'datagram 2: parent' $tmp/xdpload-udp-turns.client"
check "parent-exits: the orphan child echoed" grep -q "orphan connection: orphan: line 0" "$tmp/xdpload-parent-exits.client"
check "inetd: 6 connections echoed by the exec'd program on fds 0 and 1" \
  [ "$(grep -c "^connection [0-9]: exec'd echo: line 0" "$tmp/xdpload-inetd.client")" -eq 6 ]
check "inetd: the server saw every exec'd child succeed" grep -q "inetd children done, 0 failed" "$tmp/xdpload-inetd.server"
check "inetd: each connection was accepted on the stack and became the kernel's at exec (6)" \
  grep -q "7 tcp and 0 udp sockets accelerated, 6 left with the kernel" "$tmp/xdpload-inetd.server"
check "inetd: an exec'd child is not taken for one gone without closing its sockets" \
  bash -c "! grep -q 'gone without closing' '$tmp/xdpload-inetd.server'"
check "epoll-shared: the parent saw the child's socket through the set made before fork" \
  grep -q "accepted 2, the child's socket seen ready through the shared set: yes, child ok" "$tmp/xdpload-epoll-shared.server"
check "epoll-shared: the child answered after the parent saw it" \
  grep -q "^datagram: child, after the parent saw it ready: datagram" "$tmp/xdpload-epoll-shared.client"
check "killed-child: the idle connection ended with EOF within a second of its child's SIGKILL" \
  grep -q "^connection 0: after SIGKILL of its child: EOF within a second" "$tmp/xdpload-killed-child.client"
check "killed-child: the one with unread bytes was reset within a second, as Linux resets it" \
  grep -q "^connection 1: after SIGKILL of its child: reset within a second" "$tmp/xdpload-killed-child.client"
check "threaded: the child of a threaded process echoed" grep -q "threaded connection: threaded child: line 0" "$tmp/xdpload-threaded.client"
finish
