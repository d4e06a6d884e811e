# tests/lib/common.sh: what every test script shares.
# Exit codes: 0 pass, 1 fail, 77 skip.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${XDPLOAD_BUILD:-$TOP/build}
. "$TOP/tests/lib/netns.sh"
. "$TOP/tests/lib/peers.sh"

_fails=0
fail() { echo "FAIL: $*"; _fails=$((_fails + 1)); }
pass() { echo "ok: $*"; }
skip() { echo "skip: $*"; exit 77; }
# check DESCRIPTION CMD...: runs CMD, records pass or fail.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"; }
finish() {
  if [ "$_fails" -gt 0 ]; then
    echo "$_fails check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
# XDP program attached to an interface inside a namespace?
xdp_attached() { ip netns exec "$1" ip link show "$2" | grep -q 'prog/xdp'; }
export -f xdp_attached
