// The extensions API (include/xdpload/extensions.h), served by the preloaded
// library. A program links the stub library; under xdpload its calls reach
// these definitions (the preload comes first in the dynamic linker's order,
// or the static stub finds them with dlsym(RTLD_NEXT)).
#include "include/xdpload/extensions.h"

#include <dlfcn.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "shim/ext/extensions_present.h"
#include "shim/ext/thread_spin.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/tcp_socket.h"
#include "shim/socket/udp_socket.h"

extern "C" {
#include "lwip/stats.h"
}

#define XDPLOAD_EXT extern "C" __attribute__((visibility("default")))

// The version this library serves; the static stub reads it.
XDPLOAD_EXT const unsigned xdpload_ext_lib_version[2] = {XDPLOAD_EXT_VERSION_MAJOR,
                                                         XDPLOAD_EXT_VERSION_MINOR};

namespace xdpload::shim {

namespace {

// The calling thread's choices: which kinds it chose for (set), and of
// those which spin (on). Bit k is kind k; bit 0 is XDPLOAD_SPIN_ALL's.
__attribute__((tls_model("initial-exec"))) thread_local unsigned t_spin_set = 0;
__attribute__((tls_model("initial-exec"))) thread_local unsigned t_spin_on = 0;

constexpr unsigned kAllKinds = (1u << kSpinKinds) - 1;

// The program's stub says which header it was built with (the shared stub
// exports it; a statically linked one checks us instead): an incompatible
// one gets "not present" from every call, said once.
bool compatible() {
  static int state = -1;
  int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
  if (s >= 0) return s != 0;
  s = 1;
  if (auto* v = static_cast<const unsigned*>(dlsym(RTLD_DEFAULT, "xdpload_ext_version"))) {
    if (v[0] != XDPLOAD_EXT_VERSION_MAJOR || v[1] > XDPLOAD_EXT_VERSION_MINOR) {
      s = 0;
      log_at(kLogError,
             "the program was built for extensions %u.%u, this xdpload serves %u.%u: the "
             "extensions answer as if xdpload were not there",
             v[0], v[1], unsigned(XDPLOAD_EXT_VERSION_MAJOR), unsigned(XDPLOAD_EXT_VERSION_MINOR));
    }
  }
  __atomic_store_n(&state, s, __ATOMIC_RELEASE);
  return s != 0;
}

}  // namespace

bool extensions_present() { return Runtime::get().enabled() && compatible(); }

int64_t thread_spin_ns(SpinKind kind, int64_t process_ns) {
  const unsigned bit = 1u << kind;
  if (!(t_spin_set & bit)) return process_ns;
  if (!(t_spin_on & bit)) return 0;
  return process_ns > 0 ? process_ns : INT64_MAX;
}

}  // namespace xdpload::shim

using namespace xdpload;
using namespace xdpload::shim;

XDPLOAD_EXT int xdpload_is_present(void) { return extensions_present() ? 1 : 0; }

XDPLOAD_EXT int xdpload_thread_set_spin(enum xdpload_spin_type type, int spin) {
  if (int(type) < 0 || int(type) >= XDPLOAD_SPIN_MAX) return -EINVAL;
  if (!extensions_present()) return 0;
  static_assert(int(XDPLOAD_SPIN_MAX) == int(kSpinKinds), "one SpinKind per xdpload_spin_type");
  const unsigned bits = type == XDPLOAD_SPIN_ALL ? kAllKinds : 1u << type;
  t_spin_set |= bits;
  if (spin) t_spin_on |= bits;
  else t_spin_on &= ~bits;
  return 0;
}

XDPLOAD_EXT int xdpload_thread_get_spin(unsigned* spinning) {
  if (!extensions_present()) return -ENOSYS;
  if (!spinning) return -EFAULT;
  const int64_t process_ns = Runtime::get().spin_ns();
  unsigned m = 0;
  for (int k = 1; k < kSpinKinds; ++k)
    if (thread_spin_ns(SpinKind(k), process_ns) > 0) m |= 1u << k;
  if (m == (kAllKinds & ~1u)) m |= 1u;  // all of them: XDPLOAD_SPIN_ALL's bit too
  *spinning = m;
  return 0;
}

XDPLOAD_EXT int xdpload_fd_stat(int fd, struct xdpload_fd_info* info, size_t size) {
  if (!extensions_present()) return 0;
  if (info && size < offsetof(struct xdpload_fd_info, remote_ip) + sizeof info->remote_ip) return -EINVAL;
  Runtime& rt = Runtime::get();
  Socket* s = rt.fds().get(fd);
  if (!s || !s->accelerated) return 0;
  // The local address as getsockname() gives it (a UDP socket's kernel
  // twin knows the source address its connect chose).
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  if (op_getsockname(s, fd, reinterpret_cast<sockaddr*>(&name), &len) < 0) return 0;
  stack::CoreGuard g;
  if (rt.fds().get(fd) != s || !s->accelerated || s->departed) return 0;
  if (info) {
    struct xdpload_fd_info out {};
    out.protocol = s->kind == Socket::Kind::Tcp ? IPPROTO_TCP : IPPROTO_UDP;
    out.listening = s->kind == Socket::Kind::Tcp &&
                    static_cast<TcpSocket*>(s)->state == TcpSocket::State::Listening;
    if (name.ss_family == AF_INET) {
      const auto& sin = reinterpret_cast<const sockaddr_in&>(name);
      out.local_ip = sin.sin_addr.s_addr;
      out.local_port = ntohs(sin.sin_port);
    } else {
      out.local_ip = s->local.ip;  // (an IPv6 socket's v4-mapped address)
      out.local_port = s->local.port;
    }
    out.remote_ip = s->remote.ip;
    out.remote_port = s->remote.port;
    memcpy(info, &out, std::min(size, sizeof out));
  }
  return 1;
}

XDPLOAD_EXT int xdpload_get_counters(struct xdpload_counters* out, size_t size) {
  if (!extensions_present()) return -ENOSYS;
  if (!out) return -EFAULT;
  if (size < offsetof(struct xdpload_counters, accelerated_udp) + sizeof(uint64_t))
    return -EINVAL;  // the fields of 1.0
  Runtime& rt = Runtime::get();
  stack::CoreGuard g;
  if (!rt.stack()) return -ENODEV;
  const rings::PortCounters& p = rt.stack()->port()->counters();
  const ShimCounters& c = rt.counters();
  const auto& m = lwip_stats.mib2;
  struct xdpload_counters v {};
  v.rx_frames = p.rx_frames;
  v.rx_bytes = p.rx_bytes;
  v.tx_frames = p.tx_frames;
  v.tx_bytes = p.tx_bytes;
  v.tcp_in_segs = m.tcpinsegs;
  v.tcp_out_segs = m.tcpoutsegs;
  v.tcp_retransmits = m.tcpretranssegs;
  v.udp_in_datagrams = m.udpindatagrams;
  v.udp_out_datagrams = m.udpoutdatagrams;
  v.udp_rx_dropped = c.udp_rx_dropped;
  v.kicks = p.kicks + p.kicks_after_release;
  v.blocked_waits = c.blocked_waits;
  v.accelerated_tcp = c.accelerated_tcp;
  v.accelerated_udp = c.accelerated_udp;
  v.zc_recv_bytes = c.zc_recv_bytes;
  v.zc_send_bytes = c.zc_send_bytes;
  v.zc_send_copied = c.zc_send_copied;
  v.zc_buffers_held = rt.lent().lent();
  v.rx_copies = c.rx_copies;
  memcpy(out, &v, std::min(size, sizeof v));
  return 0;
}
