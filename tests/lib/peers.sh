# tests/lib/peers.sh: kernel-socket peers for tests, where no packaged tool
# does exactly the job (socat's PIPE merges UDP datagrams).

# udp_echo_server PORT: echoes every datagram to its sender, boundaries kept.
udp_echo_server() {
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
' "$1"
}

# tcp_reset_server PORT: accepts connections, reads a line, resets (RST).
tcp_reset_server() {
  python3 -c '
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.recv(100)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
' "$1"
}
export -f udp_echo_server tcp_reset_server

# tcp_silent_server PORT: accepts and never reads (the sender's buffer fills).
tcp_silent_server() {
  python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$1"
}
export -f tcp_silent_server

# errno_parity_peers: the kernel peers tests/progs/errno_parity.c expects, in
# namespace B (call after netns_up).
errno_parity_peers() {
  bg_b socat TCP4-LISTEN:7001,reuseaddr,fork PIPE
  bg_b socat TCP4-LISTEN:7002,reuseaddr,fork EXEC:true
  bg_b bash -c "tcp_reset_server 7003"
  bg_b bash -c "tcp_silent_server 7004"
  bg_b socat TCP4-LISTEN:7005,reuseaddr,fork SYSTEM:'sleep 0.5; echo late'
  bg_b bash -c "udp_echo_server 7102"
  local p
  for p in 7001 7002 7003 7004 7005; do
    wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :$p' | grep -q $p"
  done
  wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7102' | grep -q 7102"
}
