#!/usr/bin/env bash
# Installs every Debian package xdpload needs to build, test, demo and bench,
# and fetches lwIP 2.1.3 from Debian's source package into the build tree.
# Idempotent: packages already present are not touched, an lwIP tree that is
# already unpacked and verified is kept. Run as root on Debian 12.
set -euo pipefail

build_dir=${1:-build}
lwip_version=2.1.3+dfsg1
lwip_orig_sha256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24

packages=(
  # build
  build-essential g++ make pkg-config clang llvm xxd dpkg-dev patch
  libxdp-dev libbpf-dev libelf-dev zlib1g-dev liburing-dev libnuma-dev
  libgtest-dev libbenchmark-dev
  # libFuzzer's runtime for make fuzz (only recommended by clang, which we install without)
  libclang-rt-14-dev
  # AF_XDP and network tooling used by tests, demo and bench
  xdp-tools bpftool iproute2 iputils-ping iputils-arping ethtool
  # unmodified peers and loads
  netcat-openbsd socat curl iperf3 sockperf redis-server redis-tools
  nginx-light wrk memcached libmemcached-tools python3 python3-scapy haproxy apache2
  # forking servers (the fork issue): PostgreSQL (fork per connection, pgbench), gunicorn
  postgresql postgresql-contrib gunicorn
  # Node.js: a cluster passes its connections to workers (SCM_RIGHTS)
  nodejs
  # a DNS resolver (UDP with IP_PKTINFO, a Fast Open listener) and its client
  unbound bind9-dnsutils
  # inspection and reporting
  tshark hyperfine gnuplot-nox procps linux-perf
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  # The servers are installed for the tests to run in namespaces, not as
  # the host's services: keep their packages from starting them (nginx and
  # apache would both want port 80) while they install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# lwIP: Debian's source package, patches applied by dpkg-source.
src_root="$build_dir/lwip-src"
tree="$src_root/lwip-$lwip_version"
if [ -f "$tree/.verified" ]; then
  exit 0
fi

has_deb_src() {
  grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}
if ! has_deb_src; then
  echo "deps: adding a deb-src entry for Debian 12 (none was configured)"
  cat > /etc/apt/sources.list.d/xdpload-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi

rm -rf "$src_root"
mkdir -p "$src_root"
( cd "$src_root" && apt-get source -qq "lwip=2.1.3+dfsg1-2" >/dev/null 2>&1 ) || \
( cd "$src_root" && apt-get source -qq lwip >/dev/null 2>&1 )
orig="$src_root/lwip_${lwip_version}.orig.tar.xz"
got=$(sha256sum "$orig" | cut -d' ' -f1)
if [ "$got" != "$lwip_orig_sha256" ]; then
  echo "deps: $orig has sha256 $got, expected $lwip_orig_sha256" >&2
  exit 1
fi
[ -f "$tree/src/core/tcp.c" ] || { echo "deps: lwIP tree not unpacked at $tree" >&2; exit 1; }
touch "$tree/.verified"
echo "deps: lwIP $lwip_version ready in $tree (orig sha256 verified)"
