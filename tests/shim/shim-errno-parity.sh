# errno parity: the same program of socket calls (tests/progs/errno_parity.c:
# refused and timed-out connects, SO_ERROR, EAGAIN, EPIPE and SIGPIPE with
# and without MSG_NOSIGNAL, resets, full send buffers and partial writes,
# SO_RCVTIMEO/SO_SNDTIMEO, EINTR with and without SA_RESTART, bind in use,
# accept on a non-listener, shutdown, UDP ICMP errors and truncation, EMSGSIZE
# beyond the MTU with IP_PMTUDISC_DO, EFAULT for unmapped buffers, iovec
# arrays and msghdrs with nothing sent or lost, and for option values,
# ioctl arguments, poll arrays, select sets and epoll events; what a receive
# writes back (a read-only msghdr, recvfrom's address length, control
# messages into memory that cannot take them), the mmsg calls' msg_len and
# timeout, an error recvmmsg keeps for the next call, lengths past what one
# call moves, sendfile's offset...) is
# run on the kernel and under xdpload against the same kernel peers; every
# line of output must be the same.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
errno_parity_peers
# Every ICMP error B owes is sent (the kernel run and the xdpload run each
# provoke several within a second, beyond the default rate limit's burst).
ip netns exec "$NS_B" sysctl -qw net.ipv4.icmp_ratelimit=0

in_a "$BUILD/tests/errno_parity" "$IP_B" "$IP_A" >"$tmp/kernel" 2>"$tmp/kernel.err"
in_a env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" XDPLOAD_LOG=1 \
  "$BUILD/tests/errno_parity" "$IP_B" "$IP_A" >"$tmp/xdpload" 2>"$tmp/xdpload.err"
cat "$tmp/xdpload.err"
tail -24 "$tmp/kernel"
check "the kernel run completed all cases" grep -q "udp send beyond the MTU, IP_PMTUDISC_DONT" "$tmp/kernel"
# The bad-pointer cases mean something only as Linux answers them: EFAULT,
# the echo after them whole, the UDP datagram received into one dropped.
check "the kernel run gave EFAULT for a receive into an unmapped buffer" \
  grep -q "^recv into an unmapped buffer  *-1 EFAULT" "$tmp/kernel"
check "the kernel run kept the echo whole for the next receive" \
  grep -q "^recv after them: the echo whole  *5 'again'" "$tmp/kernel"
check "the kernel run dropped the datagram a receive faulted on" \
  grep -q "^udp recv after it: the datagram dropped  *-1 EAGAIN" "$tmp/kernel"
check "the kernel run cut recv's length, refused read's and write's past SSIZE_MAX, a long segment, a read of 0" \
  bash -c 'grep -q "^recv, a length of SIZE_MAX  *4 .huge." "$1" && [ $(grep -cE "^(recvmsg, a second segment|sendmsg, a second segment|read, a count longer|write, a count longer).*-1 EFAULT" "$1") -eq 4 ] && grep -q "^recvmsg, a segment longer than SSIZE_MAX  *-1 EINVAL" "$1" && grep -q "^read, a count of 0  *ok" "$1"' _ "$tmp/kernel"
check "the kernel run kept recvmmsg's error for SO_ERROR, the next receive, send and recvmmsg" \
  bash -c 'grep -q "^udp SO_ERROR after it  *EFAULT" "$1" && grep -q "^udp recv after it: the kept error  *-1 EFAULT" "$1" && grep -q "^udp send after it: the kept error  *-1 EFAULT" "$1" && grep -q "^udp recvmmsg after it: the kept error  *-1 EFAULT" "$1" && grep -q "^udp poll after it  *ERR" "$1"' _ "$tmp/kernel"
check "the kernel run gave EFAULT for addresses to unmapped memory, the datagram read" \
  bash -c 'grep -q "^getsockname to unmapped memory  *-1 EFAULT" "$1" && grep -q "^udp recvfrom, its address to unmapped memory  *-1 EFAULT" "$1" && grep -q "^udp recv after it: that datagram was read  *-1 EAGAIN" "$1"' _ "$tmp/kernel"
check "the kernel run gave EFAULT for options, ioctls, poll, select and epoll with unmapped memory" \
  bash -c '[ $(grep -cE "^(getsockopt|setsockopt|ioctl|udp ioctl|poll|select|epoll_ctl|epoll_wait).*unmapped.*-1 EFAULT" "$1") -eq 20 ]' _ "$tmp/kernel"
check "the kernel run gave EFAULT for what receives write back, mmsg lengths and timeouts, sendfile offsets" \
  bash -c '[ $(grep -cE "^(recvmsg into a read-only|recvfrom, its address length unmapped|recvfrom with an address, no length|udp recvmsg into a read-only|udp sendmmsg|udp recvmmsg, (its array|its timeout unmapped|msg_len)|udp sendfile).* -1 EFAULT" "$1") -eq 11 ]' _ "$tmp/kernel"
check "the kernel run ignored control messages it could not write, and wrote recvmmsg's time left back" \
  bash -c 'grep -q "^udp recvmsg, its control buffer unmapped  *10 controllen=0 flags=0$" "$1" && grep -q "^udp recvmmsg of two, 5 s timeout  *2 lengths 10 10, less left than 5 s: yes" "$1"' _ "$tmp/kernel"
check "the kernel run's epoll item stayed ready after the faulted epoll_wait, and one of two fit" \
  bash -c 'grep -q "^epoll_wait after it: still ready  *1" "$1" && grep -q "^epoll_wait, room for one of two ready  *1" "$1"' _ "$tmp/kernel"
check "the kernel run's own faults reached its handler and, by default, ended a child" \
  grep -q "^a child's own fault, default action  *signal 11" "$tmp/kernel"
check "the xdpload run was accelerated" grep -q "accelerating $IF_A" "$tmp/xdpload.err"
# Every socket the program makes on the test network is accelerated (14 TCP
# and 6 UDP: listeners, connections made and accepted), but the local
# client of its own listener, which Linux routes over loopback: a socket
# quietly handed to the kernel would make the two runs match trivially.
# (The UDP socket that corks with MSG_MORE stays accelerated: the corked
# datagram is sent by its kernel socket.)
check "every socket accelerated (14 tcp and 6 udp sockets accelerated, 1 left with the kernel)" \
  grep -q "14 tcp and 6 udp sockets accelerated, 1 left with the kernel" "$tmp/xdpload.err"
if diff -u "$tmp/kernel" "$tmp/xdpload"; then
  pass "identical results and errno on $(wc -l <"$tmp/kernel") cases"
else
  fail "results differ (diff above: - kernel, + xdpload)"
fi
finish
