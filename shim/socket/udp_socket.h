// UdpSocket: a UDP socket on the stack.
//
// Datagrams reach it two ways: from lwIP (frames steered to the AF_XDP
// socket) and from the kernel socket bound to the same port (fragmented
// datagrams the kernel reassembled, GSO super-packets it segmented, senders
// on loopback). recv takes from the stack's queue first, then the kernel's.
#pragma once

#include <deque>

#include "shim/socket/rx_cmsg.h"
#include "shim/socket/socket.h"
#include "shim/socket/tx_stamps.h"

namespace xdpload::shim {

class UdpSocket final : public Socket {
 public:
  explicit UdpSocket(int fd) : Socket(Kind::Udp, fd) {}
  ~UdpSocket() override;

  uint32_t events() override;
  bool kernel_side() const override { return true; }
  void release() override;

  // ---- the program's calls, lock held; >= 0 or -errno ----
  // Puts the socket on the stack at its local address (bound in the kernel).
  int open();
  // The PCB on `local` again, for a socket on the stack whose port a
  // disconnect released (pcb is null then).
  int bind_pcb();
  int connect(const SockAddr& to);
  // connect(AF_UNSPEC), once the kernel twin has done it. `now` is the
  // twin's local address after it: a port the kernel chose (no bind with a
  // port) is released, as Linux's __udp_disconnect does; the stack gives it
  // up too, and the next send, connect or bind takes the twin's next one.
  // Datagrams already queued stay readable.
  int disconnect(const SockAddr& now);
  // What a sendmsg's control messages ask for this datagram only (Linux's
  // ip_cmsg_send and __sock_cmsg_send): TTL, TOS, transmit timestamps.
  struct SendControl {
    int ttl = -1;         // IP_TTL, -1: the socket's
    int tos = -1;         // IP_TOS, -1: the socket's
    int64_t tsflags = -1;  // SO_TIMESTAMPING's record flags, -1: the socket's
    // IP_PKTINFO: the interface (0: any) and source address (0: the
    // route's) this datagram asks for.
    int pktinfo_ifindex = 0;
    uint32_t pktinfo_source = 0;
  };
  // Reads msg_control; -EINVAL for a value Linux refuses.
  static int parse_send_control(const msghdr* msg, SendControl* out);
  // len: the iovec's total (the caller has summed it).
  ssize_t send(const iovec* iov, int iovcnt, size_t len, const SockAddr* to,
               const SendControl* ctl = nullptr);
  // A datagram Linux refuses as too long (EMSGSIZE): beyond one IPv4
  // datagram, or beyond the MTU where the socket forbids fragments.
  bool too_long(size_t len) const;
  // DF on its datagrams (IP_MTU_DISCOVER).
  bool dont_fragment() const;
  // A datagram whose fate Linux decides in ways the stack does not copy:
  // too long, or fragments that may not fit twice the send buffer (ENOBUFS
  // beyond it, with a small SO_SNDBUF). The kernel twin sends it (or
  // refuses it, with the error queue entry IP_RECVERR asks for).
  bool kernel_judges(size_t len) const;
  // The stack's UDP fast path (LinkNetif::send_udp) for a datagram that
  // needs nothing of lwIP's; false when it does (nothing sent then).
  bool send_direct(const iovec* iov, int iovcnt, size_t len, const SockAddr* to,
                   const SendControl* ctl);
  // From the stack's queue only: -EAGAIN when it is empty. With msg, its
  // control messages too (those the socket asked for).
  ssize_t recv_from_stack(const iovec* iov, int iovcnt, int flags, sockaddr* from,
                          socklen_t* fromlen, int* msg_flags, msghdr* msg = nullptr);
  bool stack_has_data() const { return !queue.empty(); }
  // The zero-copy receive's datagram: the front of the stack's queue, taken
  // off it (the caller owns the pbuf chain), with its source. nullptr when
  // the queue is empty, or when the chain has more than `max_pieces` pbufs
  // (*pieces says how many; it stays queued).
  pbuf* take_datagram(int max_pieces, int* pieces, SockAddr* from);
  // Datagrams queued, readable without the CoreLock (a hint).
  uint32_t queued_hint() const { return __atomic_load_n(&queued_count, __ATOMIC_RELAXED); }
  int next_datagram_bytes() const;
  int join_group(uint32_t group, uint32_t iface_addr, bool join);
  int groups = 0;  // multicast groups joined (a port whose sharing is looked at)
  void apply_option(int level, int name);
  // A receive option the kernel accepted (timestamps, IP_PKTINFO...): true
  // if it is one of those served here.
  bool set_rx_option(int level, int name, const void* value, socklen_t len);
  void stat_row(stats::SocketRow* row) const override;

  udp_pcb* pcb = nullptr;
  bool connected = false;
  // shutdown() as Linux records it on a datagram socket, connected or not
  // (inet_shutdown): sends fail with EPIPE (no SIGPIPE), a blocking
  // receive with nothing queued returns 0, poll says POLLIN|POLLRDHUP, and
  // POLLHUP once both are shut.
  bool shut_rd = false;
  bool shut_wr = false;
  int shutdown(int how, int fd_now);
  // An error that ended a recvmmsg() after it had received a datagram at
  // least (do_recvmmsg keeps it as sk_err): the socket's next receive,
  // send or recvmmsg fails with it, or SO_ERROR reports it, each clearing
  // it; poll says POLLERR meanwhile. (Read without the lock by the calls'
  // fast paths: written under it.)
  int kept_error = 0;
  void keep_error(int e) { __atomic_store_n(&kept_error, e, __ATOMIC_RELAXED); }
  int take_kept_error() {
    const int e = kept_error;
    __atomic_store_n(&kept_error, 0, __ATOMIC_RELAXED);
    return e;
  }
  bool has_kept_error() const { return __atomic_load_n(&kept_error, __ATOMIC_RELAXED) != 0; }
  // A datagram being corked on the kernel socket (a send with MSG_MORE, or
  // UDP_CORK set): sends go there until it is complete.
  bool corked = false;
  bool cork_option = false;
  // Whether a send to `to` goes through the stack: Runtime's verdict on the
  // last destination named, remembered here so that a sender writing to one
  // peer (replies, a feed) asks the rules and the shared route cache once
  // per Runtime::kRouteRecheckMs instead of per datagram (their mutex and
  // hash lookup were a tenth of the send path). Read and written without
  // the lock: address, port and verdict travel in one word; racing senders
  // can at worst keep a verdict one recheck period longer.
  bool destination_via_stack(const SockAddr& to);
  uint32_t drops = 0;     // datagrams dropped on a full receive buffer (SO_RXQ_OVFL)
  int64_t sk_stamp_ns = kNoStampYet;  // what SIOCGSTAMP answers
  TxStamps tx_stamps;                 // transmit timestamps waiting on the error queue
  // SIOCGSTAMP and friends; -errno or 0.
  int get_stamp(bool usec, int64_t out[2]);

 private:
  static void on_recv(void* arg, udp_pcb* p, pbuf* data, const void* addr, uint16_t port);
  static void on_frame_sent(void* ctx, const uint8_t* frame, uint32_t len, const timespec& stamp);
  static uint64_t on_frame_held(void* ctx);

  struct Datagram {
    pbuf* data;
    SockAddr from;
    RxMeta meta;
  };
  family::deque<Datagram> queue;
  uint64_t last_destination = 0;           // ip << 32 | port << 16 | via stack << 1 | 1
  uint64_t last_destination_until_ms = 0;  // when to ask Runtime again
  size_t queued_bytes = 0;
  uint32_t queued_count = 0;  // queue.size(), for queued_hint()
  void set_queued_count() { __atomic_store_n(&queued_count, uint32_t(queue.size()), __ATOMIC_RELAXED); }
};

}  // namespace xdpload::shim
