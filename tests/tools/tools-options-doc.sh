# The README's option table is the one generated from shim/runtime/options.def, and
# every option the library declares is documented there: a new option or a
# changed default without `make readme-options` fails here.
. "$(dirname "$0")/../lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/xdpload-options" --markdown >"$tmp/want"
sed -n '/<!-- options:begin -->/,/<!-- options:end -->/p' "$TOP/README.md" | sed '1d;$d' >"$tmp/have"
diff -u "$tmp/have" "$tmp/want"
check "README option table is up to date (make readme-options)" cmp -s "$tmp/have" "$tmp/want"
n_def=$(grep -c '^XDPLOAD_OPTION(' "$TOP/shim/runtime/options.def")
n_doc=$(grep -c '^| `XDPLOAD_' "$tmp/have")
check "every option of options.def is in the README ($n_doc of $n_def)" [ "$n_doc" -eq "$n_def" ]
finish
