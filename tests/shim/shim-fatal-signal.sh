# A program ended by a signal whose action is the default one (SIGTERM, as
# `systemctl stop` and `docker stop` send; SIGHUP) while its connection
# still holds data: the kernel would close the socket and deliver all of it,
# then FIN. Under xdpload the stack dies with the process, so the signal is
# caught (the program still sees SIG_DFL), the connections are finished as
# exit() finishes them, and the process dies by the same signal.
# Before: the reader got the bytes but never an end of file (it hung until
# its own timeout).
# A program spinning in a receive (XDPLOAD_SPIN_USEC) spends its time inside
# the stack's lock: SIGTERM lands there, or while it takes the lock, and
# must still end it the same way. Before: it hung for good when the signal
# came between the mutex and the lock's own flag (stopped with the lock
# held, the progress thread waiting for it).
# A program that has called exit() while its connection still delivers to a
# slow reader (exit() finishing it, the progress thread kept out) and gets
# SIGTERM meanwhile: the end goes on and the process dies by the signal (or
# exits 0, had the end come first), every byte and the FIN delivered.
# Before: it hung for good (the exiting thread stopped where the signal
# landed, and the progress thread stayed parked).
# A thread stuck inside the stack for good (a livelock: a bug; the test
# seam XL_TEST_SPIN_HOLDING_LOCK makes a 77-byte send spin with the lock
# held): SIGTERM still ends the program, by SIGTERM, within seconds, said.
# Before: the progress thread waited for the lock for ever, and the
# program could only be killed with SIGKILL.
# A SIGPIPE from stdio's last flush, which exit() makes after the library's
# destructor, into a pipe whose reader is gone (tests/progs/exit_flush.c):
# the program dies by it as on the kernel path (141), not swallowed by a
# catcher left in place.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
writer=
trap '[ -n "$writer" ] && kill -9 "$writer" 2>/dev/null; rm -rf "$tmp"; netns_down' EXIT
head -c 3000000 /dev/urandom >"$tmp/in"
want=$(sha256sum <"$tmp/in" | cut -d' ' -f1)

# The writer: sends everything, says so, and waits to be killed: asleep,
# or in a receive from the peer (which never sends).
cat >"$tmp/writer.py" <<'PY'
import signal, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data, n = open(sys.argv[4], "rb").read(), 0
if sys.argv[5] == "exit":
    # As much as the buffers take before the reader starts (it waits half
    # a second): exit() then has all of that to deliver.
    s.setblocking(False)
    try:
        while n < len(data):
            n += s.send(data[n:n + 65536])
    except BlockingIOError:
        pass
else:
    s.sendall(data)
    n = len(data)
sig = getattr(signal, sys.argv[3])
print("sent", n, "bytes; action", "SIG_DFL" if signal.getsignal(sig) == signal.SIG_DFL else signal.getsignal(sig), flush=True)
if sys.argv[5] == "recv":
    s.recv(1)
if sys.argv[5] == "exit":
    sys.exit(0)
time.sleep(60)
PY

run() {  # mode(kernel|xdpload|spinning) signal port
  local mode=$1 sig=$2 port=$3 out="$tmp/$1-$2" wait=sleep
  bg_b python3 "$(dirname "$0")/../peers/slow_sink.py" "$port" 10 >"$out.sink" 2>&1
  local sink=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$port' | grep -q $port"
  if [ "$mode" = exiting ]; then
    bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/writer.py" "$IP_B" "$port" "$sig" "$tmp/in" exit >"$out.writer" 2>&1
  elif [ "$mode" = xdpload ]; then
    bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/writer.py" "$IP_B" "$port" "$sig" "$tmp/in" sleep >"$out.writer" 2>&1
  elif [ "$mode" = spinning ]; then
    bg_preload_a env XDPLOAD_LOG=1 XDPLOAD_SPIN_USEC=60000000 \
      python3 "$tmp/writer.py" "$IP_B" "$port" "$sig" "$tmp/in" recv >"$out.writer" 2>&1
  else
    # (ip netns exec itself, not a function: $! must be the writer)
    ip netns exec "$NS_A" python3 "$tmp/writer.py" "$IP_B" "$port" "$sig" "$tmp/in" sleep >"$out.writer" 2>&1 &
    BG_PID=$!
  fi
  writer=$BG_PID
  wait_for 100 grep -q "^sent" "$out.writer"
  # (spinning: in its receive by now, or soon; the signal lands wherever.
  # exiting: in exit(), which waits for the reader to start.)
  [ "$mode" = spinning ] && sleep 0.3
  kill -"${sig#SIG}" "$writer"
  # A writer still alive after 10 s hangs: killed, and its status says so.
  for _ in $(seq 100); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$writer" 2>/dev/null && echo "still alive 10 s after $sig" >>"$out.writer" &&
    kill -9 "$writer"
  wait "$writer" 2>/dev/null
  echo $? >"$out.rc"
  writer=
  wait "$sink"
}

port=7400
for sig in SIGTERM SIGHUP; do
  run kernel "$sig" $port
  run xdpload "$sig" $((port + 1))
  port=$((port + 2))
  num=$(kill -l "${sig#SIG}")
  for mode in kernel xdpload; do
    cat "$tmp/$mode-$sig.writer" "$tmp/$mode-$sig.sink"
    read -r n sha end <"$tmp/$mode-$sig.sink"
    check "$mode $sig: the reader got every byte ($n) and end-of-file ($end)" \
      [ "$n/$sha/$end" = "3000000/$want/eof" ]
    check "$mode $sig: the writer died by $sig (status $(cat "$tmp/$mode-$sig.rc"))" \
      [ "$(cat "$tmp/$mode-$sig.rc")" -eq $((128 + num)) ]
  done
  check "xdpload $sig: the program saw the default action" grep -q "action SIG_DFL" "$tmp/xdpload-$sig.writer"
  check "xdpload $sig: the connection went over the stack" grep -q "accelerating" "$tmp/xdpload-$sig.writer"
done

# Spinning: five times, each signal landing somewhere else in the loop.
for i in 1 2 3 4 5; do
  run spinning SIGTERM $((7420 + i))
  cat "$tmp/spinning-SIGTERM.writer" "$tmp/spinning-SIGTERM.sink"
  read -r n sha end <"$tmp/spinning-SIGTERM.sink"
  check "spinning $i: the writer died by SIGTERM (status $(cat "$tmp/spinning-SIGTERM.rc"))" \
    [ "$(cat "$tmp/spinning-SIGTERM.rc")" -eq 143 ]
  check "spinning $i: the reader got every byte ($n) and end-of-file ($end)" \
    [ "$n/$sha/$end" = "3000000/$want/eof" ]
done
check "spinning: it spun (the option was in force)" grep -q "XDPLOAD_SPIN_USEC=60000000" "$tmp/spinning-SIGTERM.writer"

run exiting SIGTERM 7430
cat "$tmp/exiting-SIGTERM.writer" "$tmp/exiting-SIGTERM.sink"
read -r n sha end <"$tmp/exiting-SIGTERM.sink"
sent=$(sed -n 's/^sent \([0-9]*\) bytes.*/\1/p' "$tmp/exiting-SIGTERM.writer")
check "exiting: the writer died by SIGTERM (status $(cat "$tmp/exiting-SIGTERM.rc"))" \
  [ "$(cat "$tmp/exiting-SIGTERM.rc")" -eq 143 ]
check "exiting: the reader got every byte sent (${sent:-?}: $n) and end-of-file ($end)" \
  [ "$n/$sha/$end" = "${sent:-x}/$(head -c "${sent:-0}" "$tmp/in" | sha256sum | cut -d' ' -f1)/eof" ]
check "exiting: exit() had the connection to finish" grep -q "delivered and closed" "$tmp/exiting-SIGTERM.writer"

cat >"$tmp/stuck.py" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print("connected", flush=True)
s.sendall(b"x" * 77)
PY
bg_b bash -c "nc -l -p 7431 >/dev/null"
wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7431' | grep -q 7431"
ip netns exec "$NS_A" env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XL_TEST_SPIN_HOLDING_LOCK=77 \
  python3 "$tmp/stuck.py" "$IP_B" 7431 >"$tmp/stuck.out" 2>"$tmp/stuck.err" &
writer=$!
wait_for 50 grep -q connected "$tmp/stuck.out"
sleep 0.3  # (in the send, spinning)
kill -TERM "$writer"
for _ in $(seq 50); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
stuck_alive=no
kill -0 "$writer" 2>/dev/null && stuck_alive=yes && kill -9 "$writer"
wait "$writer"
stuck_rc=$?
writer=
cat "$tmp/stuck.err"
check "stuck inside the stack: SIGTERM ended it within 5 s (alive after: $stuck_alive), by SIGTERM ($stuck_rc)" \
  [ "$stuck_alive" = no -a "$stuck_rc" -eq 143 ]
check "stuck inside the stack: said" grep -q "a thread holds the stack and does not let go" "$tmp/stuck.err"

in_a "$BUILD/tests/exit_flush" "$IP_B" | true
kernel_rc=${PIPESTATUS[0]}
PRELOAD_A "$BUILD/tests/exit_flush" "$IP_B" | true
preload_rc=${PIPESTATUS[0]}
check "SIGPIPE at exit()'s last flush: status $preload_rc under the preload, $kernel_rc on the kernel path" \
  [ "$kernel_rc" -eq 141 -a "$preload_rc" -eq 141 ]
finish
