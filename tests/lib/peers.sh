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
