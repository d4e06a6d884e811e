#!/usr/bin/env bash
# Test runner. Every test is a program that exits 0 (pass), 77 (skip) or
# anything else (fail): the GoogleTest binaries in BUILD/tests/unit/ and the
# scripts under tests/<tier>/. Each runs under a timeout with its output in
# BUILD/test-logs/; a failure prints the end of its log. The last line is
# "N passed, N failed, N skipped".
#
#   tests/run.sh [BUILD] [PATTERN]     PATTERN: only tests whose name matches
set -u
build=${1:-build}
pattern=${2:-${TESTS:-}}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
logs="$build/test-logs"
mkdir -p "$logs"
export XL_TEST_BUILD="$top/$build"

tests=()
for t in "$build"/tests/unit/*_test; do [ -x "$t" ] && tests+=("$t"); done
for tier in net stack shim clock servers tools; do
  for t in tests/$tier/*.sh; do [ -f "$t" ] && tests+=("$t"); done
done

passed=0 failed=0 skipped=0
failures=()
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  [ -n "$pattern" ] && ! [[ "$name" =~ $pattern ]] && continue
  limit=600
  log="$logs/$name.log"
  start=$(date +%s)
  if [[ "$t" == *.sh ]]; then
    timeout -k 10 "$limit" bash "$t" >"$log" 2>&1
  else
    timeout -k 10 "$limit" "$t" >"$log" 2>&1
  fi
  rc=$?
  secs=$(( $(date +%s) - start ))
  case $rc in
    0) passed=$((passed + 1)); printf 'PASS  %-32s %4ss\n' "$name" "$secs" ;;
    77) skipped=$((skipped + 1)); printf 'SKIP  %-32s %s\n' "$name" "$(tail -n1 "$log")" ;;
    *)
      failed=$((failed + 1)); failures+=("$name")
      [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$log"
      printf 'FAIL  %-32s %4ss (exit %d, log %s)\n' "$name" "$secs" "$rc" "$log"
      tail -n 25 "$log" | sed 's/^/      | /'
      ;;
  esac
done
leftover=$(ip netns list 2>/dev/null | grep -c '^xload-' || true)
if [ "$leftover" -gt 0 ]; then
  echo "FAIL  cleanup: $leftover test namespace(s) left behind"
  failed=$((failed + 1))
fi
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
