// The exported socket, data and descriptor calls. Every one has the same
// shape: look the descriptor up; not ours, the real function at once;
// ours, the operation, whose -errno becomes -1/errno here and only here.
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "rings/private_fd.h"
#include "rings/stage_trace.h"
#include "shim/wait/epoll_set.h"
#include "shim/intercept/export.h"
#include "shim/files/send_file.h"
#include "shim/socket/passed_connections.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/udp_socket.h"
#include "shim/socket/user_memory.h"

using namespace xdpload;
using namespace xdpload::shim;

extern "C" void __chk_fail(void) __attribute__((noreturn));

namespace {

inline Socket* ours(int fd) { return Runtime::get().socket_at(fd); }

iovec one(void* buf, size_t n) { return iovec{buf, n}; }

// A call that is a cancellation point (recv(), send(), accept()...) acts on
// a cancellation the program asked for before the call (pthread_cancel
// while the thread was elsewhere) at its start, as glibc's does: the
// thread ends there, nothing sent or taken. Inside, the stack's lock
// holds cancellation off, and only the call's sleep lets it in
// (Runtime::block_impl).
inline void cancellation_point() { pthread_testcancel(); }

// recvfrom's address goes back as move_addr_to_user gives it, after the
// receive (the data taken whatever follows): the length read (EFAULT when
// it cannot be, EINVAL when negative), as much of the address as it asks
// for written, then the address's own length. Without an address the
// length is not looked at. (Nothing of the program's is read before the
// receive: a spin's empty call costs what it did.)
ssize_t recv_one(Socket* s, int fd, void* buf, size_t n, int flags, sockaddr* from,
                 socklen_t* fromlen) {
  // (import_ubuf: the length cut to what one call moves. The buffer's
  // range is then asked of access_ok, whose bound the kernels differ on:
  // left to the copy.)
  n = std::min(n, kMaxRwCount);
  iovec iov = one(buf, n);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  sockaddr_storage address;
  if (from) {
    msg.msg_name = &address;
    msg.msg_namelen = sizeof address;
  }
  ssize_t r = op_recvmsg(s, fd, &msg, flags, false);
  if (r < 0 || !from) return r;
  int asked;
  if (!fromlen || copy_from_user(&asked, fromlen, sizeof asked) != sizeof asked) return -EFAULT;
  const int length = int(msg.msg_namelen);
  if (asked > length) asked = length;
  if (asked < 0) return -EINVAL;
  if (asked && copy_to_user(from, &address, size_t(asked)) != size_t(asked)) return -EFAULT;
  if (copy_to_user(fromlen, &length, sizeof length) != sizeof length) return -EFAULT;
  return r;
}

// Stage marks of the data calls (rings/stage_trace.h: nothing unless the
// build asks for them).
ssize_t sent(ssize_t r) {
  trace::mark(trace::kSendReturns);
  return r;
}
ssize_t received(ssize_t r) {
  if (r >= 0) trace::mark(trace::kRecvReturns);
  return r;
}

ssize_t send_one(Socket* s, int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                 socklen_t tolen) {
  n = std::min(n, kMaxRwCount);  // (as recv_one)
  iovec iov = one(const_cast<void*>(buf), n);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_name = const_cast<sockaddr*>(to);
  msg.msg_namelen = to ? tolen : 0;
  return op_sendmsg(s, fd, &msg, flags);
}

// An mmsghdr's msg_len, written as put_user writes it: false when the
// program's memory cannot take it.
bool put_msg_len(mmsghdr* m, ssize_t len) {
  const unsigned v = unsigned(len);
  return copy_to_user(&m->msg_len, &v, sizeof v) == sizeof v;
}

// close()/dup2() over a descriptor: our side first, under the lock.
void forget(int fd) {
  // (Not from a vfork child: the table is its parent's.)
  if (passed_any() && !Runtime::get().vfork_child()) passed_forget(fd);
  if (!ours(fd) && !epoll_set_of(fd)) return;
  // A vfork child closing its copy leaves the parent's socket alone.
  if (Runtime::get().vfork_child()) return;
  stack::CoreGuard g;
  op_forget(fd);
  epoll_set_forget(fd);
}

}  // namespace

// ---- sockets ----

int xdpload_socket(int domain, int type, int protocol) {
  int saved = errno;
  return done(op_socket(domain, type, protocol), saved);
}

int xdpload_bind(int fd, const struct sockaddr* addr, socklen_t len) {
  Socket* s = ours(fd);
  if (!s) return libc::bind(fd, addr, len);
  int saved = errno;
  return done(op_bind(s, fd, addr, len), saved);
}

int xdpload_listen(int fd, int backlog) {
  Socket* s = ours(fd);
  if (!s) return libc::listen(fd, backlog);
  int saved = errno;
  return done(op_listen(s, fd, backlog), saved);
}

int xdpload_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  if (passed_any()) {
    cancellation_point();  // (before a passed connection is taken)
    if (int r = passed_accept(fd, addr, len, flags); r != kNoPassed) return r;
  }
  Socket* s = ours(fd);
  if (!s) return libc::accept4(fd, addr, len, flags);
  int saved = errno;
  cancellation_point();
  int r = op_accept(s, fd, addr, len, flags);
  // (The listener left for the kernel while the call waited.)
  if (r == kNotOnStack) return libc::accept4(fd, addr, len, flags);
  return done(r, saved);
}

int xdpload_accept(int fd, struct sockaddr* addr, socklen_t* len) {
  if (passed_any()) {
    cancellation_point();  // (before a passed connection is taken)
    if (int r = passed_accept(fd, addr, len, 0); r != kNoPassed) return r;
  }
  Socket* s = ours(fd);
  if (!s) return libc::accept(fd, addr, len);
  int saved = errno;
  cancellation_point();
  int r = op_accept(s, fd, addr, len, 0);
  if (r == kNotOnStack) return libc::accept(fd, addr, len);
  return done(r, saved);
}

int xdpload_connect(int fd, const struct sockaddr* addr, socklen_t len) {
  Socket* s = ours(fd);
  if (!s) return libc::connect(fd, addr, len);
  int saved = errno;
  cancellation_point();
  return done(op_connect(s, fd, addr, len), saved);
}

int xdpload_shutdown(int fd, int how) {
  Socket* s = ours(fd);
  if (!s) return libc::shutdown(fd, how);
  int saved = errno;
  return done(op_shutdown(s, fd, how), saved);
}

int xdpload_getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
  Socket* s = ours(fd);
  if (!s) return libc::getsockopt(fd, level, name, value, len);
  int saved = errno;
  return done(op_getsockopt(s, fd, level, name, value, len), saved);
}

int xdpload_setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
  Socket* s = ours(fd);
  if (!s) return libc::setsockopt(fd, level, name, value, len);
  int saved = errno;
  return done(op_setsockopt(s, fd, level, name, value, len), saved);
}

int xdpload_getsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  Socket* s = ours(fd);
  if (!s) return libc::getsockname(fd, addr, len);
  int saved = errno;
  return done(op_getsockname(s, fd, addr, len), saved);
}

int xdpload_getpeername(int fd, struct sockaddr* addr, socklen_t* len) {
  Socket* s = ours(fd);
  if (!s) return libc::getpeername(fd, addr, len);
  int saved = errno;
  return done(op_getpeername(s, fd, addr, len), saved);
}

// ---- data ----

ssize_t xdpload_read(int fd, void* buf, size_t n) {
  Socket* s = ours(fd);
  if (!s) return libc::read(fd, buf, n);
  int saved = errno;
  cancellation_point();
  // vfs_read asks access_ok of the whole count before cutting it: past
  // SSIZE_MAX it fails on every kernel (the sum wraps or turns negative).
  // A count of 0 is 0, nothing taken (sock_read_iter).
  if (ssize_t(n) < 0) return done(ssize_t(-EFAULT), saved);
  if (n == 0) return done(0, saved);
  return done(recv_one(s, fd, buf, n, 0, nullptr, nullptr), saved);
}

ssize_t xdpload___read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return xdpload_read(fd, buf, n);
}

ssize_t xdpload_write(int fd, const void* buf, size_t n) {
  Socket* s = ours(fd);
  if (!s) return libc::write(fd, buf, n);
  int saved = errno;
  cancellation_point();
  if (ssize_t(n) < 0) return done(ssize_t(-EFAULT), saved);  // (vfs_write, as read)
  return done(send_one(s, fd, buf, n, 0, nullptr, 0), saved);
}

// readv/writev's segments as vfs_readv and vfs_writev take them: -errno
// where import_iovec refuses them, 0 when they hold 0 bytes in all (the
// call returns 0 then, the socket not asked, whatever it is: no empty UDP
// datagram, no EPIPE or SIGPIPE from a connection shut for writing or one
// not connected, no ENOTCONN, no EDESTADDRREQ; write(), send() and the
// msg calls of 0 do reach the socket), 1 otherwise.
static ssize_t vector_call_outcome(const msghdr* msg, bool sending) {
  if (ssize_t e = check_message(msg, sending)) return e;
  for (size_t i = 0; i < msg->msg_iovlen; ++i)
    if (msg->msg_iov[i].iov_len) return 1;
  return 0;
}

ssize_t xdpload_readv(int fd, const struct iovec* iov, int iovcnt) {
  Socket* s = ours(fd);
  if (!s) return libc::readv(fd, iov, iovcnt);
  int saved = errno;
  cancellation_point();
  if (iovcnt < 0 || iovcnt > IOV_MAX) return done(ssize_t(-EINVAL), saved);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = size_t(iovcnt);
  if (ssize_t r = vector_call_outcome(&msg, false); r <= 0) return done(r, saved);
  return done(op_recvmsg(s, fd, &msg, 0, false), saved);
}

ssize_t xdpload_writev(int fd, const struct iovec* iov, int iovcnt) {
  Socket* s = ours(fd);
  if (!s) return libc::writev(fd, iov, iovcnt);
  int saved = errno;
  cancellation_point();
  if (iovcnt < 0 || iovcnt > IOV_MAX) return done(ssize_t(-EINVAL), saved);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = size_t(iovcnt);
  if (ssize_t r = vector_call_outcome(&msg, true); r <= 0) return done(r, saved);
  return done(op_sendmsg(s, fd, &msg, 0), saved);
}

ssize_t xdpload_send(int fd, const void* buf, size_t n, int flags) {
  Socket* s = ours(fd);
  if (!s) return libc::send(fd, buf, n, flags);
  int saved = errno;
  cancellation_point();
  trace::mark(trace::kSendEnters);
  return sent(done(send_one(s, fd, buf, n, flags, nullptr, 0), saved));
}

ssize_t xdpload_sendto(int fd, const void* buf, size_t n, int flags,
                              const struct sockaddr* to, socklen_t tolen) {
  Socket* s = ours(fd);
  if (!s) return libc::sendto(fd, buf, n, flags, to, tolen);
  // An address of length 0 is an address too short (EINVAL) to UDP, not
  // none: the kernel socket says so, with nothing sent.
  if (to && tolen == 0 && s->kind == Socket::Kind::Udp) return libc::sendto(fd, buf, n, flags, to, tolen);
  int saved = errno;
  cancellation_point();
  // (move_addr_to_kernel: sendto's address longer than a sockaddr_storage
  // is EINVAL, where sendmsg's is cut to it.)
  if (to && tolen > sizeof(sockaddr_storage)) return done(ssize_t(-EINVAL), saved);
  trace::mark(trace::kSendEnters);
  return sent(done(send_one(s, fd, buf, n, flags, to, tolen), saved));
}

ssize_t xdpload_sendmsg(int fd, const struct msghdr* msg, int flags) {
  Socket* s = ours(fd);
  if (!s) {
    int saved = errno;
    hand_passed_to_kernel(fd, msg);  // (SCM_RIGHTS with the stack's sockets, if any)
    errno = saved;
    return libc::sendmsg(fd, msg, flags);
  }
  int saved = errno;
  cancellation_point();
  if (!msg) return done(ssize_t(-EFAULT), saved);
  trace::mark(trace::kSendEnters);
  return sent(done(op_sendmsg(s, fd, msg, flags), saved));
}

int xdpload_sendmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags) {
  Socket* s = ours(fd);
  if (!s) {
    int saved = errno;
    if (msgs)
      for (unsigned int i = 0; i < std::min(n, unsigned(UIO_MAXIOV)); ++i)
        hand_passed_to_kernel(fd, &msgs[i].msg_hdr);
    errno = saved;
    return libc::sendmmsg(fd, msgs, n, flags);
  }
  int saved = errno;
  cancellation_point();
  unsigned int i = 0;
  ssize_t r = 0;
  n = std::min(n, unsigned(UIO_MAXIOV));  // (__sys_sendmmsg's bound)
  Runtime::t_defer_kicks = true;
  for (; i < n; ++i) {
    r = op_sendmsg(s, fd, &msgs[i].msg_hdr, flags);
    if (r < 0) break;
    // (Written as put_user does: a msg_len the program cannot write ends
    // the call there, that message sent but not counted.)
    if (!put_msg_len(&msgs[i], r)) {
      r = -EFAULT;
      break;
    }
  }
  Runtime::t_defer_kicks = false;
  if (Runtime& rt = Runtime::get(); rt.stack()) {
    stack::CoreGuard g;
    rt.kick();
  }
  if (i == 0 && r < 0) return done(int(r), saved);
  return done(int(i), saved);
}

ssize_t xdpload_recv(int fd, void* buf, size_t n, int flags) {
  Socket* s = ours(fd);
  if (!s) return libc::recv(fd, buf, n, flags);
  int saved = errno;
  cancellation_point();
  return received(done(recv_one(s, fd, buf, n, flags, nullptr, nullptr), saved));
}

ssize_t xdpload___recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return xdpload_recv(fd, buf, n, flags);
}

ssize_t xdpload_recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* from,
                                socklen_t* fromlen) {
  Socket* s = ours(fd);
  if (!s) return libc::recvfrom(fd, buf, n, flags, from, fromlen);
  int saved = errno;
  cancellation_point();
  return received(done(recv_one(s, fd, buf, n, flags, from, fromlen), saved));
}

ssize_t xdpload___recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                      struct sockaddr* from, socklen_t* fromlen) {
  if (n > buflen) __chk_fail();
  return xdpload_recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t xdpload_recvmsg(int fd, struct msghdr* msg, int flags) {
  Socket* s = ours(fd);
  if (!s) return libc::recvmsg(fd, msg, flags);
  int saved = errno;
  cancellation_point();
  if (!msg) return done(ssize_t(-EFAULT), saved);
  return received(done(op_recvmsg(s, fd, msg, flags), saved));
}

int xdpload_recvmmsg(int fd, struct mmsghdr* msgs, unsigned int n, int flags,
                            struct timespec* timeout) {
  Socket* s = ours(fd);
  // (A socket on the kernel path: the kernel's own loop, which keeps an
  // error after a datagram as the socket's.)
  if (!s || !s->accelerated) return libc::recvmmsg(fd, msgs, n, flags, timeout);
  int saved = errno;
  cancellation_point();
  // The timeout as __sys_recvmmsg takes it: read first (EFAULT), checked
  // (EINVAL), and what is left of it written back when messages came.
  timespec left{};
  if (timeout && copy_from_user(&left, timeout, sizeof left) != sizeof left)
    return done(-EFAULT, saved);
  if (timeout && (left.tv_sec < 0 || left.tv_nsec < 0 || left.tv_nsec >= 1000000000))
    return done(-EINVAL, saved);
  // do_recvmmsg then looks at the socket's error, before any message
  // (not for the error queue).
  const bool has_error =
      s->kind == Socket::Kind::Udp
          ? static_cast<UdpSocket*>(s)->has_kept_error()
          : __atomic_load_n(&static_cast<TcpSocket*>(s)->error, __ATOMIC_RELAXED) != 0;
  if (!(flags & MSG_ERRQUEUE) && has_error)
    if (int rc = take_kept_error(s, fd)) return done(rc, saved);
  const timespec asked = left;
  const int64_t start = timeout ? mono_ns() : 0;
  unsigned int i = 0;
  int f = flags & ~MSG_WAITFORONE;
  int error = 0;
  for (; i < n; ++i) {
    ssize_t r = op_recvmsg(s, fd, &msgs[i].msg_hdr, f);
    if (r < 0) {
      error = int(r);
      break;
    }
    // (A msg_len the program cannot write: that message taken, not counted.)
    if (!put_msg_len(&msgs[i], r)) {
      error = -EFAULT;
      break;
    }
    if (flags & MSG_WAITFORONE) f |= MSG_DONTWAIT;
    if (timeout) {
      // (What was asked less what went by, in a timespec: any timeout
      // the kernel takes, without overflow.)
      const int64_t gone = mono_ns() - start;
      left.tv_sec = asked.tv_sec - time_t(gone / 1000000000);
      left.tv_nsec = asked.tv_nsec - long(gone % 1000000000);
      if (left.tv_nsec < 0) left.tv_nsec += 1000000000, --left.tv_sec;
      if (left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_nsec == 0)) {
        left = timespec{};
        ++i;
        break;
      }
    }
  }
  if (i == 0) return done(error, saved);
  // An error after a message at least: kept for the socket's next call
  // (do_recvmmsg's sk_err), a connection's too.
  if (error && error != -EAGAIN) keep_error(s, fd, -error);
  if (timeout && copy_to_user(timeout, &left, sizeof left) != sizeof left) return done(-EFAULT, saved);
  return done(int(i), saved);
}

// sendfile() to an accelerated UDP socket: read the file, send the bytes
// (a copy, where the kernel would splice pages). A TCP connection on the
// stack has its own path (shim/files/send_file.h).
static ssize_t sendfile_copied(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) {
  char buf[65536];
  off64_t pos = offset ? *offset : lseek64(in_fd, 0, SEEK_CUR);
  if (pos < 0) return -errno;
  size_t total = 0;
  while (total < count) {
    size_t want = std::min(count - total, sizeof buf);
    ssize_t got = pread64(in_fd, buf, want, pos);
    if (got < 0) {
      if (total) break;
      return -errno;
    }
    if (got == 0) break;
    ssize_t sent = send_one(s, out_fd, buf, size_t(got), 0, nullptr, 0);
    if (sent < 0) {
      if (total) break;
      return sent;
    }
    total += size_t(sent);
    pos += sent;
    if (sent < got) break;
  }
  if (offset) *offset = pos;
  else lseek64(in_fd, pos, SEEK_SET);
  return ssize_t(total);
}

static_assert(sizeof(off_t) == sizeof(off64_t), "sendfile and sendfile64 are one call here");

// (`offset`: the caller's copy, or null.)
static ssize_t sendfile_accelerated(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) {
  if (s->kind == Socket::Kind::Tcp) {
    ssize_t r = op_sendfile(s, out_fd, in_fd, offset, count);
    if (r != kNotOnStack) return r;
    // (It left for the kernel meanwhile.)
    r = libc::sendfile64(out_fd, in_fd, offset, count);
    return r < 0 ? -errno : r;
  }
  return sendfile_copied(s, out_fd, in_fd, offset, count);
}

static ssize_t sendfile_to(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) {
  if (!s->accelerated) {
    ssize_t r = libc::sendfile64(out_fd, in_fd, offset, count);
    return r < 0 ? -errno : r;
  }
  if (!offset) return sendfile_accelerated(s, out_fd, in_fd, nullptr, count);
  // sendfile64: the offset read first (EFAULT), and written back whatever
  // the transfer gave: one the program cannot write is EFAULT then, the
  // bytes sent.
  off64_t pos;
  if (copy_from_user(&pos, offset, sizeof pos) != sizeof pos) return -EFAULT;
  ssize_t r = sendfile_accelerated(s, out_fd, in_fd, &pos, count);
  if (copy_to_user(offset, &pos, sizeof pos) != sizeof pos) return -EFAULT;
  return r;
}

ssize_t xdpload_sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  Socket* s = ours(out_fd);
  if (!s) return libc::sendfile(out_fd, in_fd, offset, count);
  int saved = errno;
  stack::NoCancellation not_a_cancellation_point;
  return done(sendfile_to(s, out_fd, in_fd, reinterpret_cast<off64_t*>(offset), count), saved);
}

ssize_t xdpload_sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) {
  Socket* s = ours(out_fd);
  if (!s) return libc::sendfile64(out_fd, in_fd, offset, count);
  int saved = errno;
  stack::NoCancellation not_a_cancellation_point;
  return done(sendfile_to(s, out_fd, in_fd, offset, count), saved);
}

// splice() from a pipe into a TCP connection on the stack, and out of one
// into a pipe. Other splices with one of our sockets (UDP) are the
// kernel's.
ssize_t xdpload_splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                       unsigned int flags) {
  auto on_stack = [](Socket* s) { return s && s->kind == Socket::Kind::Tcp && s->accelerated; };
  Socket* s = ours(fd_out);
  if (!on_stack(s)) {
    Socket* from = ours(fd_in);
    if (!on_stack(from)) return libc::splice(fd_in, off_in, fd_out, off_out, len, flags);
    int saved = errno;
    stack::NoCancellation not_a_cancellation_point;
    return done(op_splice_from(from, fd_in, fd_out, off_in, off_out, len, flags), saved);
  }
  int saved = errno;
  stack::NoCancellation not_a_cancellation_point;
  ssize_t r = op_splice_to(s, fd_out, fd_in, off_in, off_out, len, flags);
  if (r == kNotOnStack) {
    r = libc::splice(fd_in, off_in, fd_out, off_out, len, flags);
    if (r < 0) r = -errno;
  }
  return done(r, saved);
}

// ---- descriptors ----

// The library's own descriptors (rings/private_fd.h) are not the
// program's: a daemon closing every number, or closefrom(3), must not close
// them, and to the program they look closed (EBADF).
int xdpload_close(int fd) {
  if (rings::is_private_fd(fd)) {
    errno = EBADF;
    return -1;
  }
  if (ours(fd) || epoll_set_of(fd) || passed_any()) {
    // (close() is a cancellation point: one pending acts before the
    // descriptor is forgotten, as libc's acts before it is closed.)
    cancellation_point();
    forget(fd);
  }
  return libc::close(fd);
}

// close_range over [first, last] in pieces around the private descriptors.
static int close_range_around_private(unsigned first, unsigned last, int flags) {
  int priv[rings::kMaxPrivateFds];
  int n = rings::private_fds_in(first, last, priv, rings::kMaxPrivateFds);
  int rc = 0;
  unsigned lo = first;  // the next number to close
  for (int i = 0; i <= n; ++i) {
    // Up to the next private descriptor, or to the end.
    if (i < n && unsigned(priv[i]) == lo) {
      ++lo;
      continue;
    }
    if (lo > last) break;
    unsigned hi = i < n ? unsigned(priv[i]) - 1 : last;
    if (libc::close_range(lo, hi, flags) != 0 && rc == 0) rc = -1;
    if (i == n || unsigned(priv[i]) == last) break;
    lo = unsigned(priv[i]) + 1;
  }
  return rc;
}

int xdpload_close_range(unsigned int first, unsigned int last, int flags) {
  if (!(flags & CLOSE_RANGE_CLOEXEC)) {
    size_t end = std::min<size_t>(size_t(last) + 1, Runtime::get().fds().size());
    for (size_t fd = first; fd < end; ++fd) forget(int(fd));
  }
  if (first > last) return libc::close_range(first, last, flags);  // EINVAL as Linux gives it
  return close_range_around_private(first, last, flags);
}

void xdpload_closefrom(int lowfd) {
  size_t end = Runtime::get().fds().size();
  for (size_t fd = size_t(std::max(lowfd, 0)); fd < end; ++fd) forget(int(fd));
  if (close_range_around_private(unsigned(std::max(lowfd, 0)), ~0u, 0) == 0) return;
  // No close_range (kernels before 5.9): one by one.
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = std::max(lowfd, 0); fd < std::min(max, 65536L); ++fd)
    if (!rings::is_private_fd(int(fd))) libc::close(int(fd));
}

int xdpload_dup(int fd) {
  Socket* s = ours(fd);
  int nfd = libc::dup(fd);
  if (!s || nfd < 0) return nfd;
  return op_dup_to(s, fd, nfd);
}

static int dup_over(int fd, int fd2, int flags, bool three) {
  Socket* s = ours(fd);
  // The implicit close of fd2, once we know fd is valid.
  if (fd != fd2 && (ours(fd2) || epoll_set_of(fd2) || passed_any()) && libc::fcntl(fd, F_GETFD) >= 0)
    forget(fd2);
  int r = three ? libc::dup3(fd, fd2, flags) : libc::dup2(fd, fd2);
  if (!s || r < 0 || fd == fd2) return r;
  return op_dup_to(s, fd, r);
}

int xdpload_dup2(int fd, int fd2) { return dup_over(fd, fd2, 0, false); }
int xdpload_dup3(int fd, int fd2, int flags) { return dup_over(fd, fd2, flags, true); }

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, unsigned long arg) {
  Socket* s = ours(fd);
  if (!s) return real(fd, cmd, arg);
  int saved = errno;
  return done(op_fcntl(s, fd, cmd, arg), saved);
}

int xdpload_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return fcntl_common(libc::fcntl, fd, cmd, arg);
}

int xdpload_fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return fcntl_common(libc::fcntl64, fd, cmd, arg);
}

int xdpload_ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  Socket* s = ours(fd);
  if (!s) return libc::ioctl(fd, request, arg);
  int saved = errno;
  return done(op_ioctl(s, fd, request, arg), saved);
}

