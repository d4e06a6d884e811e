// The extensions API's zero-copy receive and send (include/xdpload/
// extensions.h, 1.1), served by the preloaded library.
//
// Receive: the pbufs a connection's data waits in (for what the link
// received, pbufs that point into the AF_XDP frames the NIC wrote) are
// taken off the socket's queue one by one and lent to the program, which
// reads them where they lie and gives them back. The window reopens as
// they are taken, as it does for a recv() of the same bytes; what keeps a
// program that holds many from starving the link is the family's limit on
// lent buffers and, before that, the link's own answer to frame pressure
// (received data copied out of frames once half of them are held).
//
// Send: transmit frames are lent with the 128 bytes of headroom a segment's
// headers need in front (LinkNetif::alloc_tcp_data_pbuf); the program
// writes the data, and each frame becomes one segment that goes to the wire
// from where it lies, as sendfile()'s frames do (shim/files/send_file.cc).
//
// Handles, not pointers, name the buffers (lent_buffers.h). The program's
// memory (its iovecs) is written with the CoreLock let go.
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "include/xdpload/extensions.h"
#include "shim/ext/extensions_present.h"
#include "shim/ext/lent_buffers.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/pbuf_chain.h"
#include "shim/socket/sockaddr_util.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/tcp_socket.h"
#include "shim/socket/udp_socket.h"
#include "shim/wait/waiting.h"
#include "stack/link_netif.h"

extern "C" {
#include "lwip/tcp.h"
}

#define XDPLOAD_EXT extern "C" __attribute__((visibility("default")))

namespace xdpload::shim {
namespace {

using stack::CoreGuard;
using Kind = LentBuffers::Kind;

// Pieces one call hands out or takes at most (the program calls again).
constexpr int kMaxPieces = 64;

// How many buffers the family may hold: a quarter of the link's frames,
// so that lent buffers alone never leave the link short (Runtime's
// frames_short() starts copying at half).
uint32_t lend_limit() { return Runtime::get().stack()->link().total_frames() / 4; }

// How many more the family may take now, at most a call's worth (lock held).
int lend_room() {
  const uint32_t limit = lend_limit(), lent = Runtime::get().lent().lent();
  return lent >= limit ? 0 : int(std::min<uint32_t>(limit - lent, kMaxPieces));
}

// The socket of ours behind `fd`, or the call's error: -EBADF when `fd` is
// not open, -ESOCKTNOSUPPORT when it is not a socket on the stack.
int socket_of(int fd, Socket** out) {
  Socket* s = Runtime::get().fds().get(fd);
  if (s && s->accelerated && !s->departed) {
    *out = s;
    return 0;
  }
  return libc::fcntl(fd, F_GETFD) < 0 ? -EBADF : -ESOCKTNOSUPPORT;
}

// Each pbuf of `chain` alone into out[] (the program gives each back on its
// own). Returns how many.
int split_chain(pbuf* chain, pbuf** out) {
  int n = 0;
  for (pbuf* rest; chain; chain = rest) {
    rest = take_first_pbuf(chain);
    out[n++] = chain;
  }
  return n;
}

// The UDP side of the receive: a datagram of the stack's queue in place, or
// one the backing kernel socket has, read into a buffer of the stack's heap.
struct InPlaceReceiver final : UdpReceiver {
  UdpSocket* u;
  int fd;
  int max;
  pbuf** out;
  int* n;
  SockAddr* from;

  ssize_t from_stack() override {
    int pieces;
    const int room = lend_room();
    pbuf* d = u->take_datagram(std::min(max, room), &pieces, from);
    if (!d) {
      *n = pieces;
      // More pieces than the program has room for: -EMSGSIZE, it is told
      // how many. More than the family may still take: wait for releases.
      return pieces > max ? -EMSGSIZE : -ENOBUFS;
    }
    const ssize_t bytes = d->tot_len;
    *n = split_chain(d, out);
    return bytes;
  }

  ssize_t from_kernel() override {
    // (Fragments the kernel reassembled, senders on this host.) Its size
    // first, so that a buffer that cannot be had leaves it queued.
    if (lend_room() < 1) return -ENOBUFS;
    ssize_t len = libc::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0) return -errno;
    pbuf* p = pbuf_alloc(PBUF_RAW, u16_t(len), PBUF_RAM);
    if (!p) return -ENOBUFS;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    ssize_t r = libc::recvfrom(fd, p->payload, size_t(len), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&ss), &sl);
    if (r < 0) {
      int e = errno;
      pbuf_free(p);
      return -e;
    }
    read_sockaddr(reinterpret_cast<sockaddr*>(&ss), sl, from, true);
    pbuf_realloc(p, u16_t(r));
    out[0] = p;
    *n = 1;
    return r;
  }
};

// A call's copy of the program's values (read before the lock is taken):
// on the stack for the usual sizes, no allocation per call.
template <typename T>
class CallCopy {
 public:
  explicit CallCopy(size_t n) : p_(local_) {
    if (n > kMaxPieces) {
      big_.resize(n);
      p_ = big_.data();
    }
  }
  T* data() { return p_; }
  T& operator[](size_t i) { return p_[i]; }

 private:
  T local_[kMaxPieces];
  std::vector<T> big_;
  T* p_;
};

// A zero-copy send's frames, in order: each, filled by the program, becomes
// one segment, as many at a time as lwIP's send buffer and queue take.
class LentSource final : public TcpSocket::SendSource {
 public:
  LentSource(const uint64_t* handles, const uint32_t* lens, int n, pid_t pid)
      : handles_(handles), lens_(lens), n_(n), pid_(pid) {}
  int frames_sent() const { return next_; }

  // Room for the next frame whole: its bytes in the send buffer, and its
  // segment's 2 entries in the queue (lwIP's send loop keeps 4 spare).
  bool ready(const tcp_pcb* pcb) const override {
    if (next_ >= n_) return true;
    // (A frame longer than a segment now goes as a copy, in several.)
    const uint16_t seg = tcp_write_pbuf_max(pcb);
    const int segments = seg ? int((lens_[next_] + seg - 1) / seg) : 1;
    return lens_[next_] <= tcp_sndbuf(pcb) && TcpSocket::queue_room(pcb, 2) >= segments;
  }

  size_t queue(tcp_pcb* pcb, size_t, size_t, bool more, Stop* stop) override {
    LentBuffers& lent = Runtime::get().lent();
    size_t room = tcp_sndbuf(pcb);
    const uint16_t seg = tcp_write_pbuf_max(pcb);
    const int slots = TcpSocket::queue_room(pcb, 2);
    pbuf* p[kMaxPieces];
    int k = 0;
    size_t bytes = 0;
    while (next_ + k < n_ && k < std::min(slots, kMaxPieces)) {
      const uint32_t len = lens_[next_ + k];
      if (bytes + len > room || len > seg) break;
      pbuf* q = lent.find(handles_[next_ + k], Kind::Transmit, pid_);
      if (!q) break;  // another thread of the program released it meanwhile
      q->len = q->tot_len = u16_t(len);  // (one pbuf, its frame's payload)
      p[k++] = q;
      bytes += len;
    }
    if (k == 0) return queue_longer_than_segment(pcb, seg, more, stop);
    const bool last = next_ + k == n_;
    int queued = tcp_write_pbufs(pcb, p, u16_t(k), more || !last ? TCP_WRITE_FLAG_MORE : 0);
    size_t queued_bytes = 0;
    for (int i = 0; i < queued; ++i) {
      lent.take(handles_[next_ + i]);  // lwIP's now
      queued_bytes += lens_[next_ + i];
    }
    next_ += queued;
    Runtime::get().counters().zc_send_bytes += queued_bytes;
    return queued_bytes;
  }

 private:
  // The next frame does not go as one segment (or is gone): a frame longer
  // than a segment carries now (the MSS fell since it was lent) is copied
  // into segments; a released one ends the send.
  size_t queue_longer_than_segment(tcp_pcb* pcb, uint16_t seg, bool more, Stop* stop) {
    LentBuffers& lent = Runtime::get().lent();
    const uint32_t len = lens_[next_];
    pbuf* q = lent.find(handles_[next_], Kind::Transmit, pid_);
    if (!q) {
      stop->end = true;
      if (next_ == 0) stop->error = -EINVAL;
      return 0;
    }
    if (len <= seg || len > tcp_sndbuf(pcb)) return 0;  // wait for room
    const bool last = next_ + 1 == n_;
    u8_t fl = TCP_WRITE_FLAG_COPY | (more || !last ? TCP_WRITE_FLAG_MORE : 0);
    if (tcp_write(pcb, q->payload, u16_t(len), fl) != ERR_OK) return 0;  // queue full: wait
    pbuf_free(lent.take(handles_[next_]));
    ++next_;
    Runtime::get().counters().zc_send_copied += len;
    return len;
  }

  const uint64_t* handles_;
  const uint32_t* lens_;
  int n_;
  pid_t pid_;
  int next_ = 0;
};

}  // namespace
}  // namespace xdpload::shim

using namespace xdpload;
using namespace xdpload::shim;

XDPLOAD_EXT ssize_t xdpload_zc_recv(int fd, struct xdpload_zc_iovec* iov, int* iovcnt, int flags,
                                    struct sockaddr* from, socklen_t* fromlen) {
  if (!extensions_present()) return -ENOSYS;
  // (No cancellation point: frames lent to a thread that ended in the call
  // would be lost to the program.)
  stack::NoCancellation not_a_cancellation_point;
  if (!iov || !iovcnt) return -EFAULT;
  const int room = *iovcnt;  // (the program's memory: read and written without the lock)
  if (room < 1 || (flags & ~MSG_DONTWAIT)) return -EINVAL;
  Socket* s;
  if (int rc = socket_of(fd, &s)) return rc;
  Runtime& rt = Runtime::get();
  const pid_t me = process_id();
  const bool tcp = s->kind == Socket::Kind::Tcp, v6 = s->v6;
  const int max = std::min(room, kMaxPieces);
  pbuf* p[kMaxPieces];
  xdpload_zc_iovec got[kMaxPieces];
  int n = 0;
  SockAddr source{};
  ssize_t r;
  {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    OpHold hold(s);
    // (The family's room is asked again when there is something to take:
    // other threads may borrow while this one waits.)
    if (lend_room() < 1) return -ENOBUFS;
    if (tcp) {
      r = static_cast<TcpSocket*>(s)->recv_in_place(p, max, lend_room, &n, flags);
    } else {
      InPlaceReceiver receiver;
      receiver.u = static_cast<UdpSocket*>(s);
      receiver.fd = fd;
      receiver.max = max;
      receiver.out = p;
      receiver.n = &n;
      receiver.from = &source;
      r = udp_receive(s, fd, s->nonblock || (flags & MSG_DONTWAIT), receiver);
      if (r == kNotOnStack) return -ESOCKTNOSUPPORT;  // (it left for the kernel meanwhile)
    }
    if (r >= 0) {
      LentBuffers& lent = rt.lent();
      for (int i = 0; i < n; ++i) {
        got[i].base = p[i]->payload;
        got[i].len = p[i]->len;
        got[i].buf = lent.lend(p[i], Kind::Received, 0, me, UINT32_MAX);  // (room checked)
      }
      rt.counters().zc_recv_bytes += uint64_t(r);
    }
  }
  if (r == -EMSGSIZE) *iovcnt = n;  // the pieces the datagram needs
  if (r < 0) return r;
  std::copy(got, got + n, iov);
  *iovcnt = n;
  if (!tcp && from && fromlen) write_sockaddr(source, from, fromlen, v6);
  return r;
}

XDPLOAD_EXT int xdpload_zc_alloc(int fd, struct xdpload_zc_iovec* iov, int n, int flags) {
  if (!extensions_present()) return -ENOSYS;
  if (!iov) return -EFAULT;
  if (n < 1 || flags) return -EINVAL;
  Socket* s;
  if (int rc = socket_of(fd, &s)) return rc;
  if (s->kind != Socket::Kind::Tcp) return -EOPNOTSUPP;
  Runtime& rt = Runtime::get();
  const pid_t me = process_id();
  xdpload_zc_iovec got[kMaxPieces];
  int k = 0;
  {
    CoreGuard g;
    if (!still(s, fd)) return -EBADF;
    auto* t = static_cast<TcpSocket*>(s);
    if (t->state == TcpSocket::State::Fresh || t->state == TcpSocket::State::Listening ||
        t->state == TcpSocket::State::Connecting)
      return -ENOTCONN;
    if (t->shut_wr || !t->pcb) return t->error && !t->shut_wr ? -t->error : -EPIPE;
    const uint16_t seg = tcp_write_pbuf_max(t->pcb);
    if (!seg) return -ENOBUFS;
    stack::LinkNetif& nif = rt.stack()->driver();
    LentBuffers& lent = rt.lent();
    const uint32_t limit = lend_limit();
    for (; k < std::min(n, kMaxPieces) && !rt.frames_short(); ++k) {
      pbuf* p = nif.alloc_tcp_data_pbuf(seg);
      if (!p) break;
      uint64_t h = lent.lend(p, Kind::Transmit, seg, me, limit);
      if (!h) {
        pbuf_free(p);
        break;
      }
      got[k] = xdpload_zc_iovec{p->payload, seg, h};
    }
  }
  if (k == 0) return -ENOBUFS;
  std::copy(got, got + k, iov);
  return k;
}

XDPLOAD_EXT int xdpload_zc_send(int fd, const struct xdpload_zc_iovec* iov, int n, int flags) {
  if (!extensions_present()) return -ENOSYS;
  // (No cancellation point: frames lent to a thread that ended in the call
  // would be lost to the program.)
  stack::NoCancellation not_a_cancellation_point;
  if (!iov) return -EFAULT;
  if (n < 1 || (flags & ~(MSG_DONTWAIT | MSG_MORE))) return -EINVAL;
  Socket* s;
  if (int rc = socket_of(fd, &s)) return rc;
  if (s->kind != Socket::Kind::Tcp) return -EOPNOTSUPP;
  // The program's iovecs, read before the lock is taken.
  CallCopy<uint64_t> handles{size_t(n)};
  CallCopy<uint32_t> lens{size_t(n)};
  size_t total = 0;
  for (int i = 0; i < n; ++i) {
    if (iov[i].len == 0 || iov[i].len > 0xffff) return -EINVAL;
    handles[size_t(i)] = iov[i].buf;
    lens[size_t(i)] = uint32_t(iov[i].len);
    total += iov[i].len;
  }
  const pid_t me = process_id();
  {
    // Every handle a frame lent to this process for sending, once, and each
    // length within what it was lent with: else nothing is sent.
    CoreGuard g;
    LentBuffers& lent = Runtime::get().lent();
    if (!lent.held(handles.data(), n, me, Kind::Transmit)) return -EINVAL;
    for (int i = 0; i < n; ++i) {
      uint16_t room = 0;
      lent.find(handles[size_t(i)], Kind::Transmit, me, &room);
      if (lens[size_t(i)] > room) return -EINVAL;
    }
  }
  LentSource src(handles.data(), lens.data(), n, me);
  // (No SIGPIPE: the API returns its errors.)
  ssize_t r = op_send_from(s, fd, src, total, flags | MSG_NOSIGNAL);
  if (r == kNotOnStack) return -ESOCKTNOSUPPORT;
  if (src.frames_sent() > 0) return src.frames_sent();
  return r < 0 ? int(r) : 0;
}

XDPLOAD_EXT int xdpload_zc_release(const xdpload_zc_handle* bufs, int n) {
  if (!extensions_present()) return -ENOSYS;
  if (n < 0) return -EINVAL;
  if (n == 0) return 0;
  if (!bufs) return -EFAULT;
  CallCopy<uint64_t> handles{size_t(n)};
  std::copy(bufs, bufs + n, handles.data());
  CoreGuard g;
  return Runtime::get().lent().release(handles.data(), n, process_id()) ? 0 : -EINVAL;
}
