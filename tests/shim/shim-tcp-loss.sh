# TCP over a lossy wire: 50 MB each way between nc under xdpload in A and nc
# on the kernel in B, while a tc program on B's veth (tests/progs/
# tc_loss.bpf.c; this kernel has no netem) drops 0.1 %, 1 % and 2 % of IPv4
# frames in both directions. At every rate the bytes arrive intact; the
# stack repairs its losses by fast recovery, with retransmission timeouts a
# small share of them (lwIP alone repaired every loss but the first of a
# window by a timeout); and as a receiver its SACK blocks let the kernel
# sender recover by SACK (B's TcpExtTCPSackRecovery moves).
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
head -c 50000000 /dev/urandom >"$tmp/in"
want=$(sha256sum <"$tmp/in" | cut -d' ' -f1)
tc_wire_b

for rate in 0_1 1 2; do
  for dir in ingress egress; do
    in_b tc filter replace dev "$IF_B" "$dir" pref 1 bpf da \
      obj "$BUILD/tests/tc_loss.bpf.o" sec "tc/loss_$rate"
  done
  label="${rate/_/.} % loss"

  # A sends.
  nc_a_to_b "$tmp/in" 7000 "$tmp/b-got" "$tmp/a-send.err"
  rc=$?
  grep "exit: tcp\|exit: rx" "$tmp/a-send.err"
  check "$label, A sends: nc exits 0" [ $rc -eq 0 ]
  check "$label, A sends: 50 MB intact" [ "$(sha256sum <"$tmp/b-got" | cut -d' ' -f1)" = "$want" ]
  check "$label, A sends: on the stack" [ "$(exit_tx_bytes "$tmp/a-send.err")" -gt 50000000 ]
  rec=$(exit_recoveries "$tmp/a-send.err")
  rto=$(exit_timeouts "$tmp/a-send.err")
  check "$label, A sends: losses repaired by fast recovery ($rec), timeouts few (${rto:-?})" \
    [ "${rec:-0}" -gt 0 -a "${rto:-999999}" -le $(( ${rec:-0} / 5 + 2 )) ]

  # B sends, A receives.
  sack_before=$(kernel_counter "$NS_B" TcpExtTCPSackRecovery)
  nc_b_to_a "$tmp/in" 7001 "$tmp/a-got" "$tmp/a-recv.err"
  sack_after=$(kernel_counter "$NS_B" TcpExtTCPSackRecovery)
  check "$label, A receives: 50 MB intact" [ "$(sha256sum <"$tmp/a-got" | cut -d' ' -f1)" = "$want" ]
  check "$label, A receives: on the stack" [ "$(exit_rx_bytes "$tmp/a-recv.err")" -gt 50000000 ]
  if [ "$rate" != 0_1 ]; then
    check "$label, A receives: the kernel sender recovered by SACK ($((sack_after - sack_before)) times)" \
      [ $((sack_after - sack_before)) -gt 0 ]
  fi
done
finish
