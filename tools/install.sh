#!/usr/bin/env bash
# make install: the wrapper and xdpload-stat in PREFIX/bin, the library and
# its option helper in PREFIX/lib/xdpload, profiles and the rules example in
# PREFIX/share/xdpload/conf. The wrapper finds the rest relative to itself,
# so DESTDIR staging and any PREFIX work.
#   tools/install.sh BUILD PREFIX [DESTDIR]
set -eu
build=$1 prefix=$2 destdir=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)
root="$destdir$prefix"
for f in libxdpload.so xdpload-options xdpload-stat xdpload-broker xdpload-tune; do
  [ -f "$build/$f" ] || { echo "install: $build/$f missing (run make first)" >&2; exit 1; }
done
install -d "$root/bin" "$root/lib/xdpload" "$root/share/xdpload/conf"
install -m 755 "$top/tools/xdpload" "$root/bin/xdpload"
install -m 755 "$build/xdpload-stat" "$root/bin/xdpload-stat"
install -m 755 "$build/libxdpload.so" "$root/lib/xdpload/libxdpload.so"
install -m 755 "$build/xdpload-options" "$root/lib/xdpload/xdpload-options"
install -m 755 "$build/xdpload-broker" "$root/lib/xdpload/xdpload-broker"
install -m 755 "$build/xdpload-tune" "$root/lib/xdpload/xdpload-tune"
install -m 644 "$top"/conf/*.conf "$top/conf/rules.example" "$top/conf/broker-policy.example" \
  "$top/conf/xdpload-daemon@.service" "$root/share/xdpload/conf/"
echo "installed into $root: bin/xdpload bin/xdpload-stat lib/xdpload/ share/xdpload/conf/"
