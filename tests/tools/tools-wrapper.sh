# The xdpload wrapper: it execs the program (same pid, so signals and the
# exit status are the program's), passes arguments byte for byte, keeps an
# existing LD_PRELOAD, sets CPU affinity, and reports its own misuse with
# exit status 2 (127/126 for a command that cannot be run, like env(1)).
. "$(dirname "$0")/../lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
x="$TOP/tools/xdpload"

# Exit statuses.
"$x" sh -c 'exit 42'; rc=$?
check "exit status passed through (42, got $rc)" [ $rc -eq 42 ]
"$x" false; rc=$?
check "false: 1 (got $rc)" [ $rc -eq 1 ]
"$x" -- no-such-command-xl 2>"$tmp/err"; rc=$?
check "missing command: 127 and a message (got $rc)" \
  bash -c "[ $rc -eq 127 ] && grep -q 'no-such-command-xl: command not found' $tmp/err"
printf 'x' >"$tmp/notexec"
"$x" "$tmp/notexec" 2>/dev/null; rc=$?
check "file that is not executable: 126 (got $rc)" [ $rc -eq 126 ]
"$x" --no-such-flag true 2>"$tmp/err"; rc=$?
check "unknown flag: 2 and a message (got $rc)" \
  bash -c "[ $rc -eq 2 ] && grep -q 'unknown option --no-such-flag' $tmp/err"
"$x" 2>/dev/null; rc=$?
check "no command: 2 (got $rc)" [ $rc -eq 2 ]
"$x" --iface 2>/dev/null; rc=$?
check "flag without its value: 2 (got $rc)" [ $rc -eq 2 ]

# Signals: the program is the wrapper's process (exec), so a signal sent to
# the pid the caller started reaches it, and death by signal is reported.
"$x" sh -c 'kill -TERM $$'; rc=$?
check "killed by SIGTERM: 143 (got $rc)" [ $rc -eq 143 ]
"$x" sleep 30 &
pid=$!
wait_for 50 bash -c "[ \"\$(cat /proc/$pid/comm 2>/dev/null)\" = sleep ]"
check "same pid: the wrapper's pid is the program's" [ "$(cat /proc/$pid/comm)" = sleep ]
kill -USR1 "$pid"
wait "$pid"; rc=$?
check "SIGUSR1 sent to that pid ends it: 138 (got $rc)" [ $rc -eq 138 ]

# Arguments, exactly: spaces, quotes, empty, globs, dollars, newlines,
# backslashes, and words that look like the wrapper's own flags.
args=("a b" "" "'single'" '"double"' '$HOME' '*' 'back\slash' $'new\nline' "--" "-v"
      "--profile" "x=y" "  lead")
printf '%s\0' "${args[@]}" >"$tmp/direct"
"$x" printf '%s\0' "${args[@]}" >"$tmp/wrapped"
check "arguments passed byte for byte" cmp -s "$tmp/direct" "$tmp/wrapped"
"$x" -- printf '%s\0' "${args[@]}" >"$tmp/wrapped2"
check "arguments after -- passed byte for byte" cmp -s "$tmp/direct" "$tmp/wrapped2"
echo "data through stdin" | "$x" cat >"$tmp/stdin"
check "stdin and stdout are the program's" grep -qx "data through stdin" "$tmp/stdin"

# An existing LD_PRELOAD is kept (and the library loads once).
other=$(ldconfig -p | awk '/libm\.so\.6 .*x86-64/ {print $NF; exit}')
[ -n "$other" ] || other=/lib/x86_64-linux-gnu/libm.so.6
LD_PRELOAD="$other" "$x" cat /proc/self/maps >"$tmp/maps"
check "existing LD_PRELOAD kept" grep -q "$(basename "$other")" "$tmp/maps"
check "libxdpload.so loaded" grep -q libxdpload.so "$tmp/maps"
LD_PRELOAD="$other" "$x" sh -c 'echo "$LD_PRELOAD"' >"$tmp/preload"
# (The library the wrapper picks: another build's with XDPLOAD_BUILD, as
# make test-ubsan runs it.)
ours=$BUILD/libxdpload.so
[ -n "${XDPLOAD_BUILD:-}" ] && [ -f "$TOP/$XDPLOAD_BUILD/libxdpload.so" ] && ours=$TOP/$XDPLOAD_BUILD/libxdpload.so
check "LD_PRELOAD lists ours first, then the existing one" \
  grep -qx "$ours $other" "$tmp/preload"
LD_PRELOAD="$ours" "$x" sh -c 'echo "$LD_PRELOAD"' >"$tmp/preload2"
check "not added twice" grep -qx "$ours" "$tmp/preload2"
"$x" --dry-run sh -c 'echo ran >'"$tmp/ran" >"$tmp/dry"
check "--dry-run runs nothing" [ ! -e "$tmp/ran" ]
check "--dry-run prints LD_PRELOAD and the command" \
  bash -c "grep -q '^LD_PRELOAD=$ours' $tmp/dry && grep -q '^# command: sh -c' $tmp/dry"

# CPU affinity, inherited through the exec.
"$x" --cpu 0 grep Cpus_allowed_list /proc/self/status >"$tmp/cpus"
check "--cpu 0: the program runs on CPU 0 only" grep -qP 'Cpus_allowed_list:\t0$' "$tmp/cpus"
"$x" --cpu 999 true 2>"$tmp/err"; rc=$?
check "--cpu with a CPU that does not exist: 2 (got $rc)" [ $rc -eq 2 ]

# --version, --help, --list-options.
check "--version" bash -c "'$x' --version | grep -qE '^xdpload [0-9]+\.[0-9]+\.[0-9]+$'"
check "--help mentions every flag" \
  bash -c "h=\$('$x' --help); for f in --profile --iface --queue --spin --log --pcap --cpu --dry-run --list-options --version; do grep -q -- \"\$f\" <<<\"\$h\" || exit 1; done"
"$x" --list-options >"$tmp/list"
n_def=$(grep -c '^XDPLOAD_OPTION(' "$TOP/shim/runtime/options.def")
n_list=$(grep -c '^XDPLOAD_' "$tmp/list")
check "--list-options lists every option of options.def ($n_list of $n_def)" [ "$n_list" -eq "$n_def" ]
finish
