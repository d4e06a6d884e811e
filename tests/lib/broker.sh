# tests/lib/broker.sh: the broker (`xdpload daemon`) in namespace A, for the
# tests that run programs through it. Source after common.sh; needs $tmp.
_broker_n=0
#
#   broker_up [ARGS...]     starts it for IF_A (stderr in $tmp/broker.err),
#                           waits for its status file; sets BROKER_PID and
#                           BROKER_STATUS (in $tmp, or where xdpload-stat
#                           reads it when BROKER_DEFAULT_STATUS=1)
#   programs_listed         how many programs its status lists
#   wait_programs N [TENTHS] waits (5 s, or TENTHS of a second, at most) until
#                           it lists N (it rewrites its status 5 times a second)
#   listening PORT          A has a TCP or UDP socket on PORT
#   udp_echo_from_b PORT SENDERS COUNT OUT
#                           B's checking UDP echo clients against A's PORT;
#                           sets ECHO_RC and UDP_DELTA (A's kernel
#                           UdpInDatagrams over the run: 0 when accelerated)

broker_up() {
  # Its status file in $tmp (the test's trap removes it, whatever happens
  # to the broker), unless the test reads it where xdpload-stat does:
  # BROKER_DEFAULT_STATUS=1 (then the test removes it too).
  local args=("$@")
  if [ -z "${BROKER_DEFAULT_STATUS:-}" ] && [[ " $* " != *" --status "* ]]; then
    args+=(--status "$tmp/broker-status.$((++_broker_n))")
  fi
  bg_a "$TOP/tools/xdpload" daemon --iface "$IF_A" "${args[@]}" 2>>"$tmp/broker.err"
  BROKER_PID=$BG_PID
  BROKER_STATUS=/run/xdpload/broker-$BROKER_PID.status
  local prev="" a
  for a in "${args[@]}"; do
    [ "$prev" = --status ] && BROKER_STATUS=$a
    prev=$a
  done
  wait_for 50 test -f "$BROKER_STATUS"
}

programs_listed() {
  local n
  n=$(grep -c '^program ' "$BROKER_STATUS" 2>/dev/null)
  echo "${n:-0}"
}

wait_programs() {
  local i
  for i in $(seq "${2:-50}"); do
    [ "$(programs_listed)" -eq "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

listening() { ip netns exec "$NS_A" ss -lntuH | grep -q ":$1 "; }

udp_echo_from_b() {
  local before
  before=$(kernel_counter "$NS_A" UdpInDatagrams)
  in_b python3 "$TOP/tests/peers/many_flows.py" udp-echo-clients "$IP_A" "$1" "$2" "$3" >"$4" 2>&1
  ECHO_RC=$?
  UDP_DELTA=$(( $(kernel_counter "$NS_A" UdpInDatagrams) - before ))
  head -n1 "$4"
}
