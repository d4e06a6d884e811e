# An option the stack cannot honour (here a socket filter, SO_ATTACH_FILTER)
# set on an accelerated UDP socket hands it to the kernel, which holds the
# same port: datagrams keep arriving, now through A's kernel.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
cat >"$tmp/recv.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9400))
print("bound", flush=True)  # (on the stack once bind() returns: steered)
print(s.recv(100).decode().strip(), flush=True)       # before: on the stack
# cBPF "accept everything": ret #0xffffffff
prog = struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF)
buf = __import__("ctypes").create_string_buffer(prog)
fprog = struct.pack("HL", 1, __import__("ctypes").addressof(buf))
SO_ATTACH_FILTER = 26  # not among Python's constants
s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
print("filter attached", flush=True)
print(s.recv(100).decode().strip(), flush=True)       # after: kernel
PY
bg_preload_a env XDPLOAD_LOG=2 python3 "$tmp/recv.py" >"$tmp/out" 2>"$tmp/err"
rcv=$BG_PID
# (Not the kernel's socket in ss: that exists before the stack steers the
# port, and a datagram sent then went to the kernel, once in a full run.)
wait_for 50 grep -q "^bound$" "$tmp/out"
in_before=$(kernel_counter "$NS_A" UdpInDatagrams)
in_b bash -c "echo first | socat -u - UDP4-SENDTO:$IP_A:9400"
wait_for 30 grep -q "filter attached" "$tmp/out"
in_mid=$(kernel_counter "$NS_A" UdpInDatagrams)
in_b bash -c "echo second | socat -u - UDP4-SENDTO:$IP_A:9400"
wait "$rcv"
in_after=$(kernel_counter "$NS_A" UdpInDatagrams)
cat "$tmp/out" "$tmp/err"
check "before the option: received through the stack" \
  bash -c "grep -q '^first$' $tmp/out && [ $in_mid -eq $in_before ]"
check "the socket was handed to the kernel" grep -q "handed to the kernel" "$tmp/err"
check "after the option: received through A's kernel" \
  bash -c "grep -q '^second$' $tmp/out && [ $in_after -eq $((in_mid + 1)) ]"
finish
