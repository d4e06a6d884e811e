# make install (tools/install.sh) into a staging DESTDIR: the installed
# wrapper finds the installed library, helper, broker and profiles (not the
# source tree's), and runs a program with the library loaded.
. "$(dirname "$0")/../lib/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$TOP/tools/install.sh" "$BUILD" /usr "$tmp/stage" >"$tmp/out" || { cat "$tmp/out"; fail "install"; finish; }
root="$tmp/stage/usr"
for f in bin/xdpload bin/xdpload-stat lib/xdpload/libxdpload.so lib/xdpload/xdpload-options \
         share/xdpload/conf/balanced.conf share/xdpload/conf/latency.conf \
         share/xdpload/conf/throughput.conf share/xdpload/conf/safe.conf \
         share/xdpload/conf/rules.example lib/xdpload/xdpload-broker lib/xdpload/xdpload-tune \
         share/xdpload/conf/broker-policy.example "share/xdpload/conf/xdpload-daemon@.service" \
         include/xdpload/extensions.h lib/libxdpload_ext.so lib/libxdpload_ext.a; do
  check "installed $f" [ -f "$root/$f" ]
done
# A program built against the installed header and stub, as a user builds
# one: it runs without xdpload, and under the installed wrapper finds it.
cat >"$tmp/ext.c" <<'C'
#include <stdio.h>
#include <xdpload/extensions.h>
int main(void) { printf("present %d\n", xdpload_is_present()); return 0; }
C
check "a program builds against the installed extensions header and stub" \
  cc -I"$root/include" -o "$tmp/ext" "$tmp/ext.c" -L"$root/lib" -lxdpload_ext -Wl,-rpath,"$root/lib"
check "without xdpload: not present" bash -c "'$tmp/ext' | grep -qx 'present 0'"
check "installed wrapper --version" bash -c "'$root/bin/xdpload' --version | grep -q '^xdpload '"
"$root/bin/xdpload" --dry-run --profile latency true >"$tmp/dry"
cat "$tmp/dry"
check "installed wrapper preloads the installed library" \
  grep -qx "LD_PRELOAD=$root/lib/xdpload/libxdpload.so" "$tmp/dry"
check "installed wrapper reads the installed profiles" grep -q "XDPLOAD_SPIN_USEC=100000.*profile latency" "$tmp/dry"
"$root/bin/xdpload" cat /proc/self/maps >"$tmp/maps"
check "a program run by the installed wrapper has the installed library" \
  grep -q "$root/lib/xdpload/libxdpload.so" "$tmp/maps"
check "installed xdpload-stat runs" bash -c "'$root/bin/xdpload-stat' >/dev/null"
check "installed wrapper runs the broker (xdpload daemon --help)" \
  bash -c "'$root/bin/xdpload' daemon --help | grep -q 'usage: xdpload daemon'"
check "installed wrapper runs the host audit (xdpload tune --json)" \
  bash -c "'$root/bin/xdpload' tune --json | python3 -m json.tool >/dev/null"
finish
