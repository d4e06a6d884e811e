# What reaches an accelerated UDP socket through its kernel side, and
# multicast shared with another program's kernel socket.
#
# 1. Datagrams from a sender on the same host go through the kernel to the
#    socket's kernel twin, which the socket reads too. A program that
#    waits with poll() and then receives without blocking (CPython's
#    socket timeout) got none of 20 before: poll() looked at the kernel
#    side and found it readable, and the receive that followed within
#    kKernelLookNs skipped its own look there (the gate that keeps a
#    spinning receiver's empty calls cheap), said EAGAIN, and the program
#    polled again, for ever. Now poll() finding the kernel side readable
#    clears the gate. With epoll edge-triggered the receive that drains
#    after an event looks at the kernel side every time (the edge is not
#    repeated): one the program sends itself right after a receive found
#    none (within kKernelLookNs) was left unread before, the program
#    waiting for an edge that never came. Both read all 20.
# 2. Linux gives a multicast datagram to every socket bound to its port.
#    A program on the kernel path subscribed to the group and port an
#    accelerated program also reads got none of the feed before (the XDP
#    program steered the port's frames to the stack). Now, while another
#    program's socket holds the port, the port's group frames go to the
#    kernel, which gives each socket its copy (the accelerated program's
#    through its kernel twin), and the library says so once. (A port is
#    looked at once one of the family's sockets on it joined a group.) Both orders
#    of start; both get all 20. Once the other program has gone the group
#    frames are the stack's again: a second burst reaches the accelerated
#    receiver without A's kernel counting a UDP datagram.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
recv="$TOP/tests/peers/udp_receiver.py"
group=239.7.7.7

# send NS PORT DEST [multicast]: COUNT (20) datagrams, 10 ms apart.
send() {
  ip netns exec "$1" env COUNT="${COUNT:-20}" python3 -c "
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if len(sys.argv) > 3:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[3]))
for i in range(int(os.environ['COUNT'])):
    s.sendto(b'datagram %d' % i, (sys.argv[2], int(sys.argv[1])))
    time.sleep(0.01)" "$2" "$3" ${4:+"$4"}
}

# 1. A local sender.
for mode in timeout epoll-et; do
  PRELOAD_A XDPLOAD_LOG=1 python3 "$recv" "$mode" 7510 20 "$IP_A" >"$tmp/local-$mode.out" 2>"$tmp/local-$mode.err" &
  pid=$!
  wait_for 50 grep -q ready "$tmp/local-$mode.out"
  # (Edge-triggered: one datagram from the sender; each of the others the
  # receiver sends itself right after a receive found none, within
  # kKernelLookNs of it. 20 from the sender otherwise.)
  if [ "$mode" = epoll-et ]; then COUNT=1 send "$NS_A" 7510 "$IP_A"; else send "$NS_A" 7510 "$IP_A"; fi
  wait "$pid"
  cat "$tmp/local-$mode.out"
  check "local sender, $mode: the accelerated socket reads all 20" grep -qx "got 20" "$tmp/local-$mode.out"
  check "local sender, $mode: the socket was the stack's" grep -q "accelerating" "$tmp/local-$mode.err"
done

# 2. Multicast shared with a program on the kernel path.
for order in kernel-first accelerated-first; do
  start_kernel() {
    in_a python3 "$recv" timeout 7520 20 "$group" "$IP_A" >"$tmp/$order-kernel.out" 2>&1 &
    kpid=$!
    wait_for 50 grep -q ready "$tmp/$order-kernel.out"
  }
  start_accelerated() {
    PRELOAD_A XDPLOAD_LOG=2 python3 "$recv" timeout 7520 20 "$group" "$IP_A" \
      >"$tmp/$order-xdp.out" 2>"$tmp/$order-xdp.err" &
    xpid=$!
    wait_for 50 grep -q ready "$tmp/$order-xdp.out"
  }
  if [ "$order" = kernel-first ]; then start_kernel; start_accelerated; else start_accelerated; start_kernel; fi
  # (The accelerated program looks at the port's other sockets when it
  # joins, and about once a second: up to two seconds apart.)
  wait_for 50 grep -q "another socket, not on the stack, holds the port too" "$tmp/$order-xdp.err"
  send "$NS_B" 7520 "$group" "$IP_B"
  wait "$kpid" "$xpid"
  echo "== $order: kernel $(cat "$tmp/$order-kernel.out" | tail -1), accelerated $(tail -1 "$tmp/$order-xdp.out")"
  grep "port 7520" "$tmp/$order-xdp.err"
  check "multicast, $order: the program on the kernel path gets all 20" grep -qx "got 20" "$tmp/$order-kernel.out"
  check "multicast, $order: the accelerated program gets all 20" grep -qx "got 20" "$tmp/$order-xdp.out"
  check "multicast, $order: said once" \
    [ "$(grep -c "another socket, not on the stack, holds the port too" "$tmp/$order-xdp.err")" -eq 1 ]
done

# The other program gone: the port's group frames are the stack's again.
cat >"$tmp/two.py" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7530))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])))
s.settimeout(5)
print("ready", flush=True)
for burst in (1, 2):
    got = 0
    try:
        while got < 20:
            s.recv(100)
            got += 1
    except socket.timeout:
        pass
    print("burst", burst, "got", got, flush=True)
PY
PRELOAD_A XDPLOAD_LOG=2 python3 "$tmp/two.py" "$group" "$IP_A" >"$tmp/back.out" 2>"$tmp/back.err" &
xpid=$!
wait_for 50 grep -q ready "$tmp/back.out"
in_a python3 "$recv" timeout 7530 20 "$group" "$IP_A" >"$tmp/back-kernel.out" 2>&1 &
kpid=$!
wait_for 50 grep -q ready "$tmp/back-kernel.out"
wait_for 50 grep -q "another socket, not on the stack, holds the port too" "$tmp/back.err"
send "$NS_B" 7530 "$group" "$IP_B"
wait "$kpid"
wait_for 50 grep -q "no other socket on it now" "$tmp/back.err"
udp0=$(kernel_counter "$NS_A" UdpInDatagrams)
send "$NS_B" 7530 "$group" "$IP_B"
wait "$xpid"
udp1=$(kernel_counter "$NS_A" UdpInDatagrams)
cat "$tmp/back.out"
grep "port 7530" "$tmp/back.err"
check "shared: both got the first burst" \
  bash -c "grep -qx 'got 20' $tmp/back-kernel.out && grep -qx 'burst 1 got 20' $tmp/back.out"
check "the other program gone: the port is the stack's again (said at XDPLOAD_LOG=2)" \
  grep -q "no other socket on it now" "$tmp/back.err"
check "... the second burst reaches the accelerated program" grep -qx "burst 2 got 20" "$tmp/back.out"
check "... through the stack: A's kernel counted no UDP datagram (+$((udp1 - udp0)))" [ "$udp1" -eq "$udp0" ]
finish
