# Telling the kernel about sent frames is a system call per kick in copy
# mode, so UDP sends are batched where that costs no latency:
#   sendmmsg: one kick for the whole call (64 datagrams: a few kicks, as
#   copy mode takes 32 frames a call), and every datagram arrives;
#   XDPLOAD_TX_BATCH=16: a program that sends 5 datagrams and then sleeps
#   (no further call into the library) still has them delivered, by the
#   progress thread, while it sleeps (not at exit).
# The kicks are made after the stack's lock is released (copy mode: the
# kernel runs the whole transmission in that system call, which the other
# threads and processes of the family no longer wait for): the counter of
# kicks after release has them all.
# Both senders are shown on the stack: A's kernel sent no UDP datagram, and
# the exit line counts the socket.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
# B: counts datagrams until 1.5 s pass without one.
cat >"$tmp/count.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(1.5)
n = 0
try:
    while True:
        s.recv(2000)
        n += 1
        if n == 1:
            s.settimeout(1.5)
except socket.timeout:
    pass
print(n, flush=True)
PY
cat >"$tmp/mmsg.py" <<'PY'
import ctypes, json, os, socket, subprocess, sys, time
ip, port, stat = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def kicks():
    time.sleep(1.2)  # the counters are published about once a second
    d = json.loads(subprocess.check_output([stat, "-p", str(os.getpid()), "--json"]))
    c = d["processes"][0]["counters"]
    return c["kicks"], c["kicks_after_release"]
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ip, port))
s.send(b"first")  # starts the stack
before, before_released = kicks()
n = 64
payload = ctypes.create_string_buffer(b"m" * 64)
iovs = (iovec * n)(*[iovec(ctypes.cast(payload, ctypes.c_void_p), 64) for _ in range(n)])
msgs = (mmsghdr * n)()
for i in range(n):
    msgs[i].hdr.iov = ctypes.pointer(iovs[i])
    msgs[i].hdr.iovlen = 1
libc = ctypes.CDLL(None, use_errno=True)
sent = libc.sendmmsg(s.fileno(), msgs, n, 0)
after, after_released = kicks()
print(sent, after - before, after_released - before_released, flush=True)
PY
stat="$BUILD/xdpload-stat"

bg_b python3 "$tmp/count.py" 9500 >"$tmp/count1"
counter=$BG_PID
sleep 0.3
out0=$(kernel_counter "$NS_A" UdpOutDatagrams)
read -r sent kicks released < <(PRELOAD_A env XDPLOAD_LOG=1 python3 "$tmp/mmsg.py" "$IP_B" 9500 "$stat" 2>"$tmp/mmsg.err")
wait "$counter"
out1=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/mmsg.err"
echo "sendmmsg: $sent sent, $kicks kicks; B got $(cat "$tmp/count1")"
check "sendmmsg: the sender was accelerated (A's kernel UdpOutDatagrams +$((out1 - out0)))" \
  bash -c "[ $out1 -eq $out0 ] && grep -q '0 tcp and 1 udp sockets accelerated' $tmp/mmsg.err"
check "sendmmsg sends all 64 datagrams" [ "$sent" = 64 ]
check "B received the 65 datagrams" [ "$(cat "$tmp/count1")" = 65 ]
check "sendmmsg took a few kicks, not one per datagram ($kicks)" [ "${kicks:-99}" -le 8 ]
check "...each made after the lock's release ($released of $kicks)" \
  [ "${released:-0}" -ge 1 -a "${released:-0}" = "${kicks:-x}" ]

bg_b python3 "$tmp/count.py" 9501 >"$tmp/count2"
counter=$BG_PID
sleep 0.3
out0=$(kernel_counter "$NS_A" UdpOutDatagrams)
bg_preload_a env XDPLOAD_TX_BATCH=16 XDPLOAD_LOG=1 python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"batched %d" % i, (sys.argv[1], 9501))
time.sleep(4)
' "$IP_B" 2>"$tmp/batch.err"
sender=$BG_PID
wait "$counter"   # returns 1.5 s after the last datagram, well before the sender exits
check "5 datagrams below the batch arrived while the sender slept ($(cat "$tmp/count2"))" \
  [ "$(cat "$tmp/count2")" = 5 ]
kill -0 "$sender" 2>/dev/null
check "... and the sender had not exited yet" [ $? -eq 0 ]
wait "$sender"
out1=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/batch.err"
check "batched: the sender was accelerated (A's kernel UdpOutDatagrams +$((out1 - out0)))" \
  bash -c "[ $out1 -eq $out0 ] && grep -q '0 tcp and 1 udp sockets accelerated' $tmp/batch.err"
finish
