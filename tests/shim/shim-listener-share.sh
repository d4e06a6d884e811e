# A TCP listener handed to the kernel (an option the stack cannot honour,
# here a socket filter) while a connection it accepted on the stack goes on:
# the port stays steered for that connection, and before per-flow steering
# every new connection's SYN reached the stack, which has no listener any
# more and refused it. Now the XDP program sends the stack only its own
# connections of the port and the kernel everything else:
# - the first connection keeps echoing on the stack (A's kernel never has it
#   established);
# - two new connections are accepted by the kernel (A's kernel has them
#   established; its TcpPassiveOpens counts them), and echo;
# - a connection that waited in the listener's queue at the hand-over stays
#   on the stack and is accepted first (it was reset before);
# - a connection whose handshake was under way at the hand-over (the
#   client's ACK lost, by tc_drop_ack.bpf.c on B's veth) completes on the
#   stack when the client's data comes, and is accepted next (its data went
#   to A's kernel, which reset it, before);
# - a handshake under way at the hand-over that dies (the client resets it
#   before its ACK gets through) has its flow unlisted: before, it stayed in
#   the steering map until a SYN reused its addresses;
# - all alive at once, byte-exact;
# - once the first has ended on the stack (its TIME-WAIT the stack's), a new
#   connection from the same address and port is the kernel's too.
# Alone on the interface, and again through the broker (`xdpload daemon`),
# which owns the XDP program and lists the flows for the program.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/broker.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/server.py" <<'PY'
import ctypes, os, socket, struct, sys, time
flag = sys.argv[1]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 9610))
srv.listen(8)
srv.settimeout(10)  # (a connection that never comes fails the test, not hangs it)
print("listening", flush=True)
def echo_once(c):
    c.settimeout(10)
    data = c.recv(100)
    c.sendall(b"echo " + data)
first, _ = srv.accept()
echo_once(first)
# Another connection waits in the queue (completed, not yet accepted).
import select
select.select([srv], [], [], 10)
# ... and a third has its handshake under way (its ACK lost).
for _ in range(200):
    if os.path.exists(flag + ".held"):
        break
    time.sleep(0.05)
# cBPF "accept everything" (ret #0xffffffff): the stack cannot run it.
prog = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF))
srv.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", 1, ctypes.addressof(prog)))
print("filter attached", flush=True)
queued, _ = srv.accept()  # the stack's, from before the filter
echo_once(queued)
held, _ = srv.accept()  # the stack's, its handshake finished since
echo_once(held)
others = []
for i in range(2):
    c, _ = srv.accept()
    echo_once(c)
    others.append(c)
echo_once(first)
for c in others:
    echo_once(c)
print("served", flush=True)
# The first connection ends here first: its TIME-WAIT stays on the stack.
# The client connects again from the same port: a new connection, the
# kernel's (the steering program passes a SYN on a shared port).
first.close()
again, _ = srv.accept()
echo_once(again)
print("served again", flush=True)
for c in others + [again, queued, held]:
    while c.recv(100):
        pass
PY
cat >"$tmp/client.py" <<'PY'
import socket, struct, sys, time
ip, flag = sys.argv[1], sys.argv[2]
def talk(c, msg):
    try:
        return talk_or_fail(c, msg)
    except OSError as e:
        return "failed: %s" % e
def talk_or_fail(c, msg):
    c.sendall(msg)
    got = b""
    while len(got) < len(msg) + 5:
        d = c.recv(100)
        if not d:
            break
        got += d
    return got.decode()
first = socket.create_connection((ip, 9610), timeout=10)
print("first:", talk(first, b"one"), flush=True)
queued = socket.create_connection((ip, 9610), timeout=10)
queued.sendall(b"zero")
held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
held.settimeout(10)
held.bind(("", int(sys.argv[3])))
held.connect((ip, 9610))  # (B's side is established; A's waits for the ACK)
dying = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
dying.bind(("", int(sys.argv[3]) + 10))
dying.connect((ip, 9610))  # (the same, and it will die)
open(flag + ".held", "w").close()
for _ in range(100):
    if "filter attached" in open(flag).read():
        break
    time.sleep(0.05)
# Once the test has seen its flow listed: a reset, and the handshake is over.
for _ in range(100):
    try:
        open(flag + ".dying-seen").close()
        break
    except OSError:
        time.sleep(0.05)
dying.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
dying.close()
print("dying: reset", flush=True)
got = b""
try:
    while len(got) < 9:
        d = queued.recv(100)
        if not d:
            got += b" (end of stream)"
            break
        got += d
except OSError as e:
    got += str(e).encode()
print("queued:", got.decode(), flush=True)
print("held:", talk(held, b"held"), flush=True)
others = []
for name in (b"two", b"three"):
    try:
        c = socket.create_connection((ip, 9610), timeout=5)
        print("new:", talk(c, name), flush=True)
        others.append(c)
    except OSError as e:
        print("new:", name.decode(), "failed:", e, flush=True)
print("first again:", talk(first, b"one more"), flush=True)
for c, name in zip(others, (b"two more", b"three more")):
    print("new again:", talk(c, name), flush=True)
print("done", flush=True)
# (The test counts A's connections while all are open.)
for _ in range(200):
    try:
        open(flag + ".counted").close()
        break
    except OSError:
        time.sleep(0.05)
# The server closes the first; then the same 4-tuple again.
port = first.getsockname()[1]
first.settimeout(10)
try:
    while first.recv(100):
        pass
except OSError:
    pass
first.close()
time.sleep(0.3)
try:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(5)
    c.bind(("", port))
    c.connect((ip, 9610))
    print("same ports again:", talk(c, b"four"), flush=True)
except OSError as e:
    print("same ports again: failed:", e, flush=True)
PY
# flows_from PORT: the steering map's flows whose remote port is PORT
# (every map named steer_flows: bpftool wraps each map's entries in
# {"elements": ...} when there are several, says {"error": ...} when none).
flows_from() {
  ip netns exec "$NS_A" bpftool -j map dump name steer_flows 2>/dev/null | python3 -c '
import json, sys
port = int(sys.argv[1])
try:
    data = json.load(sys.stdin)
except ValueError:
    data = []
if isinstance(data, dict):
    data = []
if data and isinstance(data[0], dict) and "elements" in data[0]:
    entries = [e for m in data for e in (m.get("elements") or [])]
else:
    entries = data
n = 0
for e in entries:
    k = e.get("formatted", e).get("key")
    if isinstance(k, dict):
        # (BTF: the network-order field read as a host-order number)
        n += k["remote_port"] == ((port & 0xff) << 8 | port >> 8)
    else:
        # Raw bytes: remote_ip (4), then remote_port in network order.
        b = [int(x, 16) for x in k]
        n += b[4] * 256 + b[5] == port
print(n)' "$1"
}

# run_case LABEL: the server under xdpload, the client in B; the checks.
run_case() {
  local label=$1
  local held_port=$2
  rm -f "$tmp/out.counted" "$tmp/out.held" "$tmp/out.dying-seen"
  in_b tc filter replace dev "$IF_B" egress pref 1 bpf da obj "$BUILD/tests/tc_drop_ack.bpf.o" \
    sec tc/drop_pure_ack
  opens0=$(kernel_counter "$NS_A" TcpPassiveOpens)
  bg_preload_a env XDPLOAD_LOG=2 python3 "$tmp/server.py" "$tmp/out" >"$tmp/out" 2>"$tmp/err"
  srv=$BG_PID
  wait_for 50 grep -q listening "$tmp/out"
  bg_b python3 "$tmp/client.py" "$IP_A" "$tmp/out" "$held_port" >"$tmp/client" 2>&1
  cli=$BG_PID
  wait_for 100 grep -q "filter attached" "$tmp/out"
  local dying_listed dying_after
  dying_listed=$(flows_from $((held_port + 10)))
  touch "$tmp/out.dying-seen"
  wait_for 100 grep -q "^dying: reset" "$tmp/client"
  sleep 0.5
  dying_after=$(flows_from $((held_port + 10)))
  # The held connection's later ACKs pass again once it has talked.
  wait_for 100 grep -q '^held:' "$tmp/client"
  in_b tc filter del dev "$IF_B" egress pref 1
  wait_for 100 grep -qx done "$tmp/client"
  in_a ss -tnH state established '( sport = :9610 )' >"$tmp/ss"
  opens1=$(kernel_counter "$NS_A" TcpPassiveOpens)
  touch "$tmp/out.counted"
  wait "$cli"
  wait "$srv"
  opens2=$(kernel_counter "$NS_A" TcpPassiveOpens)
  echo "== $label"
  cat "$tmp/client" "$tmp/out" "$tmp/err"
  echo "== $label: A's kernel, established on 9610:"
  cat "$tmp/ss"
  check "$label: the listener was handed to the kernel" grep -q "handed to the kernel" "$tmp/err"
  check "$label: the first connection, on the stack, echoes before and after" bash -c "
    grep -qx 'first: echo one' $tmp/client && grep -qx 'first again: echo one more' $tmp/client"
  check "$label: two new connections after the hand-over, accepted and echoed" bash -c "
    grep -qx 'new: echo two' $tmp/client && grep -qx 'new: echo three' $tmp/client &&
    grep -qx 'new again: echo two more' $tmp/client && grep -qx 'new again: echo three more' $tmp/client"
  check "$label: the new ones are the kernel's (A's kernel: 2 passive opens, 2 established), the first is not" \
    bash -c "[ $((opens1 - opens0)) -eq 2 ] && [ \$(grep -c . $tmp/ss) -eq 2 ]"
  check "$label: the connection queued at the hand-over, the stack's, accepted first and echoed" \
    grep -qx 'queued: echo zero' "$tmp/client"
  check "$label: the connection whose handshake was under way at the hand-over, the stack's, echoed" \
    grep -qx 'held: echo held' "$tmp/client"
  check "$label: the server served them all" grep -qx served "$tmp/out"
  check "$label: the dying handshake's flow was listed ($dying_listed), then unlisted when it died ($dying_after)" \
    bash -c "[ '$dying_listed' = 1 ] && [ '$dying_after' = 0 ]"
  check "$label: a connection from the first's ports, whose TIME-WAIT is the stack's, is the kernel's" \
    bash -c "grep -qx 'same ports again: echo four' $tmp/client && grep -qx 'served again' $tmp/out &&
      [ $((opens2 - opens0)) -eq 3 ]"
}

in_b tc qdisc add dev "$IF_B" clsact
run_case "alone on the interface" 31121
# Through the broker, which owns the XDP program: it lists the flows.
broker_up
run_case "through the broker" 31122
check "through the broker: it shared the port" grep -q "tcp port 9610 shared with the kernel" "$tmp/broker.err"
kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
finish
