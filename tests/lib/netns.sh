# tests/lib/netns.sh: two network namespaces joined by a veth pair.
#
# Source it, then call `netns_up`. It defines:
#   NS_A, NS_B     namespace names (unique per run: xload-<pid>-<n>-a/b)
#   IF_A, IF_B     interface names inside them (fixed: xa0, xb0)
#   IP_A, IP_B     10.211.0.1 and 10.211.0.2 (/24)
#   MAC_A, MAC_B   the interfaces' MAC addresses
#   in_a CMD...    run CMD in namespace A (likewise in_b)
# and installs a trap that kills every process left in the namespaces and
# deletes them (and so the veth pair) on exit, error, Ctrl-C or TERM.
# Traffic stays between these two namespaces: nothing is routed elsewhere.
#
# The pair has NETNS_QUEUES (default 4) receive and transmit queues each way:
# the kernel then spreads flows over the receive queues by hash, as RSS does
# on a real NIC, so every test runs on a multi-queue interface. A test that
# needs one queue sets NETNS_QUEUES=1 before netns_up.
#
# Leftovers of a run that was killed before its trap could run (SIGKILL)
# are removed by the next netns_up: their owner pid is in their name.

IP_A=10.211.0.1
IP_B=10.211.0.2
IF_A=xa0
IF_B=xb0
_NETNS_LIST=()

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

netns_reap_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^xload-'); do
    pid=${ns#xload-}
    pid=${pid%%-*}
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      netns_kill_all "$ns"
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# Kills every process in namespace $1. (Their statistics segments go with
# them: the kernel removes each with its last process.)
netns_kill_all() {
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null) || return 0
  [ -n "$pids" ] || return 0
  kill -9 $pids 2>/dev/null
  return 0
}

netns_down() {
  local ns
  for ns in "${_NETNS_LIST[@]}"; do
    netns_kill_all "$ns"
  done
  # Give killed processes a moment to release their sockets and XDP links.
  sleep 0.1
  for ns in "${_NETNS_LIST[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  _NETNS_LIST=()
}

_netns_trap() {
  local rc=$?
  netns_down
  exit $rc
}

# netns_up [extra ip-link options for each end of the veth]
netns_up() {
  local q=${NETNS_QUEUES:-4}
  netns_reap_stale
  local n=0
  while ip netns list | grep -q "^xload-$$-$n-"; do n=$((n + 1)); done
  NS_A=xload-$$-$n-a
  NS_B=xload-$$-$n-b
  # Temporary names in the root namespace must be unique too (15 chars max).
  local tmp
  tmp=$(printf 'xv%x%x' $$ "$n" | cut -c1-12)

  trap _netns_trap EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  ip netns add "$NS_A" && _NETNS_LIST+=("$NS_A")
  ip netns add "$NS_B" && _NETNS_LIST+=("$NS_B")
  ip link add "${tmp}a" numtxqueues "$q" numrxqueues "$q" "$@" type veth \
    peer name "${tmp}b" numtxqueues "$q" numrxqueues "$q" "$@"
  ip link set "${tmp}a" netns "$NS_A"
  ip link set "${tmp}b" netns "$NS_B"
  in_a ip link set "${tmp}a" name "$IF_A"
  in_b ip link set "${tmp}b" name "$IF_B"
  in_a ip addr add "$IP_A/24" dev "$IF_A"
  in_b ip addr add "$IP_B/24" dev "$IF_B"
  in_a ip link set lo up
  in_b ip link set lo up
  in_a ip link set "$IF_A" up
  in_b ip link set "$IF_B" up
  MAC_A=$(in_a cat "/sys/class/net/$IF_A/address")
  MAC_B=$(in_b cat "/sys/class/net/$IF_B/address")
  # Wait for the link to be usable (carrier on both ends).
  local i
  for i in $(seq 50); do
    in_a ping -c1 -W1 -q "$IP_B" >/dev/null 2>&1 && break
    sleep 0.1
  done
}

# Runs "$@" in the background in namespace A/B; sets BG_PID.
bg_a() { ip netns exec "$NS_A" "$@" & BG_PID=$!; }
bg_b() { ip netns exec "$NS_B" "$@" & BG_PID=$!; }

# wait_for COUNT_TENTHS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
  local tries=$1
  shift
  local i
  for i in $(seq "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
