# The parsers of what users and files give xdpload (XDPLOAD_RULES, the
# XDPLOAD_* values that profiles and flags set) under libFuzzer with
# AddressSanitizer and UBSan, 20 s each from the shipped examples: no crash,
# no leak, no undefined behaviour, every refusal with a reason.
. "$(dirname "$0")/../lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in rules_fuzz config_fuzz; do
  [ -x "$BUILD/fuzz/$f" ] || skip "$BUILD/fuzz/$f not built (make fuzz needs clang's libFuzzer)"
done
mkdir "$tmp/rules" "$tmp/config"
cp "$TOP/conf/rules.example" "$tmp/rules/"
printf 'tcp_server 10.0.0.0/8:80-90 accelerate\nudp_sender *:53 kernel\n' >"$tmp/rules/small"
# Config seeds: the profiles' settings, each line a byte picking the option
# (its index in shim/runtime/options.def) and the value (see config_fuzz.cc).
python3 - "$TOP/shim/runtime/options.def" "$tmp/config" "$TOP"/conf/*.conf <<'PY'
import re, sys
names = [m.group(1).upper() for m in re.finditer(r"^XDPLOAD_OPTION\((\w+),", open(sys.argv[1]).read(), re.M)]
for path in sys.argv[3:]:
    out = b""
    for line in open(path):
        m = re.match(r"XDPLOAD_(\w+)=(\S*)", line)
        if m and m.group(1) in names:
            out += bytes([names.index(m.group(1))]) + m.group(2).encode() + b"\n"
    open(f"{sys.argv[2]}/{path.rsplit('/', 1)[1]}", "wb").write(out)
open(f"{sys.argv[2]}/queues", "wb").write(bytes([names.index("QUEUES")]) + b"0,2-3\n")
PY
for f in rules_fuzz config_fuzz; do
  corpus=$tmp/${f%_fuzz}
  "$BUILD/fuzz/$f" -max_total_time=20 -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
    "$corpus" >"$tmp/$f.log" 2>&1
  rc=$?
  grep -E "stat::number_of_executed_units|Done|ERROR|SUMMARY" "$tmp/$f.log" | head -5
  check "$f: 20 s without a crash, leak or undefined behaviour" [ $rc -eq 0 ]
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$f.log")
  check "$f: ran ($runs inputs)" [ "${runs:-0}" -gt 1000 ]
done
finish
