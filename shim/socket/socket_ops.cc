#include "shim/socket/socket_ops.h"

#include <fcntl.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>
#include <cerrno>
#include <cstring>

#include "rings/stage_trace.h"
#include "shim/wait/epoll_set.h"
#include "shim/ext/thread_spin.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/sockaddr_util.h"
#include "shim/socket/tcp_socket.h"
#include "shim/clock/tsc_clock.h"
#include "shim/socket/cmsg_writer.h"
#include "shim/socket/passed_connections.h"
#include "shim/socket/udp_socket.h"
#include "shim/socket/user_memory.h"
#include "shim/stats/option_names.h"

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24  // linux/in.h
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // linux/in.h, kernel 6.3; glibc 2.36 lacks it
#endif
}

namespace xdpload::shim {

extern thread_local int t_inside;

using stack::CoreGuard;

namespace {

Runtime& rt() { return Runtime::get(); }

int neg_errno() { return -errno; }

// The socket leaves the shim: its descriptors are plain kernel sockets from
// now on. Lock held.
void drop_to_kernel(Socket* s) {
  const pid_t me = process_id();
  for (const Descriptor& x : s->descriptors)
    if (x.pid == me) {
      XLOG(kLogDecision, "%s socket at descriptor %d (local port %u) is the kernel's from now on",
           s->kind == Socket::Kind::Tcp ? "TCP" : "UDP", x.fd, unsigned(s->local.port));
      rt().fds().take(x.fd);
    }
  s->forget_descriptors(me);
  // The kernel socket is what the epoll sets watch from now on (one that
  // left them while it was a connection on the stack goes back first).
  join_kernel_epolls(s);
  detach_from_epolls(s);
  s->release();
  ++rt().counters().kernel_sockets;
  // Other processes of the family hold it too: their descriptors are the
  // same kernel socket, and they forget ours at their next call. A call
  // waiting on it (another thread, another process) wakes and is the
  // kernel's from there (left_for_kernel).
  if (s->fd_refs > 0 || s->holds > 0) __atomic_store_n(&s->departed, true, __ATOMIC_RELEASE);
  s->waiters.wake_all();
  rt().maybe_delete(s);
}

// The socket left the shim for the kernel while this call waited on it
// (another process of the family exec'd with it: hand_shared_to_kernel;
// another thread set a kernel-only option): this process forgets it, as
// its next call would, and the call is the kernel's (kNotOnStack). The
// caller holds it (OpHold). Lock held.
bool left_for_kernel(Socket* s, int fd) {
  if (!__atomic_load_n(&s->departed, __ATOMIC_ACQUIRE)) return false;
  if (rt().fds().get(fd) == s) {
    rt().fds().take(fd);
    s->forget_descriptors(process_id(), fd);
  }
  return true;
}

// Test seam (XL_TEST_DIE_HOLDING_LOCK=N): a TCP send of exactly N bytes,
// or with N = -1 an accept(), kills its process with the lock held, as
// SIGKILL may at any moment (tests/shim/shim-fork-die-holding-lock.sh).
// kAcceptDeath stands for the accept.
constexpr long kAcceptDeath = -1;
void maybe_die_holding_lock(long what) {
  static const char* v = getenv("XL_TEST_DIE_HOLDING_LOCK");
  if (v && atol(v) == what) kill(getpid(), SIGKILL);
  // Test seam (XL_TEST_SPIN_HOLDING_LOCK=N): the same send spins for ever
  // with the lock held, as a thread caught in a livelock of the stack
  // would (tests/shim/shim-fatal-signal.sh: a fatal signal still ends the
  // program).
  static const char* spin = getenv("XL_TEST_SPIN_HOLDING_LOCK");
  if (spin && atol(spin) == what)
    for (;;) _mm_pause();
}

// A socket inherited from the parent in a forked child: usable only to close.
int in_child(int fd) {
  static bool warned = false;
  if (!warned) {
    warned = true;
    log_at(kLogError,
           "descriptor %d was an accelerated socket in the parent process; a forked child "
           "cannot use it (EOPNOTSUPP), only close it",
           fd);
  }
  return -EOPNOTSUPP;
}

#define CHILD_GUARD(fd) \
  if (rt().forked_child()) return in_child(fd)


// Binds the kernel socket to ip:port in the socket's own family, unless
// the kernel has bound it already (it autobinds a UDP socket inside a send
// that then fails, for one).
int kernel_bind(Socket* s, int fd, SockAddr a) {
  SockAddr now;
  if (kernel_local(fd, &now) && now.port != 0) return 0;
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(a, s->v6, &ss);
  return libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : -errno;
}

// A UDP socket's port taken inside a connect() or a send, as Linux's
// inet_autobind takes it: no port left is EAGAIN there, where a bind() to
// port 0 says EADDRINUSE.
int udp_autobind(Socket* s, int fd, SockAddr a) {
  int rc = kernel_bind(s, fd, a);
  return rc == -EADDRINUSE ? -EAGAIN : rc;
}

TcpSocket* tcp(Socket* s) { return static_cast<TcpSocket*>(s); }
UdpSocket* udp(Socket* s) { return static_cast<UdpSocket*>(s); }

// A UDP socket on the stack whose port a disconnect released: the kernel
// twin takes a port again as Linux's inet_autobind would (or has one from a
// bind, connect or send made through it since), and the stack binds the
// same. Lock held.
int udp_take_port(Socket* s, int fd) {
  UdpSocket* u = udp(s);
  if (u->pcb) return 0;
  // The address a bind locked stays (Linux keeps it through the disconnect).
  SockAddr now;
  if (!kernel_local(fd, &now)) return -EINVAL;
  if (int rc = udp_autobind(s, fd, SockAddr{now.ip, 0}); rc < 0) return rc;
  if (!kernel_local(fd, &s->local)) return -EINVAL;
  return u->bind_pcb();
}

// The kernel's ephemeral range (net.ipv4.ip_local_port_range), read once.
void ephemeral_range(uint16_t* lo, uint16_t* hi) {
  static uint16_t range[2] = {0, 0};
  if (!range[0]) {
    unsigned a = 32768, b = 60999;
    if (FILE* f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) {
      if (fscanf(f, "%u %u", &a, &b) != 2 || a == 0 || b < a || b > 65535) a = 32768, b = 60999;
      fclose(f);
    }
    range[1] = uint16_t(b);
    __atomic_store_n(&range[0], uint16_t(a), __ATOMIC_RELEASE);
  }
  *lo = __atomic_load_n(&range[0], __ATOMIC_ACQUIRE);
  *hi = range[1];
}

// net.ipv4.tcp_fastopen of this namespace, read once: TFO_CLIENT_ENABLE
// (1) and TFO_SERVER_ENABLE (2) among its bits.
int tcp_fastopen_sysctl() {
  static int value = -1;
  if (__atomic_load_n(&value, __ATOMIC_RELAXED) < 0) {
    int v = 1;  // the kernel's default: the client side only
    if (FILE* f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "re")) {
      if (fscanf(f, "%d", &v) != 1 || v < 0) v = 1;
      fclose(f);
    }
    __atomic_store_n(&value, v, __ATOMIC_RELAXED);
  }
  return __atomic_load_n(&value, __ATOMIC_RELAXED);
}

bool tcp_fastopen_client_enabled() { return tcp_fastopen_sysctl() & 1; }

// TCP_FASTOPEN on a socket that will listen: the stack accepts its
// connections with the ordinary handshake (data a SYN carries is not
// acknowledged, and the client sends it again after), which is what Linux
// does while net.ipv4.tcp_fastopen lacks its server bit, its default. The
// listener stays accelerated. Where the namespace has asked for Fast Open
// servers, that difference is said once. Lock not needed.
void note_fast_open_server(int fd) {
  static bool said = false;
  if (!(tcp_fastopen_sysctl() & 2) || __atomic_exchange_n(&said, true, __ATOMIC_RELAXED)) {
    XLOG(kLogDecision, "descriptor %d: TCP_FASTOPEN kept; its connections open with the ordinary handshake", fd);
    return;
  }
  log_at(kLogError,
         "TCP socket at descriptor %d set TCP_FASTOPEN: it stays accelerated, and its connections "
         "open with the ordinary handshake (data in a SYN is sent again by the client after it), "
         "though net.ipv4.tcp_fastopen enables Fast Open servers (said once)",
         fd);
}

// IP_BIND_ADDRESS_NO_PORT: a bind takes the address alone, connect() the
// port (HAProxy's and Envoy's source binds).
bool socket_says_no_port(int fd) {
  int v = 0;
  socklen_t n = sizeof v;
  return libc::getsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, &n) == 0 && v;
}

bool set_no_port(int fd, bool on) {
  int v = on;
  return libc::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, sizeof v) == 0;
}

// The namespace's ephemeral range narrowed by the socket's own
// IP_LOCAL_PORT_RANGE, as inet_sk_get_local_port_range narrows it: each
// end the socket sets that lies within the namespace's.
void socket_port_range(int fd, uint16_t* lo, uint16_t* hi, uint32_t* own_range) {
  ephemeral_range(lo, hi);
  uint32_t& own = *own_range;
  own = 0;
  socklen_t n = sizeof own;
  if (libc::getsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &own, &n) != 0) own = 0;
  if (!own) return;
  const uint16_t own_lo = uint16_t(own & 0xffff), own_hi = uint16_t(own >> 16);
  const uint16_t sys_lo = *lo, sys_hi = *hi;
  if (sys_lo <= own_lo && own_lo <= sys_hi) *lo = own_lo;
  if (sys_lo <= own_hi && own_hi <= sys_hi) *hi = own_hi;
}

// Binds the kernel socket on `ip` to exactly `port` as a bind() to port 0
// would: the kernel's choice, restricted to that one port
// (IP_LOCAL_PORT_RANGE, kernel 6.3+), then the socket's own range `old`
// again. -ENOPROTOOPT on older kernels.
int bind_in_one_port_range(Socket* s, int fd, uint32_t ip, uint16_t port, uint32_t old) {
  const uint32_t only = uint32_t(port) | uint32_t(port) << 16;
  if (libc::setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &only, sizeof only) != 0) return -errno;
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(SockAddr{ip, 0}, s->v6, &ss);
  int rc = libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : -errno;
  // The program's own range (or none) again: it governs its later binds.
  libc::setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &old, sizeof old);
  // (A port outside the namespace's range is not restricted so: whatever
  // the kernel gave is reserved, and the caller reads it back.)
  return rc;
}

// Binds the kernel socket on `ip` to a port as a bind() to port 0 does,
// exactly `port` if not 0 (bind_in_one_port_range, the socket's own range
// `own_range` restored after), else the kernel's pick within the socket's
// own range. Such a socket has no SOCK_BINDPORT_LOCK, so the kernel
// releases the port when the socket's connection ends, as it does for a
// port connect() chose (release_twin_port). (IP_BIND_ADDRESS_NO_PORT must
// be off: bind_client_port sees to it.)
int bind_as_kernel_choice(Socket* s, int fd, uint32_t ip, uint16_t port, uint32_t own_range) {
  if (port) return bind_in_one_port_range(s, fd, ip, port, own_range);
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(SockAddr{ip, 0}, s->v6, &ss);
  return libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : -errno;
}

// bind_client_port's binds, on the range lo..hi.
int take_client_port(Socket* s, int fd, uint32_t ip, bool keep_address, uint16_t lo, uint16_t hi,
                     uint32_t own_range) {
  uint32_t span = uint32_t(hi - lo) + 1;
  uint32_t start = uint32_t(mono_ns() >> 10) * 2654435761u;
  static bool range_option = true;  // false once the kernel lacks it
  for (int i = 0; i < 64; ++i) {
    uint16_t port = uint16_t(lo + (start + uint32_t(i) * 7919u) % span);
    {
      CoreGuard g;
      if (rt().port_in_use(PortKey{IPPROTO_TCP, port})) continue;
    }
    int rc = -ENOPROTOOPT;
    if (__atomic_load_n(&range_option, __ATOMIC_RELAXED)) {
      // On the wildcard address, as connect()'s autobind leaves it to a
      // disconnect to forget the source address (inet_reset_saddr, which a
      // locked address would not allow): the connection's own address is
      // the PCB's (getsockname while it lives). An address the program
      // bound stays (keep_address).
      rc = bind_as_kernel_choice(s, fd, keep_address ? ip : INADDR_ANY, port, own_range);
      // An older kernel (for good), or this socket's options say no (this
      // time): the explicit bind.
      if (rc == -ENOPROTOOPT) __atomic_store_n(&range_option, false, __ATOMIC_RELAXED);
      if (rc == -EOPNOTSUPP || rc == -EINVAL || rc == -EPERM) rc = -ENOPROTOOPT;
      if (rc == 0 && s->kind == Socket::Kind::Tcp) {
        CoreGuard g;
        tcp(s)->twin_port_chosen = true;
      }
    }
    if (rc == -ENOPROTOOPT) {
      // An older kernel: an explicit bind, which locks the port to the
      // socket (SOCK_BINDPORT_LOCK) until it closes, and a disconnect
      // keeps it.
      sockaddr_storage ss;
      socklen_t len = make_sockaddr(SockAddr{ip, port}, s->v6, &ss);
      rc = libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : -errno;
      if (rc == 0) {
        CoreGuard g;
        s->port_fixed = true;
      }
    }
    if (rc == 0) return 0;
    if (rc != -EADDRINUSE) return rc;
  }
  // The kernel's choice over the whole range, by a bind of its own (a
  // socket a disconnect left unbound still names its old port), on the
  // same address as the loop's (not locked unless the program's). No port
  // left is bind()'s EADDRINUSE there, but this is connect()'s port, and
  // its autobind says EADDRNOTAVAIL (__inet_hash_connect), as programs
  // expect ("Cannot assign requested address"); so is a bind that took no
  // port after all (a cgroup bind program may say so).
  int rc = bind_as_kernel_choice(s, fd, keep_address ? ip : INADDR_ANY, 0, own_range);
  if (rc < 0) return rc == -EADDRINUSE ? -EADDRNOTAVAIL : rc;
  SockAddr got;
  if (!kernel_local(fd, &got) || got.port == 0) return -EADDRNOTAVAIL;
  if (s->kind == Socket::Kind::Tcp) {  // (no SOCK_BINDPORT_LOCK: released as the kernel's choice)
    CoreGuard g;
    tcp(s)->twin_port_chosen = true;
  }
  return 0;
}

// Binds a client's kernel socket to a local port of the ephemeral range
// that the stack does not use either. The kernel keeps a port reserved
// only while some process holds the socket that reserved it, and in a
// process family that process may be gone while lwIP still uses the port
// (a child's connection in TIME_WAIT): the kernel would hand it out again,
// and lwIP refuse the connection (EADDRINUSE). Ports are tried from a random
// start, as the kernel does; port 0 (the kernel's choice) after 64 misses.
int bind_client_port(Socket* s, int fd, uint32_t ip, bool unbound = false, bool keep_address = false) {
  SockAddr now;
  if (!unbound && kernel_local(fd, &now) && now.port != 0) return 0;
  uint16_t lo, hi;
  uint32_t own_range;
  socket_port_range(fd, &lo, &hi, &own_range);
  // A socket bound with IP_BIND_ADDRESS_NO_PORT would take no port: the
  // option is off for these binds (a socket without a port may bind
  // again) and on again after, as the program left it.
  const bool no_port = socket_says_no_port(fd);
  if (no_port) set_no_port(fd, false);
  int rc = take_client_port(s, fd, ip, keep_address, lo, hi, own_range);
  if (no_port) set_no_port(fd, true);
  return rc;
}

// Linux releases the port the kernel chose for a connection when the
// connection ends (reset, refused, disconnected: tcp_set_state(TCP_CLOSE)
// puts the port unless SOCK_BINDPORT_LOCK), so the socket can bind() again
// and its next connect() or listen() takes a new port. The stack's
// connection ended: its kernel twin lets the port go the only way a socket
// in TCP_CLOSE can, a listen() and a disconnect (tcp_disconnect of a
// listener closes it, which puts the port). No SYN can reach that listener
// from the network (the port is steered to the stack until a moment ago,
// and nobody was told of it); a local connect() in those microseconds
// would be reset. Not while the stack still uses the port (a connection of
// this socket in TIME_WAIT, whose reservation is this same socket).
// Lock held (the two calls wait for nothing), from the process whose
// descriptor `fd` is.
void release_twin_port_locked(Socket* s, int fd) {
  if (s->kind != Socket::Kind::Tcp || !still(s, fd) || !s->accelerated) return;
  tcp(s)->let_twin_port_go(fd, 0);
}

void release_twin_port(Socket* s, int fd) {
  if (s->kind != Socket::Kind::Tcp) return;
  CoreGuard g;
  release_twin_port_locked(s, fd);
}

void raise_sigpipe() {
  // Linux sends it to the thread that wrote.
  pthread_kill(pthread_self(), SIGPIPE);
}

// The kernel socket behind `fd` is about to serve the program's calls
// itself: it blocks as the program's socket does (a listener's was made
// non-blocking for our own use of it).
void twin_blocks_as_program(const Socket* s, int fd) {
  int fl = libc::fcntl(fd, F_GETFL);
  if (fl >= 0) libc::fcntl(fd, F_SETFL, s->nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

}  // namespace

void died_holding_lock(void* subject) {
  // The frames it held outside every ring and queue come back first.
  if (rt().stack()) {
    if (uint32_t n = rt().stack()->driver().recover_frames_in_hand())
      XLOG(kLogInfo, "%u frame(s) the process that died holding the stack lock had in hand: given back",
           n);
  }
  // Only a socket the family still lists is trusted as one.
  Socket* s = nullptr;
  for (Socket* x = rt().live_sockets(); x; x = x->live_next)
    if (x == subject) s = x;
  // A connection (a listener has no connection to reset: lwIP must never
  // abort a listening PCB, and its queue is left to the survivors).
  if (s && s->accelerated && s->kind == Socket::Kind::Tcp && tcp(s)->pcb &&
      tcp(s)->state != TcpSocket::State::Listening && tcp(s)->pcb->state != LISTEN) {
    // Its queues and its connection's state may be half changed: the
    // connection is reset (RST to the peer; ECONNRESET to the survivors'
    // next call), as when the stack can no longer carry it.
    TcpSocket* t = tcp(s);
    log_at(kLogError,
           "a process of this family died holding the stack lock while using the TCP connection "
           "from port %u to %s:%u: it is reset (ECONNRESET); the stack goes on",
           unsigned(s->local.port), inet_ntoa(in_addr{s->remote.ip}), unsigned(s->remote.port));
    t->reset_connection();
    t->drop_queue();
    rt().stack()->flush();  // the RST now, not at the next flush
    return;
  }
  static bool said = false;
  if (said) return;
  said = true;
  log_at(kLogError, "a process of this family died holding the stack lock%s; the stack goes on",
         s ? " while using a socket with no connection to reset" : "");
}

void hand_to_kernel(Socket* s) {
  // (A vfork child's descriptor table is its own: the parent's numbers may
  // name other files there. The vfork paths set the twin's flags through
  // the child's own descriptor instead.)
  if (!rt().vfork_child())
    for (const Descriptor& d : s->descriptors)
      if (d.pid == process_id()) twin_blocks_as_program(s, d.fd);
  const bool listener = s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Listening;
  const uint16_t port = s->local.port;
  drop_to_kernel(s);
  // Connections the listener gave the stack may still use its port, which
  // then stays steered: the kernel, which listens now, gets its new ones.
  if (listener) rt().share_port_with_kernel(port);
}

namespace {

// A connection the program about to be exec'd inherits (descriptor `fd`
// of this process): the kernel's with its state, said at XDPLOAD_LOG=2
// (`how`: "exec", "exec after vfork", "posix_spawn"...), or left on the stack, said once at
// the default level. Lock held.
void hand_inherited_connection(Socket* s, int fd, const char* how) {
  ErrorText why;
  if (tcp(s)->hand_connection_to_kernel(fd, &why) != 0) {
    log_at(kLogError,
           "descriptor %d: the connection it holds stays on the stack, which the program this "
           "process execs cannot reach: %s",
           fd, why.c_str());
    return;
  }
  if (rt().vfork_child()) twin_blocks_as_program(s, fd);
  XLOG(kLogDecision, "descriptor %d: connection handed to the kernel with its state (%s)", fd, how);
  hand_to_kernel(s);
}

// A listener or UDP socket that the program this process execs inherits
// while the family's other processes (or, after vfork, the suspended
// parent) hold it too. On Linux it is one socket for all of them, the new
// program included (systemd-style socket activation, nginx's binary
// upgrade, inetd's "wait" services), and only the kernel can serve it to a
// new image: it becomes the kernel's for the whole family, whose
// descriptors are the same kernel socket. The port's new connections and
// datagrams go to the kernel from then on.
// - A listener's connections already queued on the stack go to the new
//   program, which holds it as `fd_in_new_program`, each with its state
//   (shim/socket/passed_connections.h), as Linux gives them. Where they
//   cannot (the new program does not load this library, a hand-over is
//   refused) they are reset (said): they cannot move to the kernel's queue,
//   and left on the stack for the family's accept() they would wait for
//   ever where the family does not accept (socket activation's parent,
//   inetd's), the very connection that made it start the program among
//   them.
// - A UDP socket's datagrams queued on the stack are dropped.
// - Calls of the family waiting on it go on in the kernel (left_for_kernel).
// Said once at the default level: FD_CLOEXEC on the descriptor keeps the
// socket accelerated. Lock held.
void hand_shared_to_kernel(Socket* s, int fd, int fd_in_new_program) {
  static bool said = false;
  if (!said) {
    said = true;
    log_at(kLogError,
           "descriptor %d (%s port %u) is inherited by the program this process execs: the socket "
           "is the kernel's from now on, in the family's other processes too (FD_CLOEXEC on it "
           "would keep it accelerated)",
           fd, s->kind == Socket::Kind::Tcp ? "TCP" : "UDP", unsigned(s->local.port));
  }
  if (rt().vfork_child()) twin_blocks_as_program(s, fd);
  if (s->kind == Socket::Kind::Tcp) pass_waiting_connections(tcp(s), fd_in_new_program);
  if (s->kind == Socket::Kind::Tcp && !tcp(s)->accept_queue.empty()) {
    TcpSocket* l = tcp(s);
    log_at(kLogError,
           "descriptor %d: %zu connection(s) waiting on the listener are reset: they cannot move "
           "to the kernel's queue",
           fd, l->accept_queue.size());
    l->reset_waiting_connections();
  }
  XLOG(kLogDecision, "descriptor %d: inherited by the program this process execs: the kernel's", fd);
  hand_to_kernel(s);
}

// A listener or UDP socket: the ones the family shares with the new
// program (a connection goes with its state; anything else stays).
bool shared_kind(const Socket* s) {
  return s->kind == Socket::Kind::Udp ||
         (s->kind == Socket::Kind::Tcp && static_cast<const TcpSocket*>(s)->state ==
                                              TcpSocket::State::Listening);
}

// A vfork child (Python's subprocess) execs: its
// descriptor table is its own copy (what it dup2'd onto 0 and 1 is not in
// the family's records), the memory its suspended parent's. Its
// descriptors without FD_CLOEXEC that are a connection of the stack (found
// by the kernel socket's inode) become the kernel's with their state, for
// the parent too (the same kernel socket). Listeners and UDP sockets
// likewise, for the parent as well (hand_shared_to_kernel). Lock held.
void hand_vfork_inherited_to_kernel() {
  for (int fd = 0; fd < 1024; ++fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int fl = libc::fcntl(fd, F_GETFD);
    if (fl < 0 || (fl & FD_CLOEXEC)) continue;
    Socket* s = rt().live_sockets();
    while (s && !(s->twin_ino == uint64_t(st.st_ino) && s->accelerated)) s = s->live_next;
    if (!s) continue;
    if (s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Connected)
      hand_inherited_connection(s, fd, "exec after vfork");
    else if (shared_kind(s))
      hand_shared_to_kernel(s, fd, fd);
  }
}

}  // namespace

void hand_inherited_to_kernel() {
  if (!rt().enabled() || !rt().stack()) return;
  // (exec from a signal handler that interrupted this thread inside the
  // stack: the lock cannot be taken again; the sockets stay as they are.)
  if (stack::CoreLock::held_here()) return;
  if (rt().vfork_child()) {
    CoreGuard g;
    hand_vfork_inherited_to_kernel();
    return;
  }
  CoreGuard g;
  rt().exec_starts();
  rt().stats_before_exec();
  const pid_t me = process_id();
  std::vector<std::pair<Socket*, int>> inherited, closing;
  for (Socket* s = rt().live_sockets(); s; s = s->live_next) {
    if (!s->accelerated) continue;
    // Its descriptors all this process's and all FD_CLOEXEC: the exec closes
    // the socket, as the kernel would close it.
    bool closes = !s->descriptors.empty();
    int last_fd = -1;
    for (const Descriptor& d : s->descriptors) {
      if (d.pid != me) {
        closes = false;
        continue;
      }
      int fl = libc::fcntl(d.fd, F_GETFD);
      if (fl >= 0 && !(fl & FD_CLOEXEC)) inherited.emplace_back(s, d.fd);
      closes = closes && fl >= 0 && (fl & FD_CLOEXEC);
      last_fd = d.fd;
    }
    if (closes) closing.emplace_back(s, last_fd);
  }
  // A connection the exec closes: the kernel finishes it, as it finishes a
  // socket closed with data in flight (its unacknowledged bytes delivered,
  // then a FIN). Left on the stack it would die with this image, silently,
  // when this is the family's last process (the others would close it on
  // the stack once they saw this image gone). A listener or UDP socket:
  // the kernel's too, so that its port closes with the descriptor. (A
  // failed exec leaves them the kernel's; a listener's queued connections
  // and a UDP socket's queued datagrams are lost then.)
  for (auto& [s, fd] : closing) {
    if (!still(s, fd) || !s->accelerated) continue;
    if (s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Connected) {
      ErrorText why;
      if (tcp(s)->hand_connection_to_kernel(fd, &why) != 0) {
        // (A connection that cannot be handed over, one closed both ways
        // or still being made, closes on the stack here, as close() would
        // close it.)
        XLOG(kLogDecision,
             "descriptor %d: the exec closes it; the connection closes on the stack (%s)", fd,
             why.c_str());
      } else {
        XLOG(kLogDecision, "descriptor %d: the exec closes it: connection handed to the kernel, "
             "which finishes it", fd);
      }
    }
    hand_to_kernel(s);
  }
  for (auto& [s, fd] : inherited) {
    if (!still(s, fd) || !s->accelerated) continue;  // (handed over with another descriptor)
    const bool connection = s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Connected;
    bool others = false;
    for (const Descriptor& d : s->descriptors) others |= d.pid != me;
    if (connection) {
      hand_inherited_connection(s, fd, "exec");
    } else if (!others) {
      // (Its waiting connections go with it, as with a shared one.)
      if (s->kind == Socket::Kind::Tcp) pass_waiting_connections(tcp(s), fd);
      hand_to_kernel(s);
    } else if (shared_kind(s)) {
      hand_shared_to_kernel(s, fd, fd);
    }
    // (Else a TCP socket still connecting, or ended, that the family's
    // other processes hold: it stays theirs, on the stack.)
  }
}

void hand_spawned_to_kernel(const SpawnAction* actions, size_t n, const char* how,
                            bool connections_only) {
  if (!rt().enabled() || !rt().stack()) return;
  if (rt().vfork_child() || stack::CoreLock::held_here()) {
    // (From a vfork child, or a signal handler that interrupted this
    // thread inside the stack: the sockets stay as they are.)
    XLOG(kLogDecision, "%s %s: the sockets the new program inherits stay on the stack", how,
         rt().vfork_child() ? "from a vfork child" : "inside the stack");
    return;
  }
  CoreGuard g;
  // What each descriptor of the child will be: a socket of ours, and
  // whether it survives the exec (no FD_CLOEXEC, or the target of a dup2).
  std::map<int, std::pair<Socket*, bool>> child;
  for (int fd = 0; fd <= rt().fds().high(); ++fd) {
    Socket* s = rt().fds().get(fd);
    if (!s || !s->accelerated || s->departed) continue;
    const int fl = libc::fcntl(fd, F_GETFD);
    if (fl >= 0) child[fd] = {s, !(fl & FD_CLOEXEC)};
  }
  for (size_t i = 0; i < n; ++i) {
    const SpawnAction& a = actions[i];
    switch (a.kind) {
      case SpawnAction::kClose:
      case SpawnAction::kOpen:
        child.erase(a.fd);
        break;
      case SpawnAction::kCloseFrom:
        child.erase(child.lower_bound(a.fd), child.end());
        break;
      case SpawnAction::kDup2:
        if (auto it = child.find(a.fd); it == child.end()) {
          child.erase(a.newfd);
        } else if (a.fd == a.newfd) {
          it->second.second = true;  // (glibc clears FD_CLOEXEC then, as POSIX 2024 asks)
        } else {
          child[a.newfd] = {it->second.first, true};
        }
        break;
    }
  }
  // Each socket once, through a descriptor of this process that is it (a
  // connection with its state; a listener or UDP socket for the whole
  // family, this process included, as at exec).
  std::vector<Socket*> seen;
  const pid_t me = process_id();
  for (auto& [fd, what] : child) {
    Socket* s = what.first;
    if (!what.second || std::find(seen.begin(), seen.end(), s) != seen.end()) continue;
    seen.push_back(s);
    int mine = -1;
    for (const Descriptor& d : s->descriptors)
      if (d.pid == me) mine = d.fd;
    if (mine < 0 || !still(s, mine) || !s->accelerated) continue;
    if (s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Connected)
      hand_inherited_connection(s, mine, how);
    else if (shared_kind(s) && !connections_only)
      hand_shared_to_kernel(s, mine, fd);
  }
}

// ---- descriptors passed to another process (SCM_RIGHTS) ----

namespace {

// One socket of the stack whose descriptor `fd` the program sends to
// another process. The receiver's descriptor is the kernel socket (the
// twin): it works only once the socket is the kernel's. Lock held.
void hand_passed_socket(Socket* s, int fd) {
  static bool said = false;
  if (!said) {
    said = true;
    log_at(kLogError,
           "descriptor %d (%s port %u) is passed to another process (SCM_RIGHTS), which cannot "
           "reach this process's stack: the socket is the kernel's from now on, here too (further "
           "sockets passed so are handed over without this line)",
           fd, s->kind == Socket::Kind::Tcp ? "TCP" : "UDP", unsigned(s->local.port));
  }
  if (s->kind == Socket::Kind::Tcp) {
    TcpSocket* t = tcp(s);
    if (t->state == TcpSocket::State::Connected) {
      ErrorText why;
      if (t->hand_connection_to_kernel(fd, &why) != 0) {
        log_at(kLogError,
               "descriptor %d: passed to another process, but the connection cannot leave the "
               "stack (%s): the other process's copy of it does not work",
               fd, why.c_str());
        return;
      }
      XLOG(kLogDecision, "descriptor %d: passed to another process: connection handed to the "
           "kernel with its state", fd);
    } else if (t->state == TcpSocket::State::Connecting) {
      log_at(kLogError,
             "descriptor %d: passed to another process while its connection is being made on "
             "the stack: the other process's copy of it does not work",
             fd);
      return;
    } else if (t->state == TcpSocket::State::Listening && !t->accept_queue.empty()) {
      // (They cannot move to the kernel's queue; left on the stack, the
      // process that accepts from now on would never see them.)
      log_at(kLogError,
             "descriptor %d: %zu connection(s) waiting on the listener are reset: they cannot "
             "move to the kernel's queue",
             fd, t->accept_queue.size());
      t->reset_waiting_connections();
    }
  }
  // A UDP socket's datagrams queued on the stack are dropped; calls of the
  // family waiting on the socket go on in the kernel (left_for_kernel).
  hand_to_kernel(s);
}

// Calls `each(descriptor)` for the descriptors of the SCM_RIGHTS messages
// of control buffer `m` (the program's memory, read a header at a time:
// sendmsg is async-signal-safe, no allocation). False, having stopped,
// where the kernel would refuse the whole call (EINVAL: a header that runs
// past the buffer, more than SCM_MAX_FD descriptors) or cannot read it.
template <typename Each>
bool each_passed_descriptor(const msghdr& m, Each each) {
  constexpr size_t kMaxPassed = 253;  // SCM_MAX_FD
  const auto* base = static_cast<const uint8_t*>(m.msg_control);
  for (size_t at = 0; m.msg_controllen - at >= sizeof(cmsghdr);) {
    cmsghdr c;
    if (copy_from_user(&c, base + at, sizeof c) != sizeof c) return false;
    if (c.cmsg_len < sizeof(cmsghdr) || c.cmsg_len > m.msg_controllen - at) return false;
    if (c.cmsg_level == SOL_SOCKET && c.cmsg_type == SCM_RIGHTS) {
      const size_t n = (c.cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (n > kMaxPassed) return false;
      for (size_t i = 0; i < n; ++i) {
        int d;
        if (copy_from_user(&d, base + at + CMSG_LEN(0) + i * sizeof(int), sizeof d) != sizeof d)
          return false;
        each(d);
      }
    }
    at += CMSG_ALIGN(c.cmsg_len);
    if (at > m.msg_controllen) break;
  }
  return true;
}

}  // namespace

void hand_passed_to_kernel(int fd, const msghdr* msg) {
  // (First: the library's own messages (the broker's, passed connections')
  // go out through this interposer with the lock held, and a signal
  // handler's send waits for the release: nothing to look at then.)
  if (stack::CoreLock::held_here()) return;
  // (Before the fault catcher, a bad pointer would kill the program where
  // the kernel says EFAULT: then nothing is looked at.)
  if (!rt().enabled() || !rt().stack() || rt().vfork_child() || !user_faults_recoverable()) return;
  msghdr m;
  if (!msg || copy_from_user(&m, msg, sizeof m) != sizeof m) return;
  if (!m.msg_control || m.msg_controllen < sizeof(cmsghdr)) return;
  // Any descriptor of the stack's among them? (The table's entry alone,
  // without socket_at's clean-up, which takes the lock: looked at again
  // under it.) A malformed message passes nothing: nothing is handed over.
  bool any = false;
  if (!each_passed_descriptor(m, [&](int d) { any |= rt().fds().get(d) != nullptr; }) || !any)
    return;
  // Only a Unix socket passes descriptors (the kernel says EINVAL on any
  // other, with nothing passed).
  int domain = 0;
  socklen_t dl = sizeof domain;
  if (libc::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) != 0 || domain != AF_UNIX) return;
  CoreGuard g;
  each_passed_descriptor(m, [&](int d) {
    Socket* s = rt().fds().get(d);
    if (s && still(s, d) && s->accelerated && !s->departed) hand_passed_socket(s, d);
  });
}

// ---- creation and decisions ----

int op_socket(int domain, int type, int protocol) {
  int fd = libc::socket(domain, type, protocol);
  if (fd < 0 || t_inside || (domain != AF_INET && domain != AF_INET6))
    return fd < 0 ? neg_errno() : fd;
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  bool tcp_type = base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
  bool udp_type = base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
  if (!tcp_type && !udp_type) return fd;
  rt().say_deferred();
  if ((!rt().enabled() && !rt().reattach_broker()) || !rt().fds().fits(fd) || rt().vfork_child())
    return fd;
  Socket* s = tcp_type ? static_cast<Socket*>(new TcpSocket(fd)) : new UdpSocket(fd);
  s->nonblock = type & SOCK_NONBLOCK;
  s->v6 = domain == AF_INET6;
  struct stat st;
  if (fstat(fd, &st) == 0) s->twin_ino = st.st_ino;
  rt().fds().set(fd, s);
  return fd;
}

int op_bind(Socket* s, int fd, const sockaddr* addr, socklen_t len) {
  CHILD_GUARD(fd);
  release_twin_port(s, fd);
  // The kernel judges the bind (ports in use, privileges, SO_REUSEADDR).
  if (libc::bind(fd, addr, len) != 0) return neg_errno();
  SockAddr want, local;
  const bool fixed = read_sockaddr(addr, len, &want, s->v6) == 0 && want.port != 0;
  if (s->accelerated) {
    CoreGuard g;
    if (!still(s, fd)) return 0;
    s->port_fixed = fixed;
    // A TCP socket unconnected again has its port from this bind; a UDP
    // socket whose port a disconnect released binds anew.
    if (s->kind == Socket::Kind::Tcp) {
      tcp(s)->twin_port_chosen = false;
      kernel_local(fd, &s->local);  // where the next listen() or connect() starts
      // (A bind with IP_BIND_ADDRESS_NO_PORT takes no port: connect() must.)
      tcp(s)->twin_unbound = s->local.port == 0;
    } else if (!udp(s)->pcb && udp_take_port(s, fd) < 0) {
      drop_to_kernel(s);
    }
    return 0;
  }
  bool ipv4 = read_sockaddr(addr, len, &want, s->v6) == 0 && kernel_local(fd, &local);
  // TCP decides at listen() or connect(); a UDP socket receives from now.
  bool accel = ipv4 && !s->kernel_only &&
               (s->kind == Socket::Kind::Udp
                    ? rt().accelerate_local(want.ip, local.port, Role::UdpReceiver)
                    : rt().accelerate_bind(want.ip)) &&
               rt().ensure_stack();
  CoreGuard g;
  if (!still(s, fd)) return 0;
  s->bound = true;
  s->port_fixed = fixed;
  s->local = local;
  if (!accel) {
    drop_to_kernel(s);
    return 0;
  }
  // A UDP socket receives from the moment it is bound; TCP waits for
  // listen() or connect().
  if (s->kind == Socket::Kind::Udp && udp(s)->open() < 0) drop_to_kernel(s);
  return 0;
}

int op_listen(Socket* s, int fd, int backlog) {
  CHILD_GUARD(fd);
  release_twin_port(s, fd);
  // A TCP socket on the stack that is unconnected again (a disconnect, a
  // failed attempt) may listen, as a new one does.
  const bool fresh = s->kind == Socket::Kind::Tcp && s->accelerated &&
                     tcp(s)->state == TcpSocket::State::Fresh;
  if (!fresh && (s->kind != Socket::Kind::Tcp || s->accelerated || s->kernel_only)) {
    if (s->kind == Socket::Kind::Tcp && s->accelerated &&
        tcp(s)->state != TcpSocket::State::Listening)
      return -EINVAL;
    if (libc::listen(fd, backlog) != 0) return neg_errno();
    if (s->kind != Socket::Kind::Tcp) return 0;
    CoreGuard g;
    if (!still(s, fd)) return 0;
    if (s->accelerated) tcp(s)->backlog = backlog;
    else drop_to_kernel(s);
    return 0;
  }
  // The stack listens first, the kernel second: once the kernel's listener
  // shows (ss, or a local peer's connect), the accelerated one is ready
  // too, and a SYN from the network never reaches the kernel listener in
  // between (its connection would then be reset when the port's steering
  // starts). An unbound socket gets its port from an explicit bind, as
  // listen() would pick it.
  if (fresh && s->kernel_only) {
    {
      CoreGuard g;
      if (still(s, fd)) hand_to_kernel(s);
    }
    return libc::listen(fd, backlog) == 0 ? 0 : neg_errno();
  }
  SockAddr local;
  if (!kernel_local(fd, &local)) return libc::listen(fd, backlog) == 0 ? 0 : neg_errno();
  // (A disconnected listener's released port still shows: it takes a new
  // one, as inet_csk_get_port would.)
  if (fresh && tcp(s)->twin_unbound) {
    sockaddr_storage ss;
    socklen_t sl = make_sockaddr(SockAddr{local.ip, 0}, s->v6, &ss);
    if (libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) return neg_errno();
    CoreGuard g;
    if (still(s, fd)) tcp(s)->twin_unbound = false;
    kernel_local(fd, &local);
  }
  if (local.port == 0 && kernel_bind(s, fd, local) == 0) kernel_local(fd, &local);
  bool accel = local.port != 0 &&
               rt().accelerate_local(local.ip, local.port, Role::TcpServer) && rt().ensure_stack();
  bool on_stack = false;
  int fl = -1;
  if (accel) {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    s->local = local;
    s->bound = true;
    // The kernel listener serves local peers; accept() never blocks in it.
    fl = libc::fcntl(fd, F_GETFL);
    libc::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    on_stack = tcp(s)->listen(backlog) == 0;
  }
  int rc = libc::listen(fd, backlog) == 0 ? 0 : -errno;
  CoreGuard g;
  if (!still(s, fd)) return rc;
  if (rc == 0 && on_stack) {
    // A listener has a kernel side (local peers) for epoll to watch.
    join_kernel_epolls(s);
    if (s->opt.fastopen) note_fast_open_server(fd);
    return 0;
  }
  // Not accelerated, or the kernel refused what the stack accepted: the
  // socket is the kernel's from now on (blocking as the program's is: a
  // former listener's was made non-blocking for our own use).
  if (fl >= 0 || fresh) twin_blocks_as_program(s, fd);
  s->local = local;
  s->bound = true;
  drop_to_kernel(s);
  return rc;
}

int op_accept(Socket* s, int fd, sockaddr* addr, socklen_t* len, int flags) {
  CHILD_GUARD(fd);
  if (!s->accelerated || s->kind != Socket::Kind::Tcp) {
    int r = libc::accept4(fd, addr, len, flags);
    return r < 0 ? neg_errno() : r;
  }
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -EINVAL;
  CoreGuard g;
  OpHold hold(s);  // (allocated until the call returns, should it leave meanwhile)
  TcpSocket* l = tcp(s);
  pollfd kfd{fd, POLLIN, 0};
  SignalMark call_mark = signal_mark();
  for (;;) {
    if (left_for_kernel(s, fd)) return int(kNotOnStack);
    if (!still(s, fd)) return -EBADF;
    if (l->state != TcpSocket::State::Listening) return -EINVAL;
    if (l->draining && l->drained()) {
      // A listener handed to the kernel, nothing of the stack's left to
      // accept: the kernel's from here on (this accept too).
      hand_to_kernel(s);
      // (Without the lock: a blocking accept waits in the kernel.)
      stack::CoreLock::unlock();
      int r = libc::accept4(fd, addr, len, flags);
      const int e = errno;
      stack::CoreLock::lock();
      return r < 0 ? -e : r;
    }
    maybe_die_holding_lock(kAcceptDeath);
    rt().poll_stack();
    int r = l->accept_from_stack(flags, addr, len);
    if (r != -EAGAIN) return r;
    // Local peers queue in the kernel listener (non-blocking underneath).
    r = libc::accept4(fd, addr, len, flags);
    if (r >= 0) return r;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return neg_errno();
    if (s->nonblock) return -EAGAIN;
    WaitSpec spec;
    Socket* self = s;
    spec.sockets = &self;
    spec.nsockets = 1;
    spec.kernel = &kfd;
    spec.nkernel = 1;
    spec.deadline_ns = s->opt.rcvtimeo_ns ? mono_ns() + s->opt.rcvtimeo_ns : -1;
    spec.restartable = s->opt.rcvtimeo_ns == 0;
    spec.spin_kind = kSpinTcpAccept;
    spec.exclusive = true;
    spec.call_mark = &call_mark;
    int rc = rt().block(spec, [&] {
      return !l->accept_queue.empty() || kfd.revents || l->state != TcpSocket::State::Listening ||
             !still(s, fd);
    });
    if (rc < 0 && !s->departed) {
      // Woken for a connection, perhaps, and leaving without it: the next
      // accept() sleeper gets it (WaitQueue::wake_exclusive).
      if (rc != -EBADF && !l->accept_queue.empty()) l->wake_next_acceptor();
      return rc;
    }
    kfd.revents = 0;
  }
}

int op_connect(Socket* s, int fd, const sockaddr* addr, socklen_t len) {
  CHILD_GUARD(fd);
  SockAddr to;
  int ar = read_sockaddr(addr, len, &to, s->v6);
  if (s->kind == Socket::Kind::Udp) {
    bool unspec = addr && len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC;
    if (!s->accelerated) {
      bool accel = ar == 0 && !s->kernel_only &&
                   rt().accelerate_destination(to.ip, to.port, Role::UdpSender) &&
                   rt().ensure_stack();
      if (!accel) {
        CoreGuard g;
        if (still(s, fd) && !unspec) drop_to_kernel(s);
        return libc::connect(fd, addr, len) == 0 ? 0 : neg_errno();
      }
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      if (!s->bound) {
        if (int rc = udp_autobind(s, fd, SockAddr{}); rc < 0) return rc;
        s->bound = true;
      }
      if (!kernel_local(fd, &s->local) || udp(s)->open() < 0) {
        drop_to_kernel(s);
        return libc::connect(fd, addr, len) == 0 ? 0 : neg_errno();
      }
    }
    // The kernel socket connects too: it then filters what it delivers and
    // reports ICMP errors for the peer.
    if (libc::connect(fd, addr, len) != 0) return neg_errno();
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    if (unspec) {
      SockAddr now;
      if (!kernel_local(fd, &now)) now = SockAddr{};
      return udp(s)->disconnect(now);
    }
    if (udp_take_port(s, fd) < 0) {
      drop_to_kernel(s);
      return 0;  // the kernel socket is connected
    }
    s->remote_accelerated = rt().accelerate_destination(to.ip, to.port, Role::UdpSender);
    return udp(s)->connect(to);
  }

  // TCP
  const bool unspec = addr && len >= sizeof(sa_family_t) && len <= sizeof(sockaddr_storage) &&
                      addr->sa_family == AF_UNSPEC;
  if (unspec) {
    // Linux's disconnect: the kernel socket does its own (a listener stops,
    // a port the kernel chose is released), the stack's side follows.
    if (libc::connect(fd, addr, len) != 0) return neg_errno();
    {
      CoreGuard g;
      if (!still(s, fd)) return 0;
      if (!s->accelerated) {
        tcp(s)->shut_rd = tcp(s)->shut_wr = false;  // a recorded shutdown is cleared
        return 0;
      }
      tcp(s)->disconnect();
    }
    release_twin_port(s, fd);
    return 0;
  }
  release_twin_port(s, fd);  // (a connection that ended since the last call)
  bool to_kernel = false;  // unconnected again, to a destination off the stack
  if (s->accelerated) {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    // Linux looks at the socket's state before the address's family and
    // length (__inet_stream_connect), but after whether it could read it.
    TcpSocket* t = tcp(s);
    bool readable = ar != -EFAULT && len <= sizeof(sockaddr_storage) &&
                    !(ar == -EINVAL && (!addr || len < sizeof(sa_family_t)));
    // A shutdown left it "disconnecting" to the socket layer: EINVAL
    // whatever the address says.
    if (readable && t->disconnecting) return -EINVAL;
    if (ar != 0 && readable && t->state != TcpSocket::State::Fresh) {
      // The connect() that completes a non-blocking one says 0 whatever it
      // is given (its socket is still "connecting" to Linux's socket layer).
      if (t->state == TcpSocket::State::Connected && t->connect_unreported) return t->connect(to);
      if (t->state == TcpSocket::State::Connecting && t->nonblock) return -EALREADY;
      if (t->state == TcpSocket::State::Connected || t->state == TcpSocket::State::Listening ||
          (t->state == TcpSocket::State::Closed && t->established && !t->connect_unreported))
        return -EISCONN;
      if (t->state == TcpSocket::State::Closed) {
        int rc = t->connect(to);  // the attempt's error
        release_twin_port_locked(s, fd);
        return rc;
      }
    }
    if (ar != 0) return ar;
    // Unconnected again, to a destination the stack does not reach
    // (loopback, broadcast, another interface): the kernel's from now on,
    // as a new socket's would be.
    // (Or bound since to an address off the stack: loopback.)
    SockAddr now;
    to_kernel = t->state == TcpSocket::State::Fresh &&
                (s->kernel_only || !rt().accelerate_destination(to.ip, to.port, Role::TcpClient) ||
                 (kernel_local(fd, &now) && !rt().accelerate_bind(now.ip)));
    if (to_kernel) {
      twin_blocks_as_program(s, fd);
    } else if (t->state != TcpSocket::State::Fresh || !t->twin_unbound) {
      bool was_fresh = t->state == TcpSocket::State::Fresh;
      int rc = t->connect(to);
      // On the stack now: its kernel socket (a listener's, before a
      // disconnect) has nothing to report to epoll.
      if (was_fresh && still(s, fd) && t->pcb) leave_kernel_epolls(s);
      // (Refused or reset while connect() waited: the port goes now.)
      if (rc < 0) release_twin_port_locked(s, fd);
      return rc;
    }
  }
  if (to_kernel) {
    // The kernel socket connects. Refused at once (no route: broadcast,
    // multicast), nothing changed: the socket stays as it was, with the
    // error a disconnect left pending. Under way or made, it is the
    // kernel's from now on.
    int r = libc::connect(fd, addr, len) == 0 ? 0 : -errno;
    if (r == 0 || r == -EINPROGRESS || r == -EALREADY || r == -EISCONN || r == -EINTR) {
      CoreGuard g;
      if (still(s, fd)) hand_to_kernel(s);
    }
    return r;
  }
  if (s->accelerated) {
    // Unconnected again after a disconnect that released the port the
    // kernel had chosen: a new one, as for a first connect, on the address
    // the program bound if it did (a disconnect keeps a locked address).
    SockAddr kept;
    const bool bound_address = kernel_local(fd, &kept) && kept.ip != 0;
    if (int rc = bind_client_port(s, fd, bound_address ? kept.ip : rt().iface_addr(), true, bound_address);
        rc < 0)
      return rc;
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    tcp(s)->twin_unbound = false;
    kernel_local(fd, &s->local);
    TcpSocket* t = tcp(s);
    int rc = t->connect(to);
    if (still(s, fd) && t->pcb) leave_kernel_epolls(s);
    if (rc < 0) release_twin_port_locked(s, fd);
    return rc;
  }
  bool accel = ar == 0 && !s->kernel_only &&
               rt().accelerate_destination(to.ip, to.port, Role::TcpClient) && rt().ensure_stack();
  SockAddr bound_at;
  if (accel && s->bound) accel = kernel_local(fd, &bound_at) && rt().accelerate_bind(bound_at.ip);
  if (!accel) {
    {
      CoreGuard g;
      if (still(s, fd)) drop_to_kernel(s);
    }
    return libc::connect(fd, addr, len) == 0 ? 0 : neg_errno();
  }
  // The kernel picks the local port (ephemeral range, conflicts) on our
  // address and keeps it reserved; lwIP uses the same one. So too for a
  // socket bound to an address without a port (IP_BIND_ADDRESS_NO_PORT:
  // Linux takes its port in connect()).
  if (!s->bound) {
    if (int rc = bind_client_port(s, fd, rt().iface_addr()); rc < 0) return rc;
  } else if (bound_at.port == 0) {
    if (int rc = bind_client_port(s, fd, bound_at.ip, false, bound_at.ip != 0); rc < 0) return rc;
  }
  {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    s->bound = true;
    kernel_local(fd, &s->local);
    int rc = tcp(s)->connect(to);
    TcpSocket* t = tcp(s);
    if (rc != -EACCES || t->pcb) {
      // On the stack now: its kernel socket has nothing to report to epoll.
      if (s->accelerated) leave_kernel_epolls(s);
      if (t->pcb) s->local = SockAddr{ip4_addr_get_u32(&t->pcb->local_ip), t->pcb->local_port};
      return rc;
    }
    // The broker refused the port (said on stderr): the kernel connects.
    drop_to_kernel(s);
  }
  return libc::connect(fd, addr, len) == 0 ? 0 : neg_errno();
}

int op_shutdown(Socket* s, int fd, int how) {
  CHILD_GUARD(fd);
  if (!s->accelerated) {
    int r = libc::shutdown(fd, how) == 0 ? 0 : neg_errno();
    // Linux records it even on an unconnected socket (ENOTCONN): the stack
    // must know if the socket is accelerated later (a connect() keeps it).
    if ((r == 0 || r == -ENOTCONN) && (how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR)) {
      CoreGuard g;
      if (still(s, fd)) {
        bool& rd = s->kind == Socket::Kind::Udp ? udp(s)->shut_rd : tcp(s)->shut_rd;
        bool& wr = s->kind == Socket::Kind::Udp ? udp(s)->shut_wr : tcp(s)->shut_wr;
        if (how != SHUT_WR) rd = true;
        if (how != SHUT_RD) wr = true;
      }
    }
    return r;
  }
  CoreGuard g;
  if (!still(s, fd)) return -EBADF;
  if (s->kind == Socket::Kind::Tcp) {
    int rc = tcp(s)->shutdown(how, fd);
    release_twin_port_locked(s, fd);  // (a connection under way, disconnected)
    return rc;
  }
  return udp(s)->shutdown(how, fd);
}

// ---- data ----

namespace {

// A send that put data on the stack: its MSG_ZEROCOPY notification is due
// at once (the data was copied). Lock held.
void zerocopy_sent(Socket* s, int flags) {
  if (!(flags & MSG_ZEROCOPY) || !s->zc.enabled) return;
  s->zc.sent();
  ++rt().counters().zerocopy_notified;
  s->notify();
}

void note_kernel_option(Socket* s, int fd, int level, int name);

}  // namespace

// What the kernel checks of a message before anything else
// (copy_msghdr_from_user, import_iovec): an address of negative length (or,
// sending, one that cannot be read), too many segments, a segment array
// that cannot be read, a segment longer than SSIZE_MAX (EINVAL, all looked
// at first), a total past it (EFAULT: below); then, sending,
// the control messages ____sys_sendmsg copies in (more than INT_MAX bytes
// is ENOBUFS; memory it cannot read, a null buffer with a length too,
// EFAULT). The stack would read or write through them. (A NULL receive
// buffer is refused before the kernel would refuse it: it says EAGAIN first
// when no data waits.)
ssize_t check_message(const msghdr* msg, bool sending) {
  if (readable_prefix(msg, sizeof *msg) < sizeof *msg) return -EFAULT;
  // (__copy_msghdr: the kernel's msg_namelen is an int, cut to a
  // sockaddr_storage, and a sender's address is copied in there.)
  if (msg->msg_name && int(msg->msg_namelen) < 0) return -EINVAL;
  if (sending && msg->msg_name && msg->msg_namelen &&
      !user_readable(msg->msg_name, std::min<size_t>(msg->msg_namelen, sizeof(sockaddr_storage))))
    return -EFAULT;
  if (msg->msg_iovlen > UIO_MAXIOV) return -EMSGSIZE;
  if (msg->msg_iovlen && !msg->msg_iov) return -EFAULT;
  if (readable_prefix(msg->msg_iov, msg->msg_iovlen * sizeof(iovec)) < msg->msg_iovlen * sizeof(iovec))
    return -EFAULT;
  for (size_t i = 0; i < msg->msg_iovlen; ++i)
    if (ssize_t(msg->msg_iov[i].iov_len) < 0) return -EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; ++i) {
    const iovec& v = msg->msg_iov[i];
    if (v.iov_len && !v.iov_base) return -EFAULT;
    // A total past SSIZE_MAX needs a segment longer than 2^53 (there are
    // at most UIO_MAXIOV): past the address space, EFAULT (access_ok on
    // 6.1 and from 6.12; 6.4 to 6.11 judged the sum's sign alone). A
    // shorter segment past it is left to the copy, as the kernels differ.
    if (v.iov_len > size_t(SSIZE_MAX) - total) return -EFAULT;
    total += v.iov_len;
  }
  if (sending && msg->msg_controllen) {
    if (msg->msg_controllen > size_t(INT_MAX)) return -ENOBUFS;
    if (!user_readable(msg->msg_control, msg->msg_controllen)) return -EFAULT;
  }
  return 0;
}

int take_kept_error(Socket* s, int fd) {
  CoreGuard g;
  if (!still(s, fd)) return -EBADF;
  if (!s->accelerated) return 0;
  // (A connection's error is its pending SO_ERROR, which its own calls
  // report as Linux reports sk_err: recv after the data, send first.)
  const int e = s->kind == Socket::Kind::Udp ? udp(s)->take_kept_error() : tcp(s)->pending_error(true);
  return e ? -e : 0;
}

void keep_error(Socket* s, int fd, int err) {
  CoreGuard g;
  if (!still(s, fd) || !s->accelerated) return;
  // (No notify(): do_recvmmsg writes sk_err and wakes nobody. A thread
  // asleep in recv() goes on waiting for data, as on Linux; the next poll
  // or call sees the error.)
  if (s->kind == Socket::Kind::Udp) udp(s)->keep_error(err);
  else tcp(s)->error = err;
}

namespace {

// The control messages of a TCP send, as tcp_sendmsg takes them
// (sock_cmsg_send): each must fit the buffer; at SOL_SOCKET only the ones
// a socket may send (timestamping requests, mark, priority, transmit time)
// are known; other levels are ignored. The stack does not act on the known
// ones.
int check_tcp_control(const msghdr* msg, int* record_flags) {
  *record_flags = -1;
  if (msg->msg_controllen < sizeof(cmsghdr) || !msg->msg_control) return 0;
  msghdr m = *msg;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_len < sizeof(cmsghdr) ||
        c->cmsg_len > size_t(static_cast<char*>(m.msg_control) + m.msg_controllen -
                             reinterpret_cast<char*>(c)))
      return -EINVAL;
    if (c->cmsg_level != SOL_SOCKET) continue;
    switch (c->cmsg_type) {
      case SO_TIMESTAMPING_OLD:
      case SO_TIMESTAMPING_NEW: {
        // __sock_cmsg_send: this send's record flags, nothing else.
        uint32_t f;
        if (c->cmsg_len != CMSG_LEN(sizeof f)) return -EINVAL;
        memcpy(&f, CMSG_DATA(c), sizeof f);
        if (f & ~uint32_t(SOF_TIMESTAMPING_TX_RECORD_MASK)) return -EINVAL;
        *record_flags = int(f);
        break;
      }
      case SO_MARK:
      case SCM_TXTIME:
      case SO_PRIORITY:
      case SCM_RIGHTS:       // "semantically in SOL_UNIX": passed over
      case SCM_CREDENTIALS:
        break;
      default:
        return -EINVAL;
    }
  }
  return 0;
}

}  // namespace

// A spinning UDP receiver looks at its kernel socket every kKernelLookNs,
// and a UDP sender looks there for an error as often: is a look due? By
// the TSC (a few ns) once its rate is known, else by the clock. Without
// the lock: a hint.
namespace {
bool look_due(const int64_t& due_ns, const uint64_t& due_tsc) {
  if (uint64_t due = __atomic_load_n(&due_tsc, __ATOMIC_ACQUIRE)) return __rdtsc() >= due;
  return mono_ns() >= __atomic_load_n(&due_ns, __ATOMIC_RELAXED);
}
bool kernel_look_due(const Socket* s) { return look_due(s->next_kernel_check_ns, s->next_kernel_check_tsc); }

// The next look kKernelLookNs from `now` (CLOCK_MONOTONIC), in TSC ticks
// too once their rate is known. The rate comes from the served clock,
// which calibrates as it is read: a program that never reads the time
// reads it here, every kKernelLookNs, until the rate is known.
void look_later(int64_t* due_ns, uint64_t* due_tsc, int64_t now) {
  __atomic_store_n(due_ns, now + kKernelLookNs, __ATOMIC_RELAXED);
  uint64_t per_ms = served_clock().ticks_per_ms();
  if (!per_ms) {
    timespec ts;
    served_clock().now(CLOCK_MONOTONIC, &ts);
    per_ms = served_clock().ticks_per_ms();
  }
  if (per_ms) __atomic_store_n(due_tsc, __rdtsc() + per_ms * kKernelLookNs / 1000000, __ATOMIC_RELAXED);
}
}  // namespace

bool still(Socket* s, int fd) {
  if (rt().fds().get(fd) != s) return false;
  if (stack::CoreLock::held_here()) family::core_subject() = s;
  return true;
}

OpHold::~OpHold() { release(s); }

void OpHold::release(void* sock) {
  auto* s = static_cast<Socket*>(sock);
  --s->holds;
  rt().maybe_delete(s);
}

ssize_t op_send_from(Socket* s, int fd, TcpSocket::SendSource& src, size_t total, int flags) {
  CHILD_GUARD(fd);
  ssize_t r;
  {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    if (s->kind != Socket::Kind::Tcp || !s->accelerated) return kNotOnStack;
    OpHold hold(s);
    r = tcp(s)->send_from(src, total, flags);
  }
  if (r == -EPIPE && !(flags & MSG_NOSIGNAL)) raise_sigpipe();
  return r;
}

ssize_t op_sendmsg(Socket* s, int fd, const msghdr* msg, int flags) {
  CHILD_GUARD(fd);
  const bool checked = s->accelerated;
  if (checked)
    if (ssize_t e = check_message(msg, true)) return e;
  if (s->kind == Socket::Kind::Tcp) {
    // TCP Fast Open (MSG_FASTOPEN) connects inside the send, with data in
    // the SYN, which the stack does not do: an unconnected socket connects
    // through the kernel, said once like TCP_FASTOPEN_CONNECT. On a socket
    // connected or connecting, tcp_sendmsg_fastopen's errors.
    if (flags & MSG_FASTOPEN) {
      bool unconnected =
          !s->accelerated || tcp(s)->state == TcpSocket::State::Fresh;
      if (!unconnected) {
        // tcp_sendmsg_fastopen: its own checks, then __inet_stream_connect
        // as for a connect(): a connection confirmed is EISCONN, one under
        // way EALREADY, a failed attempt its error; a non-blocking connect
        // completed and not yet confirmed is confirmed, and the data goes
        // as in any send (the control messages judged then).
        const auto* to = static_cast<const sockaddr*>(msg->msg_name);
        if (!tcp_fastopen_client_enabled() ||
            (to && msg->msg_namelen >= sizeof(sa_family_t) && to->sa_family == AF_UNSPEC))
          return -EOPNOTSUPP;
        if (to && msg->msg_namelen < sizeof(sa_family_t)) return -EINVAL;
        CoreGuard g;
        if (!still(s, fd)) return -EBADF;
        OpHold hold(s);
        TcpSocket* t = tcp(s);
        int rc = t->state == TcpSocket::State::Connecting && (flags & MSG_DONTWAIT)
                     ? -EALREADY
                     : t->connect(t->remote);
        if (rc < 0) return rc;
        int record = -1;
        int control_error = check_tcp_control(msg, &record);
        ssize_t r = t->send(msg->msg_iov, int(msg->msg_iovlen), flags, control_error, record);
        if (r > 0) zerocopy_sent(s, flags);
        return r;
      }
      // The kernel socket tries; the socket is the kernel's once it
      // connects (or has started to). Refused at once (a bad address, no
      // route), nothing changed: it stays as it was, with any error a
      // disconnect left pending.
      if (s->accelerated) {
        CoreGuard g;
        if (!still(s, fd)) return -EBADF;
        twin_blocks_as_program(s, fd);
      }
      ssize_t r = libc::sendmsg(fd, msg, flags);
      int e = r < 0 ? errno : 0;
      if (r >= 0 || e == EINPROGRESS || e == EALREADY || e == EINTR) {
        CoreGuard g;
        if (still(s, fd)) {
          note_kernel_option(s, fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT);
          hand_to_kernel(s);
        }
      }
      return r < 0 ? -e : r;
    }
    if (!s->accelerated) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      return r < 0 ? neg_errno() : r;
    }
    ssize_t r;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      OpHold hold(s);
      if (msg->msg_iovlen == 1) maybe_die_holding_lock(long(msg->msg_iov[0].iov_len));
      int record = -1;
      int control_error = check_tcp_control(msg, &record);
      r = tcp(s)->send(msg->msg_iov, int(msg->msg_iovlen), flags, control_error, record);
      if (r > 0) zerocopy_sent(s, flags);
    }
    if (r == -EPIPE && !(flags & MSG_NOSIGNAL)) raise_sigpipe();
    return r;
  }

  // UDP: per destination, the stack or the kernel socket.
  SockAddr to;
  bool have_to = false;
  if (msg->msg_name && msg->msg_namelen) {
    int ar = read_sockaddr(static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen, &to,
                           s->v6);
    if (ar != 0) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      return r < 0 ? neg_errno() : r;
    }
    have_to = true;
  }
  if (!s->accelerated) {
    bool accel = have_to && !s->kernel_only &&
                 rt().accelerate_destination(to.ip, to.port, Role::UdpSender) &&
                 rt().ensure_stack();
    if (accel) {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      if (!s->bound) {
        if (int rc = udp_autobind(s, fd, SockAddr{}); rc < 0) return rc;
        s->bound = true;
      }
      if (!kernel_local(fd, &s->local) || udp(s)->open() < 0) drop_to_kernel(s);
    } else if (have_to) {
      CoreGuard g;
      if (still(s, fd)) drop_to_kernel(s);
    }
    // (still() first: drop_to_kernel may have freed the socket.)
    if (!still(s, fd) || !s->accelerated) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      return r < 0 ? neg_errno() : r;
    }
  }
  // The socket became accelerated in this call: what the kernel would have
  // checked of the message first, before the stack reads it.
  if (!checked)
    if (ssize_t e = check_message(msg, true)) return e;
  // inet_sendmsg gives an unbound socket its port before udp_sendmsg judges
  // anything (MSG_OOB, length, destination).
  if (!udp(s)->pcb) {
    bool dropped = false;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      if (udp_take_port(s, fd) < 0) {
        drop_to_kernel(s);  // (s may be gone now)
        dropped = true;
      }
    }
    if (dropped) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      return r < 0 ? neg_errno() : r;
    }
  }
  // The datagram's length, summed once for every judgement below.
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; ++i) total += msg->msg_iov[i].iov_len;
  // An error a recvmmsg kept: the send fails with it, nothing sent
  // (sock_alloc_send_pskb), whichever socket would have sent it.
  if (udp(s)->has_kept_error())
    if (int rc = take_kept_error(s, fd)) return rc;
  // Corking (MSG_MORE, UDP_CORK) joins sends into one datagram, which the
  // stack does not do: the kernel socket holding the same port and address
  // sends them, until a send ends the datagram. Receiving stays on the stack.
  {
    UdpSocket* u = udp(s);
    if ((flags & MSG_MORE) || u->corked || u->cork_option) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      // What is pending in the kernel socket now: a send that went through
      // leaves it corked with MSG_MORE, else sent; one refused before
      // udp_sendmsg appends (urgent data, longer than a datagram, a bad
      // message) leaves it as it was; any other error flushed it.
      int e = r < 0 ? errno : 0;
      bool refused_early = e == EOPNOTSUPP || e == EINVAL || e == EFAULT ||
                           (e == EMSGSIZE && total > 0xffff);
      if (r >= 0) u->corked = flags & MSG_MORE;
      else if (!refused_early) u->corked = false;
      return r < 0 ? -e : r;
    }
  }
  // Too long a datagram, or one a small SO_SNDBUF may refuse: the kernel
  // twin judges it as Linux does (and with IP_RECVERR queues the local
  // EMSGSIZE error Linux queues), and sends it if it may.
  if (udp(s)->kernel_judges(total)) {
    ssize_t r = libc::sendmsg(fd, msg, flags);
    return r < 0 ? neg_errno() : r;
  }
  bool via_stack =
      have_to ? udp(s)->destination_via_stack(to) : s->remote_accelerated;
  // udp_sendmsg's order: too long, then urgent data (which UDP has not),
  // then no destination.
  if (flags & MSG_OOB) return total > 0xffff ? -EMSGSIZE : -EOPNOTSUPP;
  if (!have_to && !udp(s)->connected) return -EDESTADDRREQ;
  if (!via_stack) {
    ssize_t r = libc::sendmsg(fd, msg, flags);
    return r < 0 ? neg_errno() : r;
  }
  UdpSocket::SendControl ctl;
  if (int rc = UdpSocket::parse_send_control(msg, &ctl); rc < 0) return rc;
  // IP_PKTINFO naming another interface or another source address: the
  // kernel twin sends it from there (or refuses a source that is not
  // local, as Linux does); the stack has one interface and one address.
  {
    const stack::InterfaceInfo& iface = rt().iface();
    if ((ctl.pktinfo_ifindex && ctl.pktinfo_ifindex != iface.ifindex) ||
        (ctl.pktinfo_source && ctl.pktinfo_source != iface.addr)) {
      ssize_t r = libc::sendmsg(fd, msg, flags);
      return r < 0 ? neg_errno() : r;
    }
  }
  // An ICMP error (a port unreachable, say) reached the kernel twin, which
  // keeps it as the socket's error when connected or with IP_RECVERR:
  // Linux's send reports it (sock_alloc_send_pskb) and clears it. Looked
  // at every kKernelLookNs, as a spinning receive looks: a system call on
  // every send would cost more than the send.
  bool error_looked = false;
  if ((udp(s)->connected || s->opt.recverr) && look_due(s->next_error_check_ns, s->next_error_check_tsc)) {
    int e = 0;
    socklen_t elen = sizeof e;
    if (libc::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == 0 && e) return -e;
    error_looked = true;
  }
  CoreGuard g;
  trace::mark(trace::kSendLocked);
  if (!still(s, fd)) return -EBADF;
  if (error_looked) look_later(&s->next_error_check_ns, &s->next_error_check_tsc, mono_ns());
  ssize_t r = udp(s)->send(msg->msg_iov, int(msg->msg_iovlen), total, have_to ? &to : nullptr, &ctl);
  if (r >= 0) zerocopy_sent(s, flags);
  return r;
}

// ___sys_recvmsg writes msg_namelen, msg_flags and msg_controllen back
// after the receive: into a msghdr the program can read but not write,
// that is EFAULT with the data taken. The receive writes them into a copy
// then (the address, iovec and control buffer are still the program's).
// Looked at after the spinning paths' EAGAIN, which write nothing: a
// spin's empty call stays as short as it was.
namespace {
ssize_t recvmsg_into_copy(Socket* s, int fd, msghdr* msg, int flags) {
  msghdr copy = *msg;
  ssize_t r = op_recvmsg(s, fd, &copy, flags, false);
  return r < 0 ? r : -EFAULT;
}
}  // namespace

ssize_t op_recvmsg(Socket* s, int fd, msghdr* msg, int flags, bool programs_msghdr) {
  CHILD_GUARD(fd);
  if (s->accelerated)
    if (ssize_t e = check_message(msg, false)) return e;
  // The error queue is the backing kernel socket's: ICMP errors reach A's
  // kernel (the XDP program steers only TCP and UDP to the stack), which
  // queues them there (IP_RECVERR is set on it too). Never blocks, as on Linux.
  if (s->accelerated && (flags & MSG_ERRQUEUE)) {
    if (programs_msghdr && !user_writable(msg, sizeof *msg))
      return recvmsg_into_copy(s, fd, msg, flags);
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    if (s->zc.take(msg, s->v6)) return 0;
    const int ifindex = rt().iface().ifindex;
    ssize_t r = s->kind == Socket::Kind::Udp
                    ? udp(s)->tx_stamps.take(msg, s->rx_cmsg, ifindex, s->v6)
                    : tcp(s)->tx_stamps.queue.take(msg, s->rx_cmsg, ifindex, s->v6);
    if (r != -EAGAIN) return r;
  }
  if (!s->accelerated || (flags & MSG_ERRQUEUE)) {
    ssize_t r = libc::recvmsg(fd, msg, flags);
    return r < 0 ? neg_errno() : r;
  }
  if (s->kind == Socket::Kind::Tcp) {
    // A caller spinning on a connection with nothing to read, when a poll
    // would do nothing either: EAGAIN without the CoreLock, as for UDP
    // below (the lock and the poll were most of each empty call, and an
    // empty call's length is what the spin adds to every message).
    if ((s->nonblock || (flags & MSG_DONTWAIT)) && !(flags & MSG_OOB) &&
        tcp(s)->nothing_to_read_hint() && rt().stack_quiet())
      return -EAGAIN;
    if (programs_msghdr && !user_writable(msg, sizeof *msg))
      return recvmsg_into_copy(s, fd, msg, flags);
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    OpHold hold(s);
    TcpSocket* t = tcp(s);
    t->last_read_stamp = {};
    ssize_t r = t->recv(msg->msg_iov, int(msg->msg_iovlen), flags);
    if (r >= 0) {
      // __sys_recvmsg starts msg_flags from the call's MSG_CMSG_CLOEXEC.
      msg->msg_flags = flags & MSG_CMSG_CLOEXEC;
      if (msg->msg_name) msg->msg_namelen = 0;
      // tcp_recv_timestamp(): the stamp of the last segment read, when it
      // has one and the socket asked.
      const timespec& sw = t->last_read_stamp.sw;
      const timespec& hw = t->last_read_stamp.hw;
      if (r > 0 && (sw.tv_sec || sw.tv_nsec || hw.tv_sec || hw.tv_nsec) && t->rx_cmsg.any()) {
        CmsgWriter w(msg);
        put_tcp_timestamp_cmsgs(w, t->rx_cmsg, sw, hw);
        w.finish();
      } else {
        msg->msg_controllen = 0;
      }
    }
    return r;
  }

  UdpSocket* u = udp(s);
  // (__skb_recv_udp: the socket's error before any datagram.)
  if (u->has_kept_error())
    if (int rc = take_kept_error(s, fd)) return rc;
  bool dontwait = s->nonblock || (flags & MSG_DONTWAIT);
  // A caller spinning on an empty socket: no datagram queued, nothing for
  // a poll to do, the kernel side looked at within kKernelLookNs. EAGAIN
  // without the CoreLock: the lock and the poll were most of an empty
  // call's cost, and an empty call's length is what a spinning caller
  // adds, on average half of it, to every datagram's latency.
  if (dontwait && u->queued_hint() == 0 && rt().stack_quiet() && !kernel_look_due(s) &&
      !s->kernel_side_always())
    return -EAGAIN;
  if (programs_msghdr && !user_writable(msg, sizeof *msg))
    return recvmsg_into_copy(s, fd, msg, flags);
  ssize_t r;
  {
    CoreGuard g;
    OpHold hold(s);  // (allocated until the call returns, should it leave meanwhile)
    trace::mark(trace::kRecvLocked);
    struct MsgReceiver final : UdpReceiver {
      UdpSocket* u;
      int fd;
      msghdr* msg;
      int flags;
      bool filled = false;  // a datagram (or an empty one) was received
      ssize_t from_stack() override {
        int mflags = 0;
        socklen_t* namelen = msg->msg_name ? &msg->msg_namelen : nullptr;
        ssize_t r = u->recv_from_stack(msg->msg_iov, int(msg->msg_iovlen), flags,
                                       static_cast<sockaddr*>(msg->msg_name), namelen, &mflags, msg);
        msg->msg_flags = mflags | (flags & MSG_CMSG_CLOEXEC);
        filled = r >= 0;
        return r;
      }
      ssize_t from_kernel() override {
        ssize_t r = libc::recvmsg(fd, msg, flags | MSG_DONTWAIT);
        filled = r >= 0;
        return r < 0 ? neg_errno() : r;
      }
    } receiver;
    receiver.u = u;
    receiver.fd = fd;
    receiver.msg = msg;
    receiver.flags = flags;
    r = udp_receive(s, fd, dontwait, receiver);
    // 0 with no datagram (shut for reading): ____sys_recvmsg's fields as
    // the receive left them untouched: no address, no control messages.
    if (r == 0 && !receiver.filled) {
      if (msg->msg_name) msg->msg_namelen = 0;
      msg->msg_controllen = 0;
      msg->msg_flags = flags & MSG_CMSG_CLOEXEC;
    }
  }
  if (r == kNotOnStack) {
    // (It left for the kernel while this call waited.)
    r = libc::recvmsg(fd, msg, flags);
    return r < 0 ? neg_errno() : r;
  }
  return r;
}

ssize_t udp_receive(Socket* s, int fd, bool dontwait, UdpReceiver& r) {
  UdpSocket* u = udp(s);
  pollfd kfd{fd, POLLIN, 0};
  SignalMark call_mark = signal_mark();
  for (;;) {
    if (left_for_kernel(s, fd)) return kNotOnStack;
    if (!still(s, fd)) return -EBADF;
    rt().poll_stack();
    if (u->stack_has_data()) return r.from_stack();
    // What the kernel delivered to the backing socket (fragments, local
    // senders, errors such as ECONNREFUSED). A spinning caller looks there
    // at most every kKernelLookNs: it is the rare path.
    int64_t now = mono_ns();
    if (!dontwait || now >= s->next_kernel_check_ns || s->kernel_side_always()) {
      ssize_t got = r.from_kernel();
      if (got != -EAGAIN && got != -EWOULDBLOCK) return got;
      look_later(&s->next_kernel_check_ns, &s->next_kernel_check_tsc, now);
    }
    if (dontwait) return -EAGAIN;
    // Nothing left and shut for reading: a blocking read returns 0 (Linux
    // does not wait; a non-blocking one still says EAGAIN).
    if (u->shut_rd) return 0;
    WaitSpec spec;
    Socket* self = s;
    spec.sockets = &self;
    spec.nsockets = 1;
    spec.kernel = &kfd;
    spec.nkernel = 1;
    spec.deadline_ns = s->opt.rcvtimeo_ns ? mono_ns() + s->opt.rcvtimeo_ns : -1;
    spec.restartable = s->opt.rcvtimeo_ns == 0;
    spec.spin_kind = kSpinUdpRecv;
    spec.call_mark = &call_mark;
    int rc = rt().block(spec, [&] {
      return u->stack_has_data() || u->shut_rd || kfd.revents || !still(s, fd);
    });
    if (rc < 0 && !s->departed) return rc;
    kfd.revents = 0;
  }
}

// ---- options ----

namespace {

int as_int_value(const void* v, socklen_t len) {
  int x = 0;
  if (v && len >= sizeof(int)) memcpy(&x, v, sizeof x);
  return x;
}

// Options that change what happens to the data in ways the stack cannot
// follow: a socket that gets one before it is accelerated stays with the
// kernel.
bool kernel_only_option(Socket::Kind kind, int level, int name, const void* value, socklen_t len) {
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_ATTACH_FILTER:
      case SO_ATTACH_BPF:
      case SO_ATTACH_REUSEPORT_CBPF:
      case SO_ATTACH_REUSEPORT_EBPF:
        return true;
      // Receive timestamps are served (rx_cmsg.h) on UDP and TCP;
      // software transmit stamps too, with OPT_CMSG and TCP's OPT_STATS
      // (tx_stamps.h, tcp_tx_stamps.h); hardware transmit stamps nowhere.
      case 37: /* SO_TIMESTAMPING_OLD */
      case 65: /* SO_TIMESTAMPING_NEW */ {
        uint32_t f = uint32_t(as_int_value(value, len));
        return !TxStamps::served_flags(f);
      }
      case SO_BINDTODEVICE: {
        std::string dev(static_cast<const char*>(value),
                        strnlen(static_cast<const char*>(value), std::min<socklen_t>(len, IFNAMSIZ)));
        return !dev.empty() && dev != rt().iface().name;
      }
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TRANSPARENT:
        return true;
      // UDP: ICMP errors go to the backing kernel socket's error queue,
      // which MSG_ERRQUEUE reads. TCP on the stack does not see them.
      case IP_RECVERR:
        return kind == Socket::Kind::Tcp;
      // (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR: served on
      // UDP sockets; Linux gives TCP sockets no such messages.)
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
      case TCP_MD5SIG:
      case TCP_REPAIR:
      // (TCP_FASTOPEN, the server side, is served: note_fast_open_server.)
      case TCP_FASTOPEN_CONNECT:
      case TCP_ULP:
        return true;
    }
  }
  if (level == IPPROTO_UDP && name == 103 /* UDP_SEGMENT */) return true;
  // An IPv6-only socket carries no IPv4 traffic: nothing for the stack.
  if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) return as_int_value(value, len) != 0;
  return false;
}

int as_int(const void* v, socklen_t len) {
  int x = 0;
  if (v && len >= sizeof(int)) memcpy(&x, v, sizeof x);
  else if (v && len >= 1) x = *static_cast<const unsigned char*>(v);
  return x;
}

// SOF_TIMESTAMPING_OPT_ID and Linux 6.2's OPT_ID_TCP (1 << 16: newer than
// this system's headers): what the kernel twin of a connection on the stack
// never gets (TcpSocket::getsockopt answers with them).
constexpr uint32_t kStampIdBits = SOF_TIMESTAMPING_OPT_ID | (1u << 16);

// An accelerated TCP socket with an established (or closing) connection.
bool connected_pcb(Socket* s) {
  return s->accelerated && s->kind == Socket::Kind::Tcp && tcp(s)->pcb &&
         tcp(s)->state == TcpSocket::State::Connected;
}

int64_t as_timeout_ns(const void* v, socklen_t len) {
  if (!v || len < sizeof(timeval)) return 0;
  timeval tv;
  memcpy(&tv, v, sizeof tv);
  return int64_t(tv.tv_sec) * 1000000000 + int64_t(tv.tv_usec) * 1000;
}

}  // namespace

namespace {

// A socket stays with the kernel because of an option not served: said once
// per option at the default log level (the user can do something about
// it), and counted by option for xdpload-stat. Lock held.
void note_kernel_option(Socket* s, int fd, int level, int name) {
  // Not a missing feature: an IPv6-only socket carries no IPv4, a socket
  // bound to another device is not this interface's.
  if ((level == IPPROTO_IPV6 && name == IPV6_V6ONLY) || (level == SOL_SOCKET && name == SO_BINDTODEVICE))
    return;
  for (auto& slot : rt().counters().kernel_options) {
    if (slot.sockets && (slot.level != level || slot.name != name)) continue;
    slot.level = level;
    slot.name = name;
    ++slot.sockets;
    break;
  }
  static int said[ShimCounters::kOptionSlots * 2][2];
  static int nsaid = 0;
  for (int i = 0; i < nsaid; ++i)
    if (said[i][0] == level && said[i][1] == name) return;
  if (nsaid < int(sizeof said / sizeof said[0])) said[nsaid][0] = level, said[nsaid][1] = name, ++nsaid;
  const char* what = stats::socket_option_name(level, name);
  if (level == SOL_SOCKET && (name == 37 || name == 65))
    what = "SO_TIMESTAMPING (hardware transmit stamps)";
  if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT)
    what = "TCP Fast Open (TCP_FASTOPEN_CONNECT or MSG_FASTOPEN)";
  char unnamed[32];
  if (!what) snprintf(unnamed, sizeof unnamed, "%d/%d", level, name), what = unnamed;
  log_at(kLogError,
         "%s socket at descriptor %d set option %s, which xdpload does not serve on %s sockets: it "
         "stays on the kernel path, as will others that set it (said once)",
         s->kind == Socket::Kind::Tcp ? "TCP" : "UDP", fd, what,
         s->kind == Socket::Kind::Tcp ? "TCP" : "UDP");
}

}  // namespace

int op_setsockopt(Socket* s, int fd, int level, int name, const void* value, socklen_t len) {
  CHILD_GUARD(fd);
  // The value is read below (at most 16 bytes: a timeval, a congestion
  // control's or a device's name), some of it before the kernel judges it:
  // one the program cannot give is the kernel's to answer, as it reads it
  // (EFAULT). If the kernel takes it (it read less than we would: an int
  // with a length past the end of the program's memory), that is the
  // answer, and the stack does not read it. Only once faults are ours to
  // recover: before, a non-accelerated socket's value goes to the kernel
  // first below, as it always did.
  if (value && int(len) > 0 && !user_readable(value, std::min<size_t>(len, 16)))
    return libc::setsockopt(fd, level, name, value, len) == 0 ? 0 : neg_errno();
  // OPT_ID on a TCP socket whose connection is on the stack: its kernel
  // twin, never connected (TCP_CLOSE), would refuse it. The connection's
  // state decides, as in sock_set_timestamping, and the twin judges the
  // rest of the flags without the two OPT_ID bits (getsockopt adds them).
  const void* kernel_value = value;
  uint32_t stripped[2] = {0, 0};  // what the kernel reads: struct so_timestamping or an int
  if (s->accelerated && s->kind == Socket::Kind::Tcp && level == SOL_SOCKET &&
      (name == SO_TIMESTAMPING_OLD || name == SO_TIMESTAMPING_NEW) && value &&
      len >= sizeof(uint32_t)) {
    uint32_t f;
    memcpy(&f, value, sizeof f);
    if (f & SOF_TIMESTAMPING_OPT_ID) {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      if (!(s->rx_cmsg.tsflags & SOF_TIMESTAMPING_OPT_ID) && !tcp(s)->start_stamp_keys(f)) return -EINVAL;
      f &= ~kStampIdBits;
      memcpy(stripped, value, len == sizeof stripped ? sizeof stripped : sizeof(uint32_t));
      stripped[0] = f;
      kernel_value = stripped;
    }
  }
  // Fast Open's options on a connection of the stack: Linux judges them by
  // the socket's state (TCP_FASTOPEN wants TCP_CLOSE or TCP_LISTEN,
  // TCP_FASTOPEN_CONNECT TCP_CLOSE), which the twin, never connected, does
  // not have. Judged here, in do_tcp_setsockopt's order, and the twin left
  // as it was: a value it kept would follow the connection should it be
  // handed to the kernel (a deferred Fast Open connect).
  if (level == IPPROTO_TCP && (name == TCP_FASTOPEN || name == TCP_FASTOPEN_CONNECT) &&
      s->accelerated && s->kind == Socket::Kind::Tcp) {
    const auto state = __atomic_load_n(&tcp(s)->state, __ATOMIC_RELAXED);
    if (state == TcpSocket::State::Connecting || state == TcpSocket::State::Connected) {
      if (len < sizeof(int)) return -EINVAL;
      if (!value) return -EFAULT;  // (an unreadable one went to the kernel above)
      int v;
      memcpy(&v, value, sizeof v);
      if (name == TCP_FASTOPEN_CONNECT && (v < 0 || v > 1)) return -EINVAL;
      if (name == TCP_FASTOPEN_CONNECT && !tcp_fastopen_client_enabled()) return -EOPNOTSUPP;
      return -EINVAL;
    }
  }
  // An option only the kernel serves, on a connection of the stack: the
  // connection becomes the kernel's first, with its state, so that the
  // option meets a connected socket as on Linux (TCP_ULP needs one).
  ErrorText not_handed;
  // (Not for the options Linux refuses on a connection: TCP_FASTOPEN and
  // TCP_FASTOPEN_CONNECT are EINVAL there, TCP_REPAIR the program's own.)
  const bool for_a_connection =
      !(level == IPPROTO_TCP && (name == TCP_FASTOPEN || name == TCP_FASTOPEN_CONNECT || name == TCP_REPAIR));
  if (s->accelerated && s->kind == Socket::Kind::Tcp && for_a_connection &&
      __atomic_load_n(&tcp(s)->state, __ATOMIC_RELAXED) == TcpSocket::State::Connected &&
      kernel_only_option(s->kind, level, name, value, len)) {
    // The kernel judges the value first (a bad length is EINVAL and changes
    // nothing), on the unconnected socket: an option that needs a
    // connection (TCP_ULP: ENOTCONN there) is judged again after.
    const int judged = libc::setsockopt(fd, level, name, kernel_value, len) == 0 ? 0 : neg_errno();
    if (judged < 0 && judged != -ENOTCONN) return judged;
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    if (tcp(s)->state == TcpSocket::State::Connected &&
        tcp(s)->hand_connection_to_kernel(fd, &not_handed) == 0) {
      XLOG(kLogDecision, "descriptor %d: connection handed to the kernel with its state (option %d/%d)",
           fd, level, name);
      hand_to_kernel(s);
      return libc::setsockopt(fd, level, name, value, len) == 0 ? 0 : neg_errno();
    }
    if (judged < 0) return judged;
  }
  // The kernel validates (and keeps it for getsockopt); the stack follows.
  if (libc::setsockopt(fd, level, name, kernel_value, len) != 0) return neg_errno();
  CoreGuard g;
  if (!still(s, fd)) return 0;
  SocketOptions& o = s->opt;
  int v = as_int(value, len);
  // UDP_CORK: the kernel socket corks (see op_sendmsg); clearing it sends
  // what it held.
  if (s->kind == Socket::Kind::Udp && level == IPPROTO_UDP && name == 1 /* UDP_CORK */)
    udp(s)->cork_option = v != 0;
  switch (level) {
    case SOL_SOCKET:
      switch (name) {
        case SO_KEEPALIVE: o.keepalive = v; break;
        case SO_REUSEADDR: o.reuseaddr = v; break;
        case SO_REUSEPORT: o.reuseport = v; break;
        case SO_BROADCAST: o.broadcast = v; break;
        case SO_ZEROCOPY: s->zc.enabled = v; break;
        case SO_RCVTIMEO: o.rcvtimeo_ns = as_timeout_ns(value, len); break;
        case SO_SNDTIMEO: o.sndtimeo_ns = as_timeout_ns(value, len); break;
        case SO_LINGER:
          if (value && len >= sizeof(linger)) {
            linger l;
            memcpy(&l, value, sizeof l);
            o.linger = l.l_onoff;
            o.linger_s = l.l_linger;
          }
          break;
        case SO_RCVBUF:
        case SO_RCVBUFFORCE: {
          socklen_t n = sizeof o.rcvbuf;
          libc::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, &n);  // the kernel doubles it
          break;
        }
        case SO_SNDBUF:
        case SO_SNDBUFFORCE: {
          socklen_t n = sizeof o.sndbuf;
          libc::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.sndbuf, &n);
          break;
        }
      }
      break;
    case IPPROTO_TCP:
      switch (name) {
        case TCP_NODELAY: o.nodelay = v; break;
        case TCP_FASTOPEN:  // (a queue length; 0 turns it off)
          o.fastopen = v > 0;
          // (Before listen(), op_listen says it if the listener is the stack's.)
          if (o.fastopen && s->accelerated && s->kind == Socket::Kind::Tcp &&
              tcp(s)->state == TcpSocket::State::Listening)
            note_fast_open_server(fd);
          break;
        case TCP_CONGESTION:  // a name the kernel knows (it said ENOENT otherwise)
          memset(o.congestion, 0, sizeof o.congestion);
          if (value) memcpy(o.congestion, value, std::min<size_t>(len, sizeof o.congestion - 1));
          break;
        case TCP_KEEPIDLE: o.keep_idle_s = v; break;
        case TCP_KEEPINTVL: o.keep_intvl_s = v; break;
        case TCP_KEEPCNT: o.keep_cnt = v; break;
        case TCP_NOTSENT_LOWAT:
          o.notsent_lowat = uint32_t(v);
          // Linux calls sk_write_space: a mark raised above the bytes
          // not yet sent makes the socket writable now, and its waiters
          // and epoll sets hear it (no acknowledgement may come to tell
          // them, the peer's window shut).
          if (s->kind == Socket::Kind::Tcp && s->accelerated && (s->events() & POLLOUT)) {
            tcp(s)->nospace = false;
            s->notify();
          }
          break;
        // Both act on a connection only: on a listener or a socket not yet
        // connected Linux just records the value (and lwIP asserts that
        // tcp_output never sees a listening PCB: haproxy sets QUICKACK on
        // its listeners).
        case TCP_CORK:
          o.cork = v;
          if (!v && connected_pcb(s)) {
            tcp_output(tcp(s)->pcb);
            rt().stack()->flush();
          }
          break;
        case TCP_QUICKACK:
          if (v && connected_pcb(s)) {
            tcp_ack_now(tcp(s)->pcb);
            tcp_output(tcp(s)->pcb);
            rt().stack()->flush();
          }
          break;
      }
      break;
    case IPPROTO_IP:
      switch (name) {
        case IP_TOS: o.tos = v; break;
        case IP_TTL: o.ttl = v; break;
        case IP_MULTICAST_TTL: o.mcast_ttl = v; break;
        case IP_MULTICAST_LOOP: o.mcast_loop = v; break;
        case IP_MTU_DISCOVER: o.pmtudisc = v; break;
        case IP_RECVERR: o.recverr = v != 0; break;
        case IP_ADD_MEMBERSHIP:
        case IP_DROP_MEMBERSHIP:
          if (s->kind == Socket::Kind::Udp && s->accelerated && value && len >= sizeof(ip_mreq)) {
            ip_mreq m;
            memcpy(&m, value, sizeof m);
            udp(s)->join_group(m.imr_multiaddr.s_addr, m.imr_interface.s_addr,
                               name == IP_ADD_MEMBERSHIP);
            if (name == IP_ADD_MEMBERSHIP) rt().look_at_group_sharing();
          }
          break;
      }
      break;
  }
  if (s->kind == Socket::Kind::Udp) udp(s)->set_rx_option(level, name, value, len);
  else s->set_rx_option(level, name, value, len);
  if (kernel_only_option(s->kind, level, name, value, len)) {
    if (!s->accelerated || s->kind == Socket::Kind::Udp ||
        tcp(s)->state == TcpSocket::State::Listening)
      note_kernel_option(s, fd, level, name);
    if (!s->accelerated) {
      s->kernel_only = true;
    } else if (s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Fresh) {
      // Unconnected again: the kernel's at its next listen() or connect(),
      // keeping meanwhile what a disconnect left pending.
      s->kernel_only = true;
    } else if (s->kind == Socket::Kind::Udp ||
               (s->kind == Socket::Kind::Tcp && tcp(s)->state == TcpSocket::State::Listening)) {
      // Not too late: hand the socket to the kernel, which holds the same port.
      XLOG(kLogDecision, "descriptor %d handed to the kernel (option %d/%d)", fd, level, name);
      // A listener already handed over keeps its queue until it is empty;
      // one with connections waiting keeps them (accepted first).
      if (s->kind == Socket::Kind::Tcp) {
        TcpSocket* l = tcp(s);
        if (l->draining) return 0;
        if (l->hand_listening_to_kernel() && !l->drained()) {
          XLOG(kLogDecision, "descriptor %d: its %zu queued connection(s) stay on the stack",
               fd, l->accept_queue.size());
          return 0;
        }
      }
      hand_to_kernel(s);
      return 0;
    } else if (!not_handed.empty()) {
      log_at(kLogError,
             "option %d/%d on accelerated connection (descriptor %d) has no effect: the connection "
             "could not be handed to the kernel (%s)",
             level, name, fd, not_handed.c_str());
    } else {
      log_at(kLogError, "option %d/%d on accelerated connection (descriptor %d) has no effect",
             level, name, fd);
    }
  }
  if (s->accelerated) {
    if (s->kind == Socket::Kind::Tcp) tcp(s)->apply_option(level, name);
    else udp(s)->apply_option(level, name);
  }
  return 0;
}

int op_getsockopt(Socket* s, int fd, int level, int name, void* value, socklen_t* len) {
  CHILD_GUARD(fd);
  if (s->accelerated && s->kind == Socket::Kind::Udp && level == SOL_SOCKET && name == SO_ERROR &&
      udp(s)->has_kept_error()) {
    // The error a recvmmsg kept, as sk_getsockopt gives SO_ERROR: the
    // length read (a negative one EINVAL), the error taken, then the value
    // and the length written.
    socklen_t want;
    if (!len || copy_from_user(&want, len, sizeof want) != sizeof want) return -EFAULT;
    if (int(want) < 0) return -EINVAL;
    int e;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      e = udp(s)->take_kept_error();
    }
    if (e) {
      const socklen_t n = std::min<socklen_t>(want, sizeof e);
      if (n && (!value || copy_to_user(value, &e, n) != n)) return -EFAULT;
      return copy_to_user(len, &n, sizeof n) == sizeof n ? 0 : -EFAULT;
    }
  }
  if (s->accelerated && s->kind == Socket::Kind::Tcp) {
    // The stack's answer is made in a buffer of ours, then copied to the
    // program's memory as the kernel copies it: a length or a value that
    // cannot be read or written is EFAULT (the kernel reads the length
    // first), never a fault of ours with the lock held.
    socklen_t want;
    if (!len || copy_from_user(&want, len, sizeof want) != sizeof want) return -EFAULT;
    // A negative length: EINVAL at SOL_SOCKET (the kernel's answer);
    // do_tcp_getsockopt takes it as unsigned, a large one.
    if (int(want) < 0 && level != IPPROTO_TCP)
      return libc::getsockopt(fd, level, name, value, len) == 0 ? 0 : neg_errno();
    alignas(8) unsigned char buf[512];  // more than any option the stack answers
    static_assert(sizeof buf >= sizeof(tcp_info));
    socklen_t got = std::min<socklen_t>(want, sizeof buf);
    bool handled;
    int rc;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      rc = tcp(s)->getsockopt(level, name, buf, &got, &handled);
    }
    if (handled) {
      if (rc < 0) return rc;
      // In the kernel's order: do_tcp_getsockopt writes the length first,
      // sk_getsockopt the value first.
      auto put_len = [&] { return copy_to_user(len, &got, sizeof got) == sizeof got; };
      if (level == IPPROTO_TCP && !put_len()) return -EFAULT;
      if (got && (!value || copy_to_user(value, buf, got) != got)) return -EFAULT;
      if (level != IPPROTO_TCP && !put_len()) return -EFAULT;
      return 0;
    }
  }
  return libc::getsockopt(fd, level, name, value, len) == 0 ? 0 : neg_errno();
}

int op_getsockname(Socket* s, int fd, sockaddr* addr, socklen_t* len) {
  CHILD_GUARD(fd);
  // A UDP socket's kernel twin holds the same port and is connected
  // alongside it: it knows the source address a connect() chose. An
  // unconnected TCP socket's knows what a bind since its disconnect chose.
  if (!s->accelerated || s->kind == Socket::Kind::Udp ||
      __atomic_load_n(&tcp(s)->state, __ATOMIC_RELAXED) == TcpSocket::State::Fresh)
    return libc::getsockname(fd, addr, len) == 0 ? 0 : neg_errno();
  if (!addr || !len) return -EFAULT;
  CoreGuard g;
  return write_sockaddr(s->local, addr, len, s->v6) ? 0 : -EFAULT;
}

int op_getpeername(Socket* s, int fd, sockaddr* addr, socklen_t* len) {
  CHILD_GUARD(fd);
  if (!s->accelerated) return libc::getpeername(fd, addr, len) == 0 ? 0 : neg_errno();
  CoreGuard g;
  bool connected = s->kind == Socket::Kind::Tcp
                       ? tcp(s)->state == TcpSocket::State::Connected  // inet_getname: not in TCP_CLOSE
                       : udp(s)->connected;
  // The kernel asks the socket first, then writes to the program's memory.
  if (!connected) return -ENOTCONN;
  if (!addr || !len) return -EFAULT;
  return write_sockaddr(s->remote, addr, len, s->v6) ? 0 : -EFAULT;
}

// ---- descriptors ----

int op_fcntl(Socket* s, int fd, int cmd, unsigned long arg) {
  switch (cmd) {
    case F_GETFL: {
      int fl = libc::fcntl(fd, F_GETFL);
      if (fl < 0) return neg_errno();
      // Listeners are non-blocking in the kernel; the program sees its own.
      return (fl & ~O_NONBLOCK) | (s->nonblock ? O_NONBLOCK : 0);
    }
    case F_SETFL: {
      bool listener = s->accelerated && s->kind == Socket::Kind::Tcp &&
                      tcp(s)->state == TcpSocket::State::Listening;
      int fl = int(arg);
      if (listener) fl |= O_NONBLOCK;
      if (libc::fcntl(fd, F_SETFL, fl) != 0) return neg_errno();
      CoreGuard g;
      s->nonblock = arg & O_NONBLOCK;
      return 0;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int nfd = libc::fcntl(fd, cmd, int(arg));
      if (nfd < 0) return neg_errno();
      return op_dup_to(s, fd, nfd);
    }
    default: {
      int r = libc::fcntl(fd, cmd, arg);
      return r < 0 ? neg_errno() : r;
    }
  }
}

int op_ioctl(Socket* s, int fd, unsigned long request, void* arg) {
  // (The program's memory through copy_from_user/copy_to_user: an
  // argument it cannot give is EFAULT, as the kernel's.)
  if (request == FIONBIO) {
    int on;
    if (!arg || copy_from_user(&on, arg, sizeof on) != sizeof on) return -EFAULT;
    bool listener = s->accelerated && s->kind == Socket::Kind::Tcp &&
                    tcp(s)->state == TcpSocket::State::Listening;
    if (!listener && libc::ioctl(fd, FIONBIO, arg) != 0) return neg_errno();
    CoreGuard g;
    s->nonblock = on;
    return 0;
  }
  // The time the last datagram read arrived (the stack's stamp): old and
  // _NEW forms, microseconds or nanoseconds; 16 bytes on this ABI either way.
  if (s->accelerated && s->kind == Socket::Kind::Udp &&
      (request == SIOCGSTAMP_OLD || request == SIOCGSTAMPNS_OLD || request == SIOCGSTAMP_NEW ||
       request == SIOCGSTAMPNS_NEW)) {
    int64_t v[2];
    int rc;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      rc = udp(s)->get_stamp(request == SIOCGSTAMP_OLD || request == SIOCGSTAMP_NEW, v);
    }
    if (rc < 0) return rc;
    if (!arg || copy_to_user(arg, v, sizeof v) != sizeof v) return -EFAULT;
    return 0;
  }
  if (s->accelerated && (request == SIOCINQ || request == SIOCOUTQ)) {
    int v;
    {
      CoreGuard g;
      if (!still(s, fd)) return -EBADF;
      if (s->kind == Socket::Kind::Tcp) {
        TcpSocket* t = tcp(s);
        if (t->state == TcpSocket::State::Listening) return -EINVAL;
        rt().poll_stack();
        v = request == SIOCINQ ? t->readable_bytes() : t->unacked_bytes();
      } else {
        rt().poll_stack();
        if (request == SIOCOUTQ) {
          v = 0;
        } else if (udp(s)->stack_has_data()) {
          v = udp(s)->next_datagram_bytes();
        } else if (libc::ioctl(fd, SIOCINQ, &v) != 0) {
          return neg_errno();
        }
      }
    }  // (the copy without the lock: a page the program must fault in)
    return copy_to_user(arg, &v, sizeof v) == sizeof v ? 0 : -EFAULT;
  }
  int r = libc::ioctl(fd, request, arg);
  return r < 0 ? neg_errno() : r;
}

int op_dup_to(Socket* s, int fd, int nfd) {
  // The copy is the parent's too (fork), or the table is (vfork): not ours.
  if (rt().forked_child() || rt().vfork_child()) return nfd;
  CoreGuard g;
  if (!still(s, fd) || !rt().fds().fits(nfd)) return nfd;
  ++s->fd_refs;
  s->descriptors.push_back(Descriptor{process_id(), nfd});
  rt().fds().set(nfd, s);
  return nfd;
}

bool op_forget(int fd) {
  Socket* s = rt().fds().take(fd);
  if (!s) return false;
  // A forked child only gives up its descriptor: the socket is the
  // parent's. (A vfork child, which shares our memory, never gets here.)
  if (rt().forked_child()) return true;
  // (A reference the socket did not list still counts once.)
  if (s->forget_descriptors(process_id(), fd) == 0) --s->fd_refs;
  if (s->fd_refs > 0) return true;
  detach_from_epolls(s);
  s->release();
  s->notify();  // sleepers on it wake and see it gone
  rt().maybe_delete(s);
  return true;
}

}  // namespace xdpload::shim

namespace xdpload::shim {

void copy_options_to_kernel(int fd, const SocketOptions& o) {
  // Only what differs from a new socket's defaults.
  SocketOptions def;
  auto set_int = [&](int level, int name, int v) { libc::setsockopt(fd, level, name, &v, sizeof v); };
  if (o.nodelay) set_int(IPPROTO_TCP, TCP_NODELAY, 1);
  if (o.keepalive) set_int(SOL_SOCKET, SO_KEEPALIVE, 1);
  if (o.keep_idle_s != def.keep_idle_s) set_int(IPPROTO_TCP, TCP_KEEPIDLE, o.keep_idle_s);
  if (o.keep_intvl_s != def.keep_intvl_s) set_int(IPPROTO_TCP, TCP_KEEPINTVL, o.keep_intvl_s);
  if (o.keep_cnt != def.keep_cnt) set_int(IPPROTO_TCP, TCP_KEEPCNT, o.keep_cnt);
  if (o.tos) set_int(IPPROTO_IP, IP_TOS, o.tos);
  if (o.linger) {
    linger l{1, o.linger_s};
    libc::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  auto set_timeout = [&](int name, int64_t ns) {
    timeval tv{ns / 1000000000, (ns % 1000000000) / 1000};
    libc::setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv);
  };
  if (o.rcvtimeo_ns) set_timeout(SO_RCVTIMEO, o.rcvtimeo_ns);
  if (o.sndtimeo_ns) set_timeout(SO_SNDTIMEO, o.sndtimeo_ns);
}

}  // namespace xdpload::shim
