# A program that writes to a TCP socket and exits at once loses nothing:
# the kernel would go on delivering a closed socket's data after its process
# ends; under xdpload the stack ends with the process, so exit() finishes the
# connections first. The peer (a kernel socket in B) reads slowly, so the
# last few hundred KB are still in the stack's send buffer at exit.
#   closed: the program closes the socket, then exits;
#   open:   it exits with the socket still open (exit() closes it);
#   thread: as closed, with another thread of the program still alive at
#   exit.
# Then the process lets go of its AF_XDP sockets and XDP link all at once
# (each is released by the kernel behind an RCU grace period: in exit_group
# one after another, 70 ms for 4 queues), except when another thread of the
# program could still be using them.
#   linger 0: XDPLOAD_EXIT_LINGER_MS=0 turns the finishing off, and the peer
#   never sees the end of the stream (what the other two would show without
#   the feature).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 3000000 /dev/urandom >"$tmp/in"
want=$(sha256sum <"$tmp/in" | cut -d' ' -f1)

# The writer: all of stdin, then exit (closing first, or not).
cat >"$tmp/writer.py" <<'PY'
import os, socket, sys, threading, time
ip, port, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((ip, port))
s.sendall(sys.stdin.buffer.read())
if how == "thread":
    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
if how in ("closed", "thread"):
    s.close()
else:
    s.detach()  # the descriptor stays open until the process exits
sys.exit(0)
PY

run() {  # how port sink-timeout [env...]
  local how=$1 port=$2 t=$3
  shift 3
  local resets0
  resets0=$(kernel_counter "$NS_B" TcpEstabResets)
  bg_b python3 "$(dirname "$0")/../peers/slow_sink.py" "$port" "$t" >"$tmp/sink-$how.out" 2>&1
  local sink=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$port' | grep -q $port"
  PRELOAD_A env XDPLOAD_LOG=1 "$@" python3 "$tmp/writer.py" "$IP_B" "$port" "$how" \
    <"$tmp/in" 2>"$tmp/writer-$how.err"
  WRITER_RC=$?
  wait "$sink"
  # The sink has read to its end and closed: its connection was never reset
  # while established or closing (an exit that aborted the connection, or
  # left B's segments to A's kernel with data unacknowledged, would).
  RESETS=$(( $(kernel_counter "$NS_B" TcpEstabResets) - resets0 ))
  read -r GOT_N GOT_SHA GOT_END <"$tmp/sink-$how.out"
  cat "$tmp/writer-$how.err"
}

for how in closed open thread; do
  run "$how" $((7300 + ${#how})) 10
  check "$how: the writer exits 0" [ "$WRITER_RC" -eq 0 ]
  check "$how: the peer read to end-of-file ($GOT_END)" [ "$GOT_END" = eof ]
  check "$how: 3,000,000 bytes arrived ($GOT_N), sha256 equal" \
    [ "$GOT_N/$GOT_SHA" = "3000000/$want" ]
  check "$how: the writer's connection went over the stack" \
    [ "$(exit_tx_bytes "$tmp/writer-$how.err")" -gt 3000000 ]
  check "$how: B's connection was never reset (TcpEstabResets +$RESETS)" [ "$RESETS" -eq 0 ]
  check "$how: exit waited until the end of the stream was acknowledged" \
    grep -q "exit: 1 TCP connection(s) delivered and closed" "$tmp/writer-$how.err"
  if [ "$how" = thread ]; then
    check "$how: a thread of the program alive at exit: the port is left to exit_group" \
      bash -c "! grep -q 'released together' $tmp/writer-$how.err"
  else
    check "$how: the port's 4 queues and XDP link released together at exit" \
      grep -q "exit: the XDP link and 4 AF_XDP socket(s) released together" "$tmp/writer-$how.err"
  fi
  check "$how: no XDP program left on A's interface after the exit" bash -c "! xdp_attached $NS_A $IF_A"
done

run linger0 7320 3 XDPLOAD_EXIT_LINGER_MS=0
check "linger 0: the writer exits 0" [ "$WRITER_RC" -eq 0 ]
check "linger 0: the peer never sees the end of the stream ($GOT_END, $GOT_N bytes)" \
  grep -qxE "timeout|reset" <<<"$GOT_END"
echo "linger 0: B's connection reset $RESETS time(s)"
finish
