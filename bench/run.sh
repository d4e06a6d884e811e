#!/usr/bin/env bash
# make bench: the kernel's sockets, xdpload and a raw AF_XDP floor, side by
# side, on a fresh pair of network namespaces joined by a veth pair. Every
# figure is run BENCH_REPEATS times (3) and reported as median and spread
# (min-max), with ratios. Results: bench/results/<date>.md (machine, kernel,
# commands, tables), a latency CDF (.png) and the raw numbers (.tsv).
#
#   bench/run.sh [BUILD] [SECTIONS]     SECTIONS: comma list of latency,
#                                       floor, stamps, throughput, queues, broker, tuned, servers,
#                                       sendfile, zerocopy, forked,
#                                       idle, loss, clock, events, startup, profile
#                                       (default: all)
#
# The veth pair has 4 queues each way (the test network's default, as a
# multi-queue NIC); the queues section compares xdpload on a 1-queue pair.
# BENCH_SECONDS (3) is the length of each timed run. Never part of make test.
set -u
build=${1:-build}
all_sections=latency,floor,stamps,throughput,queues,broker,tuned,servers,sendfile,zerocopy,forked,idle,loss,clock,events,startup,profile
sections=${2:-${BENCH_SECTIONS:-$all_sections}}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export XL_TEST_BUILD="$top/$build"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. tests/lib/netns.sh
. tests/lib/nginx.sh
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespaces, XDP)"; exit 1; }
secs=${BENCH_SECONDS:-3}
repeats=${BENCH_REPEATS:-3}
B="$top/$build"
X="$top/tools/xdpload"
stamp=$(date -u +%Y-%m-%d-%H%M)
results="$top/bench/results"
mkdir -p "$results"
tmp=$(mktemp -d)
raw="$tmp/raw.tsv"   # section, case, metric, repeat, value
: >"$raw"
netns_up
trap 'rm -rf "$tmp"; netns_down' EXIT
started=$(date +%s)

want() { [[ ",$sections," == *",$1,"* ]]; }
note() { printf '%s\n' "$*" >&2; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$raw"; }
commands="$tmp/commands"
: >"$commands"
# cmdline TEXT: the command lines the report lists, once each.
cmdline() { grep -qxF -- "$*" "$commands" || echo "$*" >>"$commands"; }
# stop PID: ends a background server and waits for it.
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
tune_flags=()  # the host settings of the xdpload ends (the tuned section sets them)

# ---- 1. ping-pong latency, sockperf, 64-byte messages, round trip ----
# Pairings: kernel (both ends on the kernel), client (the client under
# xdpload, the server on the kernel), xdpload (both under xdpload).
# spinning: sockperf --nonblocked on both ends, xdpload with the latency
# profile; blocking: sockperf's blocking calls, xdpload's default profile.
sockperf_case() {  # proto pairing mode repeat
  local proto=$1 pairing=$2 mode=$3 r=$4 flags="" port=11111 sw=() cw=() profile=balanced
  [ "$proto" = tcp ] && flags="--tcp" && port=11112
  [ "$mode" = spinning ] && flags="$flags --nonblocked" && profile=latency
  # Server on CPU 0, client on CPU 1, in every case: unpinned, the two
  # spinning ends sometimes share a CPU for a while and the figures turn
  # bimodal (the floor itself: 3.1 or 4.9 us).
  sw=(taskset -c 0)
  cw=(taskset -c 1)
  [ "$pairing" = xdpload ] && sw=("$X" --cpu 0 --iface "$IF_A" --profile "$profile" "${tune_flags[@]}" --)
  [ "$pairing" != kernel ] && cw=("$X" --cpu 1 --iface "$IF_B" --profile "$profile" "${tune_flags[@]}" --)
  bg_a "${sw[@]}" sockperf sr -i "$IP_A" -p $port $flags >"$tmp/sr.out" 2>&1
  local server=$BG_PID
  local ss_flag=-lun
  [ "$proto" = tcp ] && ss_flag=-ltn
  wait_for 50 bash -c "ip netns exec $NS_A ss ${ss_flag}H 'sport = :$port' | grep -q $port"
  local log="$tmp/lat-$proto-$pairing-$mode-$r"
  in_b timeout $((secs + 30)) "${cw[@]}" sockperf pp -i "$IP_A" -p $port -m 64 -t "$secs" --full-rtt \
    $flags --full-log "$log.csv" >"$log.out" 2>&1
  stop "$server"
  cmdline "server: ${sw[*]} sockperf sr -i $IP_A -p $port $flags"
  cmdline "client: ${cw[*]} sockperf pp -i $IP_A -p $port -m 64 -t $secs --full-rtt $flags"
  local p50 p99 p999 max
  read -r p50 p99 p999 max < <(awk '/percentile 50.000/ {a=$NF} /percentile 99.000 / {b=$NF}
    /percentile 99.900/ {c=$NF} /<MAX> observation/ {d=$NF} END {print a, b, c, d}' "$log.out")
  if [ -z "$p50" ]; then
    note "  $proto $pairing $mode: sockperf failed: $(tail -2 "$log.out" | tr '\n' ' ')"
    return
  fi
  # In the queues section: "udp spinning 4q", under "queues".
  local c="$proto $mode $pairing" sec=latency
  [ -n "${queues_label:-}" ] && c="$proto $mode $queues_label" && sec=queues
  [ -n "${broker_label:-}" ] && c="$proto $mode $broker_label" && sec=broker
  [ -n "${tuned_label:-}" ] && c="$proto $mode $tuned_label" && sec=tuned
  record $sec "$c" p50 "$r" "$p50"
  record $sec "$c" p99 "$r" "$p99"
  record $sec "$c" p99.9 "$r" "$p999"
  record $sec "$c" max "$r" "$max"
  note "  $c: p50 $p50 p99 $p99 p99.9 $p999 max $max us"
  # Keep the first UDP spinning samples for the CDF.
  if [ "$proto" = udp ] && [ "$mode" = spinning ] && [ "$r" = 1 ]; then
    # --full-log: "packet, txTime(sec), rxTime(sec), rtt(usec)" rows.
    awk -F, '$1 ~ /^[0-9]+$/ {printf "%.0f\n", $4 * 1000}' "$log.csv" >"$tmp/cdf-$pairing.ns" 2>/dev/null
  fi
  rm -f "$log.csv"
}
# ---- 2. the floor: raw AF_XDP UDP ping-pong (rings/ only) ----
floor_case() {  # repeat
  local r=$1 samples=() p50 p99 p999 max
  bg_a taskset -c 0 "$B/bench/xsk_pingpong" echo --iface "$IF_A" --port 9000 --seconds 0 >"$tmp/echo.out" 2>&1
  local echo_pid=$BG_PID
  sleep 0.3
  [ "$r" = 1 ] && samples=(--samples "$tmp/cdf-floor.ns")
  in_b taskset -c 1 "$B/bench/xsk_pingpong" ping --iface "$IF_B" --local-ip "$IP_B" --peer-ip "$IP_A" \
    --peer-mac "$MAC_A" --port 9000 --size 64 --seconds "$secs" "${samples[@]}" >"$tmp/floor.out" 2>&1
  stop "$echo_pid"
  cmdline "floor: taskset -c 0 xsk_pingpong echo --iface $IF_A --port 9000 / taskset -c 1 xsk_pingpong ping --iface $IF_B --size 64 --seconds $secs"
  read -r p50 p99 p999 max < <(awk '/percentile 50.000/ {a=$NF} /percentile 99.000 / {b=$NF}
    /percentile 99.900/ {c=$NF} /<MAX> observation/ {d=$NF} END {print a, b, c, d}' "$tmp/floor.out")
  if [ -z "$p50" ]; then note "  floor failed: $(cat "$tmp/floor.out")"; return; fi
  for m in p50:$p50 p99:$p99 p99.9:$p999 max:$max; do record latency "udp spinning floor" "${m%%:*}" "$r" "${m#*:}"; done
  note "  udp spinning floor: p50 $p50 p99 $p99 p99.9 $p999 max $max us"
}

# The leanest socket-API ping-pong (bench/udp_pingpong: a non-blocking
# recvfrom spin and a sendto), on the kernel and under xdpload: beside
# sockperf's figures it shows sockperf's own share of the round trip.
lean_case() {  # pairing repeat [plain|stamped|hw-stamped: the stamps section's kinds]
  local pairing=$1 r=$2 kind=${3:-} sw=(taskset -c 0) cw=(taskset -c 1) p50 p99 p999 max
  local section=latency label="udp spinning lean $pairing" hw=()
  [ -n "$kind" ] && section=stamps label="lean $pairing $kind"
  [ "$kind" = stamped ] && export UDP_PINGPONG_STAMPS=1
  # hw-stamped: the hardware flags too, and xdpload's stamping XDP program
  # (veth gives no stamp: what this measures is what taking them costs).
  [ "$kind" = hw-stamped ] && export UDP_PINGPONG_STAMPS=hw && hw=(env XDPLOAD_HW_STAMPS=1)
  if [ "$pairing" = xdpload ]; then
    sw=("${hw[@]}" "$X" --cpu 0 --iface "$IF_A" --profile latency --)
    cw=("${hw[@]}" "$X" --cpu 1 --iface "$IF_B" --profile latency --)
  fi
  bg_a "${sw[@]}" "$B/bench/udp_pingpong" echo 11113 >/dev/null 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -lunH 'sport = :11113' | grep -q 11113"
  in_b timeout $((secs + 30)) "${cw[@]}" "$B/bench/udp_pingpong" ping "$IP_A" 11113 "$secs" \
    >"$tmp/lean.out" 2>&1
  stop "$server"
  cmdline "lean: ${sw[*]} udp_pingpong echo 11113 / ${cw[*]} udp_pingpong ping $IP_A 11113 $secs"
  read -r p50 p99 p999 max < <(awk '/percentile 50.000/ {a=$NF} /percentile 99.000 / {b=$NF}
    /percentile 99.900/ {c=$NF} /<MAX> observation/ {d=$NF} END {print a, b, c, d}' "$tmp/lean.out")
  unset UDP_PINGPONG_STAMPS
  if [ -z "$p50" ]; then note "  lean $pairing failed: $(cat "$tmp/lean.out")"; return; fi
  for m in p50:$p50 p99:$p99 p99.9:$p999 max:$max; do
    record "$section" "$label" "${m%%:*}" "$r" "${m#*:}"
  done
  note "  $label: p50 $p50 p99 $p99 p99.9 $p999 max $max us $(grep -o 'replies with.*' "$tmp/lean.out")"
}

# Repeats go round the cases (every case once, then again), so that a slow
# spell of the machine (a VM's neighbours) lands on all of them alike rather
# than on one case's three runs.
if want latency || want floor; then
  note "latency: sockperf ping-pong and the raw AF_XDP floor, ${secs}s per run, $repeats rounds"
  for r in $(seq "$repeats"); do
    if want latency; then
      for proto in udp tcp; do
        for mode in spinning blocking; do
          for pairing in kernel client xdpload; do sockperf_case $proto $pairing $mode "$r"; done
        done
      done
    fi
    if want latency; then for pairing in kernel xdpload; do lean_case $pairing "$r"; done; fi
    if want floor; then floor_case "$r"; fi
  done
fi

# ---- 2a. the broker: the same server alone on A's interface (root, its own
# XDP program) and as one of the programs of `xdpload daemon`, same run ----
if want broker; then
  note "broker: sockperf UDP ping-pong, the server alone and through the broker, x $repeats"
  for r in $(seq "$repeats"); do
    for how in alone broker; do
      brk=""
      if [ "$how" = broker ]; then
        rm -f "$tmp/broker.status"
        bg_a "$X" daemon --iface "$IF_A" --status "$tmp/broker.status" 2>"$tmp/broker.err"
        brk=$BG_PID
        wait_for 50 test -f "$tmp/broker.status"
        cmdline "broker: xdpload daemon --iface $IF_A (the server below then runs through it)"
      fi
      broker_label=$how
      for mode in spinning blocking; do sockperf_case udp xdpload $mode "$r"; done
      unset broker_label
      [ -n "$brk" ] && stop "$brk"
    done
  done
fi

# ---- 2a. the host settings: both ends under xdpload as they are, and with
# --rt 10 --mlock (SCHED_FIFO, memory locked), interleaved in one run ----
if want tuned; then
  note "tuned: sockperf UDP ping-pong under xdpload, plain and with --rt 10 --mlock, x $repeats"
  for r in $(seq "$repeats"); do
    for how in plain rt-mlock; do
      tune_flags=()
      [ "$how" = rt-mlock ] && tune_flags=(--rt 10 --mlock)
      tuned_label=$how
      for mode in spinning blocking; do sockperf_case udp xdpload $mode "$r"; done
      unset tuned_label
    done
  done
  tune_flags=()
fi

# ---- 2b. receive timestamps: the lean ping-pong with SO_TIMESTAMPING rx
# software stamps on both ends against the same without, same run ----
if want stamps; then
  note "stamps: the lean UDP ping-pong with and without receive timestamps, x $repeats"
  for r in $(seq "$repeats"); do
    for pairing in kernel xdpload; do
      lean_case $pairing "$r" stamped
      lean_case $pairing "$r" plain
    done
    lean_case xdpload "$r" hw-stamped
  done
  # How far xdpload's receive stamp lies from the kernel's: B sends pairs of
  # datagrams back to back, one to a socket on the stack and one to a
  # socket a rule leaves with the kernel, in the same receiving process
  # (bench/stamp_offset.cc: the order alternates, which cancels the gap
  # between the two frames).
  note "stamps: xdpload's receive stamp against the kernel's for frames arriving together, x $repeats"
  printf 'kernel udp_receiver *:11121\n' >"$tmp/offset.rules"
  for r in $(seq "$repeats"); do
    bg_a "$X" --cpu 0 --iface "$IF_A" --profile latency --rules "$tmp/offset.rules" -- \
      "$B/bench/stamp_offset" recv 11120 11121 2000 >"$tmp/offset.out" 2>&1
    receiver=$BG_PID
    wait_for 50 grep -q ready "$tmp/offset.out"
    in_b "$B/bench/stamp_offset" send "$IP_A" 11120 11121 2000
    wait "$receiver" 2>/dev/null
    cmdline "stamp offset: xdpload --rules (kernel udp_receiver *:11121) stamp_offset recv 11120 11121 2000 / stamp_offset send $IP_A 11120 11121 2000"
    read -r off gap < <(awk '/^offset/ {print $2, $5}' "$tmp/offset.out")
    if [ -z "$off" ]; then note "  stamp offset failed: $(cat "$tmp/offset.out")"; continue; fi
    record stamps "offset from the kernel's stamp" us "$r" "$off"
    record stamps "gap between the two frames" us "$r" "$gap"
    note "  stamp offset: $(grep -E '^(pairs|median|offset)' "$tmp/offset.out" | tr '\n' ' ')"
  done
fi

# ---- 3. throughput: iperf3 TCP, UDP bulk, 64-byte UDP message rate ----
iperf_case() {  # kind pairing repeat
  local kind=$1 pairing=$2 r=$3 sw=() cw=() args=()
  if [ "$pairing" = xdpload ]; then
    sw=("$X" --iface "$IF_A" --profile throughput --)
    cw=("$X" --iface "$IF_B" --profile throughput --)
  fi
  case $kind in
    tcp) args=() ;;
    udp) args=(-u -b 0 -l 1400) ;;
    udp64) args=(-u -b 0 -l 64) ;;
  esac
  bg_a "${sw[@]}" iperf3 -s -1 -B "$IP_A" -p 5201 >"$tmp/iperf-s.out" 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :5201' | grep -q 5201"
  in_b timeout $((secs + 30)) "${cw[@]}" iperf3 -c "$IP_A" -p 5201 -t "$secs" "${args[@]}" -J \
    >"$tmp/iperf.json" 2>"$tmp/iperf.err"
  stop "$server"
  cmdline "iperf3 $kind: server ${sw[*]} iperf3 -s -1 -B $IP_A; client ${cw[*]} iperf3 -c $IP_A -t $secs ${args[*]} -J"
  local sec=throughput label=$pairing
  [ -n "${queues_label:-}" ] && sec=queues label=$queues_label
  python3 - "$tmp/iperf.json" "$kind" "$label" "$r" "$sec" >>"$raw" 2>"$tmp/iperf.py.err" <<'PY'
import json, sys
path, kind, pairing, r, section = sys.argv[1:]
d = json.load(open(path))
end = d["end"]
if kind == "tcp":
    rows = [("Gbit/s", end["sum_received"]["bits_per_second"] / 1e9),
            ("retransmits", end["sum_sent"].get("retransmits", 0))]
else:
    s = end["sum"]
    got = s["packets"] - s["lost_packets"]
    rows = [("Gbit/s received", s["bits_per_second"] * got / max(s["packets"], 1) / 1e9),
            ("Mmsg/s received", got / s["seconds"] / 1e6),
            ("loss %", s["lost_percent"])]
for m, v in rows:
    print(f"{section}\t{kind} {pairing}\t{m}\t{r}\t{v:.4f}")
PY
  [ -s "$tmp/iperf.py.err" ] && note "  iperf3 $kind $label failed: $(head -c 300 "$tmp/iperf.err" "$tmp/iperf.py.err")"
  note "  $kind $label: $(grep -P "^$sec\t$kind $label\t" "$raw" | tail -3 | cut -f3,5 | tr '\t\n' '= ')"
}
if want throughput; then
  note "throughput: iperf3, ${secs}s x $repeats per case"
  for kind in tcp udp udp64; do
    for pairing in kernel xdpload; do
      for r in $(seq "$repeats"); do iperf_case $kind $pairing "$r"; done
    done
  done
fi

# ---- 3a. sendfile: nginx serving a 1 GB file with sendfile on ----
# The server in A, curl in B on the kernel. kernel: nginx on the kernel;
# copy: under xdpload with XDPLOAD_SENDFILE=copy (the file through a
# buffer, then copied into frames: how it was before); frames: under
# xdpload, the file read by io_uring into the frames it is sent from. CPU:
# the nginx process's user and system time (all its threads, io_uring's
# workers included) per GB served; it includes B's kernel receiving, which
# veth runs in the sender's context. SF_PAIRINGS="frames copy" runs a subset.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sendfile_case() {  # pairing repeat
  local pairing=$1 r=$2 sw=()
  case $pairing in
    copy) sw=(env XDPLOAD_SENDFILE=copy "$X" --iface "$IF_A" --) ;;
    frames) sw=("$X" --iface "$IF_A" --) ;;
  esac
  nginx_conf "$tmp/nginx-sf.conf" "$tmp/ngx" off 1 "sendfile on;"
  chmod a+x "$tmp" "$tmp/ngx" && chmod -R a+rX "$tmp/ngx/www"
  [ -f "$tmp/ngx/www/big.bin" ] || head -c 1073741824 /dev/urandom >"$tmp/ngx/www/big.bin"
  cat "$tmp/ngx/www/big.bin" >/dev/null  # in the page cache, as a busy server's files are
  bg_a "${sw[@]}" nginx -c "$tmp/nginx-sf.conf" >"$tmp/nginx.out" 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
  local t0 t1 start end
  t0=$(cpu_ticks "$server")
  start=$(date +%s.%N)
  for i in 1 2 3; do
    in_b timeout 120 curl -s -o /dev/null -w '%{size_download}\n' "http://$IP_A:8080/big.bin"
  done >"$tmp/curl.out"
  end=$(date +%s.%N)
  t1=$(cpu_ticks "$server")
  stop "$server"
  cmdline "sendfile $pairing: ${sw[*]} nginx (sendfile on, 1 process); curl http://$IP_A:8080/big.bin (1 GiB) x 3"
  python3 - "$tmp/curl.out" "$pairing" "$r" "$start" "$end" "$t0" "$t1" "$(getconf CLK_TCK)" >>"$raw" <<'PY'
import sys
path, pairing, r, start, end, t0, t1, hz = sys.argv[1:]
got = sum(int(x) for x in open(path).read().split())
secs = float(end) - float(start)
gb = got / 1e9
if gb > 0:
    print(f"sendfile\tnginx 1GiB {pairing}\tGbit/s\t{r}\t{got * 8 / secs / 1e9:.4f}")
    print(f"sendfile\tnginx 1GiB {pairing}\tCPU s per GB\t{r}\t{(int(t1) - int(t0)) / int(hz) / gb:.4f}")
PY
  note "  sendfile $pairing: $(grep -P "^sendfile\tnginx 1GiB $pairing\t" "$raw" | tail -2 | cut -f3,5 | tr '\t\n' '= ')"
}
if want sendfile; then
  note "sendfile: nginx serving 1 GiB x 3 to curl, x $repeats"
  for r in $(seq "$repeats"); do
    for pairing in ${SF_PAIRINGS:-kernel copy frames}; do sendfile_case $pairing "$r"; done
  done
  rm -f "$tmp/ngx/www/big.bin"
fi

# ---- 3a2. zerocopy: the extensions' zero-copy calls against recv()/send() ----
# tests/progs/ext_zero_copy.c in A moves 1 GiB with a kernel socat in B:
# receiving (B sends zeros; A sums every byte where it lies, as a parser
# reads) and sending (A writes a pattern into the buffer, or the lent frame,
# as a program builds its messages). kernel: recv()/send() on the kernel; copy: the same
# calls under xdpload; zc: under xdpload, xdpload_zc_recv (read in place)
# and xdpload_zc_alloc/_send (the pattern written into lent frames). CPU: the
# A program's user and system time per GB (veth's receiving side in B runs
# in the sender's context, so a sending A pays for some of B's work).
# ZC_PAIRINGS="copy zc" runs a subset.
zc_case() {  # pairing way repeat
  local pairing=$1 way=$2 r=$3 sw=() mode=$2-copy gib=1073741824
  [ "$pairing" = kernel ] || sw=("$X" --iface "$IF_A" --)
  [ "$pairing" = zc ] && mode=$way
  if [ "$way" = recv ]; then
    bg_b bash -c "head -c $gib /dev/zero | socat -u - TCP4-LISTEN:7310,reuseaddr"
  else
    bg_b socat -u TCP4-LISTEN:7310,reuseaddr OPEN:/dev/null
  fi
  local peer=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7310' | grep -q 7310"
  local file=-
  in_a python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL)
secs = time.monotonic() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{secs} {u.ru_utime + u.ru_stime} {rc}\n")
' "$tmp/zc.time" "${sw[@]}" "$B/tests/ext_zero_copy_shared" "$mode" "$IP_B" 7310 "$file" "$gib"
  stop "$peer"
  cmdline "zerocopy $pairing $way: ${sw[*]} ext_zero_copy_shared $mode $IP_B 7310 $file $gib (socat in B)"
  read -r secs cpu rc <"$tmp/zc.time"
  if [ "$rc" = 0 ]; then
    record zerocopy "1GiB $way $pairing" "Gbit/s" "$r" "$(python3 -c "print(f'{$gib * 8 / $secs / 1e9:.4f}')")"
    record zerocopy "1GiB $way $pairing" "CPU s per GB" "$r" "$(python3 -c "print(f'{$cpu / ($gib / 1e9):.4f}')")"
  fi
  note "  zerocopy $way $pairing: rc $rc, $(grep -P "^zerocopy\t1GiB $way $pairing\t" "$raw" | tail -2 | cut -f3,5 | tr '\t\n' '= ')"
}
if want zerocopy; then
  note "zerocopy: 1 GiB each way, x $repeats"
  for r in $(seq "$repeats"); do
    for way in recv send; do
      for pairing in ${ZC_PAIRINGS:-kernel copy zc}; do zc_case "$pairing" "$way" "$r"; done
    done
  done
fi

# ---- 3b. queues: xdpload on a 1-queue pair beside the 4-queue one ----
# Both ends under xdpload; ping-pongs and iperf3 alternate between the two
# pairs for each repeat. On 4 queues every AF_XDP socket of the interface is
# polled: this shows what that costs.
if want queues; then
  note "queues: xdpload on a 1-queue and a 4-queue veth pair, same run"
  four=("$NS_A" "$NS_B" "$MAC_A" "$MAC_B")
  NETNS_QUEUES=1 netns_up  # a second pair, removed with the first
  trap 'rm -rf "$tmp"; netns_down' EXIT
  one=("$NS_A" "$NS_B" "$MAC_A" "$MAC_B")
  for r in $(seq "$repeats"); do
    for q in 1 4; do
      if [ $q = 1 ]; then pair=("${one[@]}"); else pair=("${four[@]}"); fi
      NS_A=${pair[0]} NS_B=${pair[1]} MAC_A=${pair[2]} MAC_B=${pair[3]}
      queues_label="${q}q"
      for proto in udp tcp; do
        for mode in spinning blocking; do sockperf_case $proto xdpload $mode "$r"; done
      done
      for kind in tcp udp64; do iperf_case $kind xdpload "$r"; done
    done
  done
  queues_label=""
  NS_A=${four[0]} NS_B=${four[1]} MAC_A=${four[2]} MAC_B=${four[3]}
fi

# ---- 4. servers: redis-benchmark and nginx + wrk ----
redis_case() {  # pairing pipeline repeat
  local pairing=$1 pipe=$2 r=$3 sw=()
  [ "$pairing" = xdpload ] && sw=("$X" --iface "$IF_A" --)
  bg_a "${sw[@]}" redis-server --bind "$IP_A" --port 6379 --save '' --appendonly no \
    --protected-mode no --daemonize no >"$tmp/redis.out" 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :6379' | grep -q 6379"
  local n=200000
  [ "$pipe" = 16 ] && n=1000000
  in_b timeout 120 redis-benchmark -h "$IP_A" -p 6379 -t set,get -n $n -P "$pipe" -c 50 --csv \
    >"$tmp/redis.csv" 2>&1
  stop "$server"
  cmdline "redis: ${sw[*]} redis-server --bind $IP_A --save '' --appendonly no; redis-benchmark -h $IP_A -t set,get -n $n -P $pipe -c 50 --csv"
  awk -F'"' -v p="$pairing" -v pipe="$pipe" -v r="$r" \
    '$2 == "SET" || $2 == "GET" {printf "servers\tredis %s -P%s %s\treq/s\t%s\t%s\n", $2, pipe, p, r, $4}' \
    "$tmp/redis.csv" >>"$raw"
  note "  redis -P$pipe $pairing: $(awk -F'"' '$2 == "SET" || $2 == "GET" {printf "%s %s  ", $2, $4}' "$tmp/redis.csv")"
}
bench_nginx_conf() {  # file master_process(on|off) workers [reuseport]: a small page on $IP_A:8080
  nginx_conf "$1" "$tmp/ngx" "$2" "$3"
  # reuseport: a listener per worker (a SO_REUSEPORT group), no shared accept.
  [ "${4:-}" = reuseport ] && sed -i "s|listen $IP_A:8080;|listen $IP_A:8080 reuseport;|" "$1"
  echo "<html>hello from nginx</html>" >"$tmp/ngx/www/index.html"
  chmod a+x "$tmp" "$tmp/ngx" && chmod -R a+rX "$tmp/ngx/www"  # workers of a master run as nobody
}
nginx_case() {  # pairing repeat workers (1: master_process off; more: a master and its workers) [connections] [reuseport]
  local pairing=$1 r=$2 workers=$3 conns=${4:-50} listen=${5:-} sw=() master=off label=nginx
  [ "$workers" -gt 1 ] && master=on && label="nginx $workers workers"
  [ -n "$listen" ] && label="$label $listen"
  # Many keep-alive connections: what a connection costs the stack per segment.
  # (Their p99 is mostly the start: nginx accepts one connection per turn of
  # its loop, multi_accept off, so the first requests of 500 connections
  # opened at once wait hundreds of turns, on the kernel as under xdpload:
  # pcaps and 3 alternating runs, 2026-11-27, p99 7-280 ms on the kernel.)
  [ "$conns" != 50 ] && label="$label c$conns"
  [ "$pairing" = xdpload ] && sw=("$X" --iface "$IF_A" --)
  bench_nginx_conf "$tmp/nginx.conf" $master "$workers" "$listen"
  bg_a "${sw[@]}" nginx -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8080' | grep -q 8080"
  [ $master = on ] && sleep 0.5  # the workers
  in_b timeout $((secs + 30)) wrk -t2 -c"$conns" -d"${secs}s" --latency "http://$IP_A:8080/index.html" \
    >"$tmp/wrk.out" 2>&1
  if [ $master = on ]; then
    kill -QUIT "$server" 2>/dev/null  # graceful: the workers first
    wait "$server" 2>/dev/null
  else
    stop "$server"
  fi
  cmdline "$label: ${sw[*]} nginx (master_process $master, worker_processes $workers${listen:+, listen $listen}); wrk -t2 -c$conns -d${secs}s --latency http://$IP_A:8080/index.html"
  awk -v p="$pairing" -v r="$r" -v l="$label" '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
    /Requests\/sec/ {printf "servers\t%s %s\treq/s\t%s\t%s\n", l, p, r, $2}
    $1 == "99%" {printf "servers\t%s %s\tp99 us\t%s\t%s\n", l, p, r, us($2)}' "$tmp/wrk.out" >>"$raw"
  note "  $label $pairing: $(grep -E 'Requests/sec' "$tmp/wrk.out") p99 $(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")"
}
# A connection per request: B's client connects, sends a byte, reads its
# echo and closes, one connection after another, to a blocking Python
# echo server in A (accept, recv, send, close); microseconds per
# connection over 5000 of them. B reuses its ports' TIME-WAITs (the runs
# make tens of thousands of connections).
churn_case() {  # pairing repeat
  local pairing=$1 r=$2 sw=()
  [ "$pairing" = xdpload ] && sw=("$X" --iface "$IF_A" --)
  bg_a "${sw[@]}" python3 -c "
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('$IP_A', 8556))
l.listen(128)
while True:
    c, _ = l.accept()
    c.sendall(c.recv(100))
    c.close()" >"$tmp/churn-server.out" 2>&1
  local server=$BG_PID
  wait_for 100 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8556' | grep -q 8556"
  local us
  us=$(in_b timeout 120 python3 -c "
import socket, time
t = time.monotonic()
for _ in range(5000):
    s = socket.create_connection(('$IP_A', 8556))
    s.sendall(b'x')
    s.recv(10)
    s.close()
print(round((time.monotonic() - t) * 1e6 / 5000, 1))")
  stop "$server"
  cmdline "connection per request: ${sw[*]} python3 echo server (accept, recv, send, close); B: 5000 sequential connect, 1 byte each way, close (python3)"
  [ -n "$us" ] && record servers "connection per request $pairing" "us per connection" "$r" "$us"
  note "  connection per request $pairing: ${us:-failed} us"
}
if want servers; then
  note "servers: redis-benchmark and nginx/wrk x $repeats"
  in_b sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
  for pairing in kernel xdpload; do
    for r in $(seq "$repeats"); do churn_case $pairing "$r"; done
  done
  for pipe in 1 16; do
    for pairing in kernel xdpload; do
      for r in $(seq "$repeats"); do redis_case $pairing $pipe "$r"; done
    done
  done
  for pairing in kernel xdpload; do
    for r in $(seq "$repeats"); do nginx_case $pairing "$r" 1; done
    for r in $(seq "$repeats"); do nginx_case $pairing "$r" 1 500; done
  done
fi

# ---- 4b. forking servers: one stack per process family ----
fork_cost_case() {  # pairing repeat
  local pairing=$1 r=$2 sw=()
  [ "$pairing" = xdpload ] && sw=("$X" --iface "$IF_A" --)
  in_a "${sw[@]}" "$B/bench/fork_cost" "$IP_A" 8090 500 >"$tmp/fork.out" 2>&1
  cmdline "fork cost: ${sw[*]} fork_cost $IP_A 8090 500 (a TCP listener and a UDP socket open)"
  awk -v p="$pairing" -v r="$r" '/median/ {printf "servers\tfork() of a server %s\tfork us\t%s\t%s\nservers\tfork() of a server %s\tfork p99 us\t%s\t%s\n", p, r, $4, p, r, $6}' \
    "$tmp/fork.out" >>"$raw"
  note "  fork $pairing: $(cat "$tmp/fork.out")"
}
if want forked; then
  note "forked: nginx with 2 workers (wrk; a shared listener, and a listener each with reuseport), fork() cost x $repeats"
  for pairing in kernel xdpload; do
    for r in $(seq "$repeats"); do nginx_case $pairing "$r" 2; done
    for r in $(seq "$repeats"); do nginx_case $pairing "$r" 2 50 reuseport; done
    for r in $(seq "$repeats"); do fork_cost_case $pairing "$r"; done
  done
fi

# ---- 4c. idle servers: CPU used with no traffic (tests count wake-ups) ----
idle_case() {  # pairing repeat: redis and a Python asyncio server, one exchange, then idle
  local pairing=$1 r=$2 sw=() t0 t1 pid hz secs=10
  hz=$(getconf CLK_TCK)
  [ "$pairing" = xdpload ] && sw=("$X" --iface "$IF_A" --)
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  bg_a "${sw[@]}" redis-server --port 6379 --bind "$IP_A" --save "" --appendonly no \
    --protected-mode no --daemonize no --logfile /dev/null
  pid=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B redis-cli -h $IP_A ping | grep -q PONG"
  in_b redis-cli -h "$IP_A" set k v >/dev/null
  sleep 1
  t0=$(ticks "$pid"); sleep "$secs"; t1=$(ticks "$pid")
  record idle "redis-server $pairing" "CPU %" "$r" "$(awk -v t=$((t1 - t0)) -v h="$hz" -v s="$secs" 'BEGIN {print 100 * t / (h * s)}')"
  stop "$pid"
  bg_a "${sw[@]}" python3 tests/peers/asyncio_echo_server.py 0.0.0.0 8888
  pid=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -ltnH 'sport = :8888' | grep -q 8888"
  in_b python3 tests/peers/asyncio_echo_clients.py "$IP_A" 8888 2 2 >/dev/null
  sleep 1
  t0=$(ticks "$pid"); sleep "$secs"; t1=$(ticks "$pid")
  record idle "python asyncio server $pairing" "CPU %" "$r" "$(awk -v t=$((t1 - t0)) -v h="$hz" -v s="$secs" 'BEGIN {print 100 * t / (h * s)}')"
  stop "$pid"
  cmdline "idle: ${sw[*]} redis-server / asyncio_echo_server.py, one exchange, then CPU ticks over ${secs} s"
}
if want idle; then
  note "idle: redis and a Python asyncio server, CPU over 10 s without traffic"
  for pairing in kernel xdpload; do idle_case $pairing 1; done
fi

# ---- 4d. how long things take that tests only wait for ----
if want events; then
  note "events: the served clock following a REALTIME step; XDP gone after kill -9 (x $repeats)"
  for r in $(seq "$repeats"); do
    out=$(env LD_PRELOAD="$B/libxdpload.so" "$B/tests/clock_check" step 2>&1)
    ms=$(sed -n 's/.*followed the +2 s step after \([0-9.]*\) ms.*/\1/p' <<<"$out")
    [ -n "$ms" ] && record events "served REALTIME follows a +2 s step" ms "$r" "$ms"
    bg_a "$B/tests/xsk_exchange" --iface "$IF_A" --port 9500 --hold >"$tmp/hold.out" 2>&1
    pid=$BG_PID
    wait_for 50 grep -q "port open" "$tmp/hold.out"
    kill -9 "$pid"
    t0=$(date +%s%N)
    while ip netns exec "$NS_A" ip link show "$IF_A" | grep -q 'prog/xdp'; do sleep 0.005; done
    record events "XDP program gone after kill -9 of its owner" ms "$r" \
      "$(( ($(date +%s%N) - t0) / 1000000 ))"
    wait "$pid" 2>/dev/null
  done
  cmdline "events: LD_PRELOAD=libxdpload.so clock_check step; xsk_exchange --hold, kill -9, poll ip link every 5 ms"
fi

# ---- 4c. loss: 50 MB through a lossy wire ----
# A program in A sends 50 MB to a kernel nc in B while tc_loss.bpf.c on B's
# veth drops a share of the frames both ways (this kernel has no netem); the
# kernel sender against xdpload's, alternating, TSO/GSO off on both veths so
# that both send wire-sized frames. Timed from connected to the receiver's
# end of stream (bench/timed_send.py), so process start-up does not count.
# Both senders use CUBIC; the kernel on bbr (this host's default, not
# loss-based) is shown beside them for reference. Target: xdpload at most
# 1.5x the kernel's time (CUBIC) at every rate.
loss_case() {  # rate(0|0_1|1|2) pairing(kernel|xdpload|bbr: the kernel on bbr) repeat [what: loss|reorder]
  local rate=$1 pairing=$2 r=$3 what=${4:-loss} w=() cc=cubic
  [ "$pairing" = xdpload ] && w=("$X" --iface "$IF_A" --)
  [ "$pairing" = bbr ] && cc=bbr
  bg_b bash -c "nc -l -N 7300 >/dev/null </dev/null"
  local server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7300' | grep -q 7300"
  local took
  # CUBIC on both, Linux's default (this host's is bbr, which a new
  # namespace inherits and may not change: the socket asks).
  took=$(in_a timeout 300 "${w[@]}" python3 bench/timed_send.py "$IP_B" 7300 "$tmp/loss.in" $cc 2>"$tmp/loss.err")
  wait "$server"
  [ -n "$took" ] && record "$what" "${rate/_/.} % $pairing" s "$r" "$took"
  if [ "$what" = loss ]; then
    cmdline "loss: ${w[*]} timed_send.py $IP_B 7300 <50 MB file> $cc (connected to end of stream); B: nc -l -N; tc filter add dev $IF_B ingress|egress bpf da obj tc_loss.bpf.o sec tc/loss_<rate>"
  else
    cmdline "reorder: ${w[*]} timed_send.py $IP_B 7300 <50 MB file> $cc; B: nc -l -N; tc filter add dev $IF_B ingress bpf da obj tc_reorder.bpf.o sec tc/reorder_ingress_<rate>"
  fi
  note "  $what ${rate/_/.} % $pairing: $(grep -P "^$what\t${rate/_/.} % $pairing\t" "$raw" | tail -1 | cut -f5) s"
}
# The floor under the lossless transfer: bench/xsk_bulk.cc sends the
# frames of 50 MB (1448 bytes each, 1514-byte frames) raw from A's AF_XDP
# port to a UDP socket in B, as fast as the kernel takes them. Copy mode on
# veth runs an skb, a copy and B's stack in every kick: no AF_XDP sender on
# this wire, xdpload's included, gets its frames out faster.
bulk_floor_case() {  # repeat
  local r=$1 took got
  bg_b bash -c "python3 '$top/bench/udp_sink.py' 7400 >'$tmp/sink.out'"
  local sink=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_B ss -lunH 'sport = :7400' | grep -q 7400"
  took=$(in_a timeout 60 "$B/bench/xsk_bulk" --iface "$IF_A" --local-ip "$IP_A" --peer-ip "$IP_B" \
    --peer-mac "$MAC_B" --port 7400 --bytes 50000000 2>"$tmp/bulk.err" | awk '{print $6}')
  wait "$sink"
  got=$(awk '{print $2}' "$tmp/sink.out")
  cmdline "loss floor: xsk_bulk --iface $IF_A --port 7400 --bytes 50000000 (34,531 frames of 1514 bytes, raw AF_XDP); B: udp_sink.py 7400"
  if [ -z "$took" ]; then note "  bulk floor failed: $(cat "$tmp/bulk.err")"; return; fi
  record loss "0 % floor" s "$r" "$took"
  record loss "0 % floor" received "$r" "$got"
  note "  loss 0 % floor: $took s ($got of 34531 datagrams read in B)"
}
if want loss; then
  note "loss: 50 MB A->B through a lossy wire, kernel and xdpload senders, and the raw floor"
  head -c 50000000 /dev/urandom >"$tmp/loss.in"
  in_a ethtool -K "$IF_A" tso off gso off >/dev/null
  in_b ethtool -K "$IF_B" tso off gso off >/dev/null
  for r in $(seq "$repeats"); do bulk_floor_case "$r"; done
  in_b tc qdisc add dev "$IF_B" clsact
  for rate in 0 0_1 1 2; do
    for dir in ingress egress; do
      if [ $rate = 0 ]; then
        in_b tc filter del dev "$IF_B" "$dir" pref 1 2>/dev/null
      else
        in_b tc filter replace dev "$IF_B" "$dir" pref 1 bpf da obj "$B/tests/tc_loss.bpf.o" \
          sec "tc/loss_$rate"
      fi
    done
    for r in $(seq "$repeats"); do
      for pairing in kernel xdpload bbr; do loss_case $rate $pairing "$r"; done
    done
  done
  # Reordering without loss: tc_reorder.bpf.c holds 1 % of A's data segments
  # back behind the next two frames (B's ACKs are left alone).
  in_b tc filter del dev "$IF_B" egress pref 1 2>/dev/null
  in_b tc filter replace dev "$IF_B" ingress pref 1 bpf da obj "$B/tests/tc_reorder.bpf.o" \
    sec tc/reorder_ingress_1
  for r in $(seq "$repeats"); do
    for pairing in kernel xdpload; do loss_case 1 $pairing "$r" reorder; done
  done
  in_b tc qdisc del dev "$IF_B" clsact
  in_a ethtool -K "$IF_A" tso on gso on >/dev/null
  in_b ethtool -K "$IF_B" tso on gso on >/dev/null
fi

# ---- 5. the clock ----
if want clock; then
  note "clock: clock_gettime/gettimeofday, served vs real (Google Benchmark)"
  for clock in tsc tsc-fast; do
    XDPLOAD_CLOCK=$clock LD_PRELOAD="$B/libxdpload.so" "$B/bench/clock_bench" \
      --benchmark_min_time=0.2 --benchmark_format=json >"$tmp/clock-$clock.json" 2>/dev/null
    cmdline "clock: XDPLOAD_CLOCK=$clock LD_PRELOAD=libxdpload.so clock_bench --benchmark_min_time=0.2"
    python3 - "$tmp/clock-$clock.json" "$clock" >>"$raw" <<'PY'
import json, sys
path, clock = sys.argv[1:]
names = {"0": "REALTIME", "1": "MONOTONIC", "2": "MONOTONIC_RAW", "3": "BOOTTIME",
         "4": "REALTIME_COARSE", "5": "MONOTONIC_COARSE"}
for b in json.load(open(path))["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    parts = b["run_name"].split("/")
    fn, arg = parts[0], parts[1] if len(parts) > 1 and parts[1].isdigit() else ""
    kind = "served" if "served" in fn else "real"
    what = names.get(arg) if arg else fn.split("_", 2)[-1]
    if kind == "real" and clock != "tsc":
        continue  # the real clock is measured once
    label = "vdso" if kind == "real" else clock
    print(f"clock\t{what}\t{label} ns\t1\t{b['real_time']:.2f}")
PY
  done
fi

# ---- 6. start-up cost ----
if want startup; then
  note "startup: hyperfine"
  # A short program that opens one TCP connection: the stack starts (UMEM,
  # AF_XDP sockets, XDP program) and ends (the connection finished, the
  # sockets and link released) within it, as for curl in a script.
  bg_b socat -u TCP-LISTEN:7600,fork,reuseaddr OPEN:/dev/null
  wait_for 50 bash -c "ip netns exec $NS_B ss -ltnH 'sport = :7600' | grep -q 7600"
  one_conn="import socket; s = socket.create_connection(('$IP_B', 7600)); s.sendall(b'x'); s.close()"
  in_a hyperfine -N --warmup 5 --runs 40 --export-json "$tmp/hf.json" \
    -n "true" "true" \
    -n "env true" "env XDPLOAD_IFACE=$IF_A true" \
    -n "LD_PRELOAD=libxdpload.so true" "env LD_PRELOAD=$B/libxdpload.so XDPLOAD_IFACE=$IF_A true" \
    -n "xdpload true" "$X --iface $IF_A true" \
    -n "python3 -c pass" "python3 -c pass" \
    -n "xdpload python3 -c pass" "$X --iface $IF_A python3 -c pass" \
    -n "python3 one TCP connection" "python3 -c \"$one_conn\"" \
    -n "xdpload python3 one TCP connection" "$X --iface $IF_A python3 -c \"$one_conn\"" >/dev/null 2>&1
  cmdline "startup: hyperfine -N --warmup 5 --runs 40 (in namespace A, XDPLOAD_IFACE=$IF_A)"
  python3 - "$tmp/hf.json" >>"$raw" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"startup\t{r['command']}\tms\t1\t{r['median'] * 1000:.3f}")
PY
fi

# ---- 7. where the time goes: the stack's own share (no kernel), and a CPU
# profile of the xdpload UDP ping-pong ----
if want profile; then
  note "stages: lwIP and the netif driver, two stacks over the FakeLink test double"
  taskset -c 1 "$B/bench/stack_path_bench" --benchmark_repetitions=3 --benchmark_min_time=0.2 \
    --benchmark_format=json >"$tmp/stages.json" 2>/dev/null
  cmdline "stages: taskset -c 1 stack_path_bench --benchmark_repetitions=3 --benchmark_min_time=0.2"
  python3 - "$tmp/stages.json" >>"$raw" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") == "median":
        print(f"stages\t{b['run_name']}\tns\t1\t{b['real_time']:.1f}")
PY
fi
if want profile && command -v perf >/dev/null; then
  note "profile: perf on the spinning xdpload UDP ping-pong server"
  bg_a "$X" --cpu 0 --iface "$IF_A" --profile latency -- sockperf sr -i "$IP_A" -p 11111 --nonblocked \
    >/dev/null 2>&1
  server=$BG_PID
  wait_for 50 bash -c "ip netns exec $NS_A ss -lunH 'sport = :11111' | grep -q 11111"
  bg_b "$X" --cpu 1 --iface "$IF_B" --profile latency -- sockperf pp -i "$IP_A" -p 11111 -m 64 \
    -t $((secs + 1)) --nonblocked >/dev/null 2>&1
  client=$BG_PID
  sleep 0.5
  perf record -e cpu-clock -F 4999 -g -p "$server" -o "$tmp/perf.data" -- sleep "$secs" \
    >/dev/null 2>&1
  wait "$client"
  stop "$server"
  perf report -i "$tmp/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -25 >"$tmp/profile.txt"
  cmdline "profile: perf record -e cpu-clock -F 4999 -g -p <sockperf sr under xdpload> -- sleep $secs"
fi

elapsed=$(( $(date +%s) - started ))
out="$results/$stamp"
python3 bench/report.py --raw "$raw" --commands "$commands" --cdf-dir "$tmp" \
  --profile "$tmp/profile.txt" --seconds "$secs" --repeats "$repeats" --elapsed "$elapsed" \
  --out "$out"
cp "$raw" "$out.tsv"
# latest.md names the last full run; a run of some sections does not move it.
[ "$sections" = "$all_sections" ] && ln -sfn "$(basename "$out").md" "$results/latest.md"
note ""
note "results: $out.md ($elapsed s)"
cat "$out.md"
