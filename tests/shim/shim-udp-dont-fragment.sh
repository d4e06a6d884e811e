# DF on UDP datagrams as the socket asked (IP_MTU_DISCOVER), seen on the
# wire by a packet socket in B (tests/peers/df_watch.py), the same Python
# sender on the kernel and under xdpload: IP_PMTUDISC_DO and _PROBE set DF,
# DONT does not, on the fast path and through lwIP (a datagram with
# transmit stamps asked for takes lwIP's path); getsockopt(IP_MTU) on the
# connected socket answers as on the kernel. A wrong IP header checksum
# would not pass (the watcher checks it), nor a datagram held for ARP that
# lost its DF (B is unresolved when the run under xdpload starts). Under the default, WANT, Linux
# sets DF on what fits the path MTU; xdpload does not, deliberately (it has
# no path MTU discovery: a router with a smaller MTU would drop its
# datagrams for good instead of fragmenting them).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
bg_b python3 "$TOP/tests/peers/df_watch.py" "$IF_B" 9851 9859 >"$tmp/watch.out" 2>&1
wait_for 50 grep -q ready "$tmp/watch.out"

cat >"$tmp/sender.py" <<'PY'
import socket, sys, time
IP_MTU_DISCOVER, IP_MTU = 10, 14
DONT, WANT, DO, PROBE = 0, 1, 2, 3
SO_TIMESTAMPING, TX_SOFTWARE, SOFTWARE = 37, 1 << 1, 1 << 4
peer, base = sys.argv[1], int(sys.argv[2])
cases = [("DO", DO, False), ("PROBE", PROBE, False), ("WANT", WANT, False),
         ("DONT", DONT, False), ("DO, through lwIP (transmit stamps)", DO, True)]
for i, (name, mode, stamps) in enumerate(cases):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, mode)
    if stamps:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_SOFTWARE | SOFTWARE)
    s.connect((peer, base + i))
    s.send(b"x" * 100)
    print(f"{name}: port {base + i} IP_MTU {s.getsockopt(socket.IPPROTO_IP, IP_MTU)}", flush=True)
    time.sleep(0.05)
    s.close()
PY
in_a python3 "$tmp/sender.py" "$IP_B" 9851 >"$tmp/kernel" 2>&1
sleep 0.3
cp "$tmp/watch.out" "$tmp/watch.kernel"
seen=$(wc -l <"$tmp/watch.out")
# B unresolved again: the first datagram (DO) waits for ARP in lwIP and
# must keep its DF when it finally goes.
in_a ip neigh flush to "$IP_B"
bg_preload_a env XDPLOAD_LOG=1 python3 "$tmp/sender.py" "$IP_B" 9851 >"$tmp/xdpload" 2>"$tmp/xdpload.err"
wait "$BG_PID"
sleep 0.3
tail -n +$((seen + 1)) "$tmp/watch.out" >"$tmp/watch.xdpload"
for f in kernel watch.kernel xdpload xdpload.err watch.xdpload; do echo "--- $f"; cat "$tmp/$f"; done

df_of() { sed -n "s/^port $2 df \([01]\) checksum good$/\1/p" "$tmp/watch.$1" | head -1; }
check "under xdpload the datagrams were on the stack" \
  grep -q "0 tcp and 5 udp sockets accelerated, 0 left with the kernel" "$tmp/xdpload.err"
check "IP_MTU on the connected sockets as on the kernel" diff "$tmp/kernel" "$tmp/xdpload"
for run in kernel xdpload; do
  check "$run: DO sets DF" [ "$(df_of $run 9851)" = 1 ]
  check "$run: PROBE sets DF" [ "$(df_of $run 9852)" = 1 ]
  check "$run: DONT does not" [ "$(df_of $run 9854)" = 0 ]
  check "$run: DO sets DF on a datagram through lwIP" [ "$(df_of $run 9855)" = 1 ]
done
check "WANT: the kernel sets DF (the datagram fits the path MTU)" [ "$(df_of kernel 9853)" = 1 ]
check "WANT: xdpload does not (no path MTU discovery: deliberate)" [ "$(df_of xdpload 9853)" = 0 ]
finish
