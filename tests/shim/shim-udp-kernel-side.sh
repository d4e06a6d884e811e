# What reaches an accelerated UDP socket through its kernel side.
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
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
recv="$TOP/tests/peers/udp_receiver.py"

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

finish
