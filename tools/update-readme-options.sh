#!/usr/bin/env bash
# Rewrites the option table in README.md (between the options:begin and
# options:end markers) from shim/runtime/options.def, through xdpload-options.
#   tools/update-readme-options.sh build/xdpload-options README.md
set -eu
tool=$1 readme=$2
table=$(mktemp)
trap 'rm -f "$table" "$table.new"' EXIT
"$tool" --markdown >"$table"
grep -q '<!-- options:begin -->' "$readme" || { echo "$readme: no options:begin marker" >&2; exit 1; }
awk -v table="$table" '
  /<!-- options:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- options:end -->/ { skip = 0 }
  !skip { print }
' "$readme" >"$table.new"
cat "$table.new" >"$readme"
