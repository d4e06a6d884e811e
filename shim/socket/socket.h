// Socket: an AF_INET TCP or UDP socket the shim may accelerate.
//
// It is created at socket() time as a candidate, beside the real kernel
// socket whose descriptor the program sees. At bind(), connect() or listen()
// the shim decides: the socket goes on the stack (lwIP gets a PCB, the port is
// steered to the AF_XDP socket) or stays with the kernel (the Socket is
// dropped and the descriptor is a plain kernel socket from then on). Options
// set before the decision are applied to the kernel socket at once and
// remembered for the PCB.
//
// All state is read and changed with the CoreLock held. lwIP calls back into
// the socket (data, connection, error) from whichever thread polls the stack;
// every such change ends in notify(), which wakes the threads sleeping on the
// socket and the epoll sets watching it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <vector>

#include "family/arena.h"
#include "shim/socket/rx_cmsg.h"
#include "shim/socket/zerocopy_notices.h"
#include "shim/wait/waiting.h"

struct tcp_pcb;
struct udp_pcb;
struct pbuf;

namespace xdpload::stats {
struct SocketRow;
}

namespace xdpload::shim {

// How often a spinning caller looks at an accelerated socket's kernel side
// (what reaches the backing socket: local senders, fragments, ICMP errors).
// That is the rare path, and each look is a system call: at 20 us it took a
// twentieth of a spinning thread's time and showed in the p99 of round
// trips. A sleeping caller watches the kernel side in the same ppoll.
constexpr int64_t kKernelLookNs = 200000;


class EpollItem;

struct SockAddr {
  uint32_t ip = 0;    // network order
  uint16_t port = 0;  // host order
};

// What setsockopt() asked for, to apply to the PCB.
struct SocketOptions {
  bool nodelay = false;
  char congestion[16] = "";  // TCP_CONGESTION; "": the namespace's default
  bool cork = false;
  bool keepalive = false;
  int keep_idle_s = 7200, keep_intvl_s = 75, keep_cnt = 9;
  bool reuseaddr = false;
  bool reuseport = false;
  bool broadcast = false;
  bool linger = false;
  int linger_s = 0;
  int tos = 0;
  int ttl = 0;  // 0: default
  int64_t rcvtimeo_ns = 0;  // 0: none
  int64_t sndtimeo_ns = 0;
  int rcvbuf = 212992;  // as Linux reports its default
  int sndbuf = 212992;
  int mcast_ttl = 1;
  bool mcast_loop = true;
  int pmtudisc = IP_PMTUDISC_WANT;  // IP_MTU_DISCOVER
  bool recverr = false;              // IP_RECVERR
  uint32_t notsent_lowat = 0;        // TCP_NOTSENT_LOWAT; 0: not set (the sysctl's, unlimited)
  bool fastopen = false;             // TCP_FASTOPEN with a queue: served without Fast Open
};

// A descriptor that refers to a socket: which process, which number.
struct Descriptor {
  pid_t pid;
  int fd;
};

class Socket : public family::Object {
 public:
  enum class Kind : uint8_t { Tcp, Udp };

  Socket(Kind k, int descriptor) : kind(k), fd(descriptor) {
    if (descriptor >= 0) descriptors.push_back(Descriptor{process_id(), descriptor});
  }
  virtual ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  const Kind kind;
  int fd;                    // the descriptor it was created on (the backing socket)
  int fd_refs = 1;           // descriptors that refer to it, in every process: descriptors.size()
  family::vector<Descriptor> descriptors;  // which ones
  // It left the shim (went to the kernel) while other processes of the
  // family held descriptors to it: they forget it at their next call.
  bool departed = false;
  int holds = 0;             // calls sleeping on it right now
  bool nonblock = false;     // O_NONBLOCK of the open file description
  bool accelerated = false;  // lwIP has it; false: a candidate
  bool bound = false;        // bind() happened (on the kernel socket)
  // The kernel socket was bound to a port named in the bind (Linux's
  // SOCK_BINDPORT_LOCK: a disconnect keeps it): by the program, or by
  // xdpload choosing a client's port.
  bool port_fixed = false;
  bool kernel_only = false;  // an option the stack cannot honour was set
  bool v6 = false;           // an AF_INET6 socket: its IPv4 traffic (v4-mapped) may be ours
  // The kernel socket's inode: how a vfork child, whose descriptor table
  // is not the one the family knows, finds which of its descriptors are
  // this socket (hand_inherited_to_kernel).
  uint64_t twin_ino = 0;
  bool remote_accelerated = false;  // UDP: the connected peer is reached through the stack
  // UDP: when a receive that finds nothing looks at the kernel socket
  // again (a spinning receiver's calls skip it meanwhile), in the clock's
  // ns and in TSC ticks (0: unknown) for the unlocked look. Cleared when a
  // poll() finds the kernel side readable (kernel_side_ready): the call
  // that follows must look there.
  int64_t next_kernel_check_ns = 0;
  uint64_t next_kernel_check_tsc = 0;
  // poll()'s own look at the kernel side, at most every kKernelLookNs
  // while it spins (a listener's or UDP socket's).
  int64_t next_poll_kernel_ns = 0;
  // An edge-triggered epoll item watches it: a receive looks at the kernel
  // side every time (an edge the real instance reported is not repeated:
  // a receive that skipped the look would leave the datagram unread until
  // the next one). Kept by the epoll sets, under the lock.
  bool edge_watched = false;
  // UDP: its port's group datagrams go through the kernel (another
  // program's socket holds the port too: shim/runtime/group_sharing.cc):
  // every receive looks at the kernel side, as for edge_watched.
  bool kernel_fed = false;
  // Its kernel side may hold datagrams a receive must not skip.
  bool kernel_side_always() const {
    return __atomic_load_n(&edge_watched, __ATOMIC_RELAXED) ||
           __atomic_load_n(&kernel_fed, __ATOMIC_RELAXED);
  }
  // UDP: when a send looks again for an error the kernel socket holds.
  int64_t next_error_check_ns = 0;
  uint64_t next_error_check_tsc = 0;
  SocketOptions opt;
  // (The clock's first: a look that finds the TSC's cleared finds it too.)
  void kernel_side_ready() {
    __atomic_store_n(&next_kernel_check_ns, int64_t(0), __ATOMIC_RELAXED);
    __atomic_store_n(&next_kernel_check_tsc, uint64_t(0), __ATOMIC_RELEASE);
  }
  ZeroCopyNotices zc;  // MSG_ZEROCOPY completions owed (zerocopy_notices.h)
  RxCmsgOptions rx_cmsg;  // receive timestamps and control messages asked for (rx_cmsg.h)
  // Counts this socket among those that want software receive timestamps
  // as rx_cmsg asks (on), or not (off, at release): the driver stamps
  // bursts while any does. Lock held.
  void count_stamp_user(bool on);
  bool stamp_user = false;
  // A receive option the kernel accepted (timestamps, IP_PKTINFO...): true
  // if it is one served here. (UdpSocket's also follows OPT_ID's keys.)
  bool set_rx_option(int level, int name, const void* value, socklen_t len);
  SockAddr local, remote;
  WaitQueue waiters;
  uint64_t seq = 0;  // bumped at every state change (edge-triggered epoll)
  family::vector<EpollItem*> watchers;

  // POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDHUP as they stand now, from the
  // stack's side (the kernel side of a listener or UDP socket is polled by the
  // caller on the descriptor itself).
  virtual uint32_t events() = 0;
  // A listener with connections waiting for accept(): the one change that
  // EPOLLEXCLUSIVE wakes a single set for (notify()).
  virtual bool connections_waiting() const { return false; }
  // Readiness can also come from the kernel backing socket (a listener's
  // loopback connections, datagrams the kernel delivered to a UDP socket).
  virtual bool kernel_side() const = 0;
  // The program's last descriptor is gone: close the stack side.
  virtual void release() = 0;

  // State changed: wake sleepers and epoll sets.
  void notify();
  // A listener's new connection: as notify(), except that of the threads
  // blocked in accept() one is woken (WaitQueue::wake_exclusive).
  void notify_connection();
  // Of the threads blocked in accept(), the next one woken: for a
  // connection still waiting that the one woken before left without.
  void wake_next_acceptor();
  // (notify() and notify_connection(): the epoll sets that watch it.)
  void notify_watchers();
  // Forgets the references of process `pid` (only descriptor `fd` when
  // fd >= 0), fd_refs with them; returns how many there were.
  int forget_descriptors(pid_t pid, int fd = -1);
  // A row of xdpload-stat's socket table.
  virtual void stat_row(stats::SocketRow* row) const = 0;

  // The Runtime's list of accelerated sockets (for xdpload-stat).
  Socket* live_prev = nullptr;
  Socket* live_next = nullptr;
  bool tracked = false;
};

// Port steering and the kernel's reservation of the port, shared by every
// PCB that uses a local port (a listener and its connections, a connection
// in TIME_WAIT after the program closed it).
struct PortKey {
  uint8_t proto;
  uint16_t port;
  bool operator==(const PortKey& o) const { return proto == o.proto && port == o.port; }
};

}  // namespace xdpload::shim
