# What goes on the stack is decided from the kernel's routes: a destination
# reached through the configured interface is accelerated; one reached
# through another interface, and DNS (port 53), stay on the kernel.
# XDPLOAD_DNS_KERNEL=0 puts DNS on the stack too.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
# Another interface in A (a veth pair of its own: this kernel has no dummy).
in_a ip link add xo0 type veth peer name xo1
in_a ip addr add 10.212.0.1/24 dev xo0
in_a ip link set xo0 up
in_a ip link set xo1 up
bg_b socat -u UDP4-RECV:53,reuseaddr OPEN:"$tmp/dns-got",creat,append
bg_b socat -u UDP4-RECV:9999,reuseaddr OPEN:"$tmp/udp-got",creat,append
wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :9999' | grep -q 9999"
send_udp() {  # DEST PORT MESSAGE [env...]
  local dest=$1 port=$2 msg=$3
  shift 3
  PRELOAD_A env XDPLOAD_LOG=2 "$@" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(sys.argv[3].encode() + b"\n", (sys.argv[1], int(sys.argv[2])))' "$dest" "$port" "$msg"
}
out_before=$(kernel_counter "$NS_A" UdpOutDatagrams)
send_udp "$IP_B" 9999 to-b 2>"$tmp/b.err"
out_mid=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/b.err"
wait_for 30 grep -q to-b "$tmp/udp-got"
check "B's address: accelerated (the datagram arrived, A's kernel sent nothing)" \
  bash -c "grep -q to-b $tmp/udp-got && [ $out_mid -eq $out_before ] && grep -q '1 udp sockets accelerated' $tmp/b.err"

send_udp "$IP_B" 53 dns-query 2>"$tmp/dns.err"
out_after=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/dns.err"
wait_for 30 grep -q dns-query "$tmp/dns-got"
check "DNS: on the kernel path (A's kernel sent it)" \
  bash -c "grep -q dns-query $tmp/dns-got && [ $out_after -eq $((out_mid + 1)) ]"
check "DNS: nothing was accelerated" bash -c "! grep -q 'accelerating' $tmp/dns.err"

send_udp "$IP_B" 53 dns-on-stack XDPLOAD_DNS_KERNEL=0 2>"$tmp/dns2.err"
out_last=$(kernel_counter "$NS_A" UdpOutDatagrams)
wait_for 30 grep -q dns-on-stack "$tmp/dns-got"
check "XDPLOAD_DNS_KERNEL=0: DNS on the stack" \
  bash -c "grep -q dns-on-stack $tmp/dns-got && [ $out_last -eq $out_after ]"

send_udp 10.212.0.9 9999 other-if 2>"$tmp/other.err"
out_other=$(kernel_counter "$NS_A" UdpOutDatagrams)
cat "$tmp/other.err"
check "another interface: on the kernel path" bash -c "[ $out_other -eq $((out_last + 1)) ]"
check "another interface: the decision was logged" grep -q "10.212.0.9:9999 stays on the kernel path" "$tmp/other.err"
finish
