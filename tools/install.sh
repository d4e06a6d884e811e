#!/usr/bin/env bash
# make install: the wrapper and xdpload-stat in PREFIX/bin, the library and
# its option helper in PREFIX/lib/xdpload, profiles and the rules example in
# PREFIX/share/xdpload/conf, the extensions API's header in
# PREFIX/include/xdpload and its stub library in PREFIX/lib. The wrapper finds the rest relative to itself,
# so DESTDIR staging and any PREFIX work.
#   tools/install.sh BUILD PREFIX [DESTDIR]
set -eu
build=$1 prefix=$2 destdir=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)
root="$destdir$prefix"
for f in libxdpload.so xdpload-options xdpload-stat xdpload-broker xdpload-tune libxdpload_ext.so \
  libxdpload_ext.a; do
  [ -f "$build/$f" ] || { echo "install: $build/$f missing (run make first)" >&2; exit 1; }
done
install -d "$root/bin" "$root/lib/xdpload" "$root/share/xdpload/conf" "$root/include/xdpload"
install -m 755 "$top/tools/xdpload" "$root/bin/xdpload"
install -m 755 "$build/xdpload-stat" "$root/bin/xdpload-stat"
install -m 755 "$build/libxdpload.so" "$root/lib/xdpload/libxdpload.so"
install -m 755 "$build/xdpload-options" "$root/lib/xdpload/xdpload-options"
install -m 755 "$build/xdpload-broker" "$root/lib/xdpload/xdpload-broker"
install -m 755 "$build/xdpload-tune" "$root/lib/xdpload/xdpload-tune"
install -m 644 "$top"/conf/*.conf "$top/conf/rules.example" "$top/conf/broker-policy.example" \
  "$top/conf/xdpload-daemon@.service" "$root/share/xdpload/conf/"
# The extensions API: its header and the stub programs link against.
install -m 644 "$top/include/xdpload/extensions.h" "$root/include/xdpload/extensions.h"
install -m 755 "$build/libxdpload_ext.so" "$root/lib/libxdpload_ext.so"
install -m 644 "$build/libxdpload_ext.a" "$root/lib/libxdpload_ext.a"
echo "installed into $root: bin/xdpload bin/xdpload-stat lib/xdpload/ lib/libxdpload_ext.{so,a} include/xdpload/ share/xdpload/conf/"
