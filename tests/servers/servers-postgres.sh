# PostgreSQL 15 from Debian under xdpload in A: the postmaster listens and
# forks a backend per connection (and its background workers), every one of
# them a process of one family sharing the postmaster's stack. pgbench from
# B: `pgbench -i`, then 8 clients for 20 s: no failed transaction, and A's
# kernel sees none of the TCP traffic.
# PostgreSQL refuses to run as root; it runs as its own user with the
# capabilities AF_XDP needs (a raw socket, the XDP program and its maps,
# pinned UMEM pages) given as ambient capabilities by setpriv, so that they
# survive its exec and its forks. Its dynamic shared memory goes in its data
# directory (mmap), not /dev/shm, so that nothing outlives the test.
. "$(dirname "$0")/../lib/common.sh"
need_root
command -v pgbench >/dev/null || skip "pgbench is not installed (make deps)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/postgres" ] || skip "PostgreSQL is not installed (make deps)"
netns_up
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; netns_down' EXIT
chmod 755 "$tmp"
mkdir "$tmp/data" "$tmp/run"
chown postgres: "$tmp/data" "$tmp/run"
as_postgres() { setpriv --reuid postgres --regid postgres --init-groups "$@"; }
as_postgres "$pgbin/initdb" -D "$tmp/data" -A trust -U postgres >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log"; fail "initdb"; finish; }
echo "host all all 0.0.0.0/0 trust" >>"$tmp/data/pg_hba.conf"

# The capabilities this machine's bounding set allows (a container may lack
# perfmon): net_admin, net_raw, bpf and ipc_lock are needed.
caps=+net_admin,+net_raw,+bpf,+perfmon,+ipc_lock
setpriv --reuid postgres --inh-caps "$caps" --ambient-caps "$caps" true 2>/dev/null ||
  caps=+net_admin,+net_raw,+bpf,+ipc_lock
setpriv --reuid postgres --inh-caps "$caps" --ambient-caps "$caps" true 2>/dev/null ||
  skip "cannot give the postgres user $caps as ambient capabilities here"
ip netns exec "$NS_A" setpriv --reuid postgres --regid postgres --init-groups --inh-caps "$caps" --ambient-caps "$caps" \
  env LD_PRELOAD="$PRELOAD_LIB" XDPLOAD_IFACE="$IF_A" "$pgbin/postgres" -D "$tmp/data" -k "$tmp/run" -h "$IP_A" -p 5433 \
  -c max_connections=40 -c shared_buffers=32MB -c fsync=off -c synchronous_commit=off \
  -c dynamic_shared_memory_type=mmap \
  >"$tmp/postgres.log" 2>&1 &
server=$!
wait_for 100 in_b pg_isready -h "$IP_A" -p 5433 -U postgres
segs=$(kernel_counter "$NS_A" TcpInSegs)
in_b timeout 120 pgbench -h "$IP_A" -p 5433 -U postgres -i -s 2 postgres >"$tmp/init.out" 2>&1
rc_init=$?
in_b timeout 120 pgbench -h "$IP_A" -p 5433 -U postgres -c 8 -j 2 -T 20 postgres >"$tmp/run.out" 2>&1
rc_run=$?
segs_after=$(kernel_counter "$NS_A" TcpInSegs)
tail -3 "$tmp/init.out"
grep -E "transactions|failed|tps|latency" "$tmp/run.out"
kill -INT "$server"  # fast shutdown
for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
stopped=1
kill -0 "$server" 2>/dev/null && stopped=0 && kill -9 "$server"
wait "$server" 2>/dev/null
grep -E "xdpload|FATAL|PANIC|terminated by signal|ERROR|LOG:  (database system is ready|received)" "$tmp/postgres.log" | tail -20
check "pgbench -i succeeded" [ $rc_init -eq 0 ]
check "pgbench -c 8 -T 20 succeeded" [ $rc_run -eq 0 ]
check "transactions were processed, none failed" \
  bash -c "grep -qE 'number of transactions actually processed: [1-9]' $tmp/run.out && grep -qE 'number of failed transactions: 0 ' $tmp/run.out"
check "accelerated: A's kernel saw no TCP segment (+$((segs_after - segs)))" [ "$segs_after" -eq "$segs" ]
check "fast shutdown within 10 s" [ $stopped -eq 1 ]
check "no backend crashed" bash -c "! grep -qE 'PANIC|terminated by signal' $tmp/postgres.log"
check "the preload started its stack (no fallback line)" \
  bash -c "! grep -q 'acceleration off' $tmp/postgres.log"
finish
