// poll, ppoll, select, pselect and the epoll calls over any mix of kernel
// descriptors and accelerated sockets.
//
// A set with none of ours goes to the real call unchanged. Otherwise the
// stack's side of each socket is read from the socket, the kernel's side
// (plain descriptors, and the kernel socket behind a listener or UDP socket)
// from one non-blocking real poll, and when nothing is ready the thread
// sleeps on all of it at once (Runtime::block).
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "shim/wait/epoll_set.h"
#include "shim/wait/inline_vector.h"
#include "shim/wait/waiting.h"
#include "shim/intercept/export.h"
#include "shim/ext/thread_spin.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/passed_connections.h"
#include "shim/socket/user_memory.h"

using namespace xdpload;
using namespace xdpload::shim;

extern "C" void __chk_fail(void) __attribute__((noreturn));

namespace {

Runtime& rt() { return Runtime::get(); }

int64_t to_ns(const timespec* ts) {
  return ts ? int64_t(ts->tv_sec) * 1000000000 + ts->tv_nsec : -1;
}

int poll_sockets(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask);

// Entries a poll() or select() keeps without a heap allocation.
constexpr size_t kInlineEntries = 16;

// An undo record (waiting.h) that gives back a list's heap part when the
// thread is cancelled in the call: past kInlineEntries entries, a cancelled
// poll() leaked its lists. (A handler's jump out of the call still leaves
// them: the records go with the frames it leaves.)
template <typename List>
struct ReleasedIfCancelled : UndoIfCancelled {
  explicit ReleasedIfCancelled(List* list)
      : UndoIfCancelled([](void* l) { static_cast<List*>(l)->release(); }, list) {}
};

// The kernel's ppoll() inside a call of ours (its descriptors are all the
// kernel's, or a bad array): a cancellation point with none of our cleanup
// handlers around it. The call's undo records (do_select's list) are
// hidden from it: a thread cancelled there would leave t_cancel_undo
// pointing into the frames it unwinds. (The list's heap part is then left
// behind, as before the records.)
// timeout_ns < 0: forever.
int kernel_ppoll(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask) {
  timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
  CancelUndo* const undo = t_cancel_undo;
  t_cancel_undo = nullptr;
  int r = libc::ppoll(fds, n, timeout_ns < 0 ? nullptr : &ts, mask);
  const int err = errno;
  t_cancel_undo = undo;
  return r < 0 ? -err : r;
}

// The core of poll/ppoll/select/pselect. timeout_ns < 0: forever. A
// listener with connections passed at an exec (passed_connections.h) is
// ready while any waits: then nothing else is waited for.
//
// An array the program cannot give (user_writable()) gets the kernel's
// answer, EFAULT (or EINVAL for too many), asked without waiting
// (kernel_ppoll with timeout 0), before any of it is read here. (Before the
// stack's start nothing is checked: nothing of ours reads it then but the
// passed connections of an exec, which read it as before.)
int do_poll(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask) {
  if (n > (nfds_t(1) << 24)) {
    // More than any descriptor table here (the kernel's bound is
    // RLIMIT_NOFILE: EINVAL above it): the kernel's poll, with its wait.
    return kernel_ppoll(fds, n, timeout_ns, mask);
  }
  if (n && !user_writable(fds, n * sizeof *fds)) return kernel_ppoll(fds, n, 0, mask);
  if (!passed_any()) return poll_sockets(fds, n, timeout_ns, mask);
  std::vector<pollfd> copy(fds, fds + n);
  if (passed_ready(copy.data(), n) == 0) return poll_sockets(fds, n, timeout_ns, mask);
  int r = poll_sockets(fds, n, 0, mask);
  if (r < 0) return r;
  r = 0;
  for (nfds_t i = 0; i < n; ++i) {
    fds[i].revents = short(fds[i].revents | copy[i].revents);
    r += fds[i].revents != 0;
  }
  return r;
}

// do_poll() for everything but the passed connections.
int poll_sockets(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask) {
  // Which entries are ours (accelerated sockets, or epoll sets of ours).
  bool any = false;
  for (nfds_t i = 0; i < n && !any; ++i) {
    Socket* s = rt().socket_at(fds[i].fd);
    if ((s && s->accelerated) || epoll_set_of(fds[i].fd)) any = true;
  }
  if (!any || rt().forked_child()) return kernel_ppoll(fds, n, timeout_ns, mask);

  stack::CoreGuard g;
  int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;
  // (Inside the frame: see InlineVector.)
  InlineVector<Socket*, kInlineEntries> socks;
  InlineVector<pollfd, kInlineEntries> kernel;      // descriptors the kernel answers for
  InlineVector<nfds_t, kInlineEntries> kernel_of;   // index in fds of each kernel entry
  ReleasedIfCancelled released_socks(&socks);
  ReleasedIfCancelled released_kernel(&kernel);
  ReleasedIfCancelled released_of(&kernel_of);
  SignalMark call_mark = signal_mark();
  bool watches_sets = false;
  for (;;) {
    rt().poll_stack();
    socks.clear();
    kernel.clear();
    kernel_of.clear();
    int64_t now = mono_ns();
    for (nfds_t i = 0; i < n; ++i) {
      fds[i].revents = 0;
      if (fds[i].fd < 0) continue;
      Socket* s = rt().socket_at(fds[i].fd);
      EpollSet* set = epoll_set_of(fds[i].fd);
      if (s && s->accelerated) {
        fds[i].revents = short(s->events() & (fds[i].events | POLLERR | POLLHUP));
        socks.push_back(s);
        if (!s->kernel_side()) continue;
        // The kernel side of a listener or UDP socket: looked at every time
        // we are about to sleep, at most every kKernelLookNs while spinning.
        if (timeout_ns != 0 && now < s->next_poll_kernel_ns) continue;
        s->next_poll_kernel_ns = now + kKernelLookNs;
      } else if (set) {
        set->set_nested();
        set->apply_kernel_changes();
        set->apply_nested_changes();
        watches_sets = true;
        if (set->has_ready()) fds[i].revents = short(fds[i].events & (POLLIN | POLLRDNORM));
      }
      kernel.push_back(pollfd{fds[i].fd, fds[i].events, 0});
      kernel_of.push_back(i);
    }
    if (!kernel.empty()) {
      if (libc::poll(kernel.data(), kernel.size(), 0) < 0) return -errno;
      for (size_t k = 0; k < kernel.size(); ++k) {
        fds[kernel_of[k]].revents |= kernel[k].revents;
        // (Readable there: the receive the program makes next looks there,
        // whenever its last look was. Before, a receive within
        // kKernelLookNs of this look skipped it, said EAGAIN, and a
        // program that polls again at once never read the datagram.)
        if (kernel[k].revents & (POLLIN | POLLRDNORM | POLLERR))
          if (Socket* s = rt().socket_at(fds[kernel_of[k]].fd); s && s->accelerated)
            s->kernel_side_ready();
      }
    }
    int ready = 0;
    for (nfds_t i = 0; i < n; ++i) ready += fds[i].revents != 0;
    if (ready) return ready;
    if (timeout_ns == 0) return 0;
    if (deadline >= 0 && mono_ns() >= deadline) return 0;

    // Sleep on all of it: every socket's wait queue, the kernel descriptors
    // (including the kernel side of ours), the AF_XDP socket.
    kernel.clear();
    kernel_of.clear();
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].fd < 0) continue;
      Socket* s = rt().socket_at(fds[i].fd);
      if (s && s->accelerated && !s->kernel_side()) continue;
      kernel.push_back(pollfd{fds[i].fd, fds[i].events, 0});
      kernel_of.push_back(i);
    }
    WaitSpec spec;
    spec.sockets = socks.data();
    spec.nsockets = int(socks.size());
    spec.kernel = kernel.data();
    spec.nkernel = int(kernel.size());
    spec.deadline_ns = deadline;
    spec.mask = mask;
    spec.restartable = false;  // poll and select are never restarted
    spec.spin_kind = kSpinPoll;
    spec.call_mark = &call_mark;
    // A set's change queued by another process wakes this sleep: the real
    // instance it watches here has not got it yet (made at the next turn).
    // So does a set's item made ready by another process, whose eventfd
    // signal reaches only the eventfd's owner (EpollSet::item_ready).
    spec.watches_sets = watches_sets;
    int rc = rt().block(spec, [&] {
      for (Socket* s : socks)
        if (s->fd_refs == 0) return true;
      if (watches_sets)
        for (nfds_t i = 0; i < n; ++i)
          if (EpollSet* set = fds[i].fd >= 0 ? epoll_set_of(fds[i].fd) : nullptr)
            if (set->changes_to_make_here() || set->nested_changes_pending() ||
                ((fds[i].events & (POLLIN | POLLRDNORM)) && set->has_ready()))
              return true;
      for (nfds_t i = 0; i < n; ++i) {
        Socket* s = rt().socket_at(fds[i].fd);
        if (s && s->accelerated && (s->events() & (fds[i].events | POLLERR | POLLHUP))) return true;
      }
      for (const pollfd& k : kernel)
        if (k.revents) return true;
      return false;
    });
    if (rc == -EAGAIN) return 0;
    if (rc < 0 && rc != -EBADF) return rc;
    // Woken: look at everything again (the kernel side fresh). After
    // -EBADF a socket another thread closed may be freed: the next turn
    // finds what the descriptors refer to now.
    if (rc != -EBADF)
      for (Socket* s : socks) s->next_poll_kernel_ns = 0;
  }
}

int do_select(int n, fd_set* r, fd_set* w, fd_set* e, int64_t timeout_ns, const sigset_t* mask) {
  if (n < 0) return -EINVAL;
  InlineVector<pollfd, kInlineEntries> pfds;
  ReleasedIfCancelled released(&pfds);
  for (int fd = 0; fd < n; ++fd) {
    short ev = 0;
    if (r && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
    if (ev) pfds.push_back(pollfd{fd, ev, 0});
  }
  int rc = do_poll(pfds.data(), pfds.size(), timeout_ns, mask);
  if (rc < 0) return rc;
  for (const pollfd& p : pfds)
    if (p.revents & POLLNVAL) return -EBADF;
  if (r) FD_ZERO(r);
  if (w) FD_ZERO(w);
  if (e) FD_ZERO(e);
  int count = 0;
  for (const pollfd& p : pfds) {
    if (r && (p.events & POLLIN) && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      FD_SET(p.fd, r);
      ++count;
    }
    if (w && (p.events & POLLOUT) && (p.revents & (POLLOUT | POLLERR))) {
      FD_SET(p.fd, w);
      ++count;
    }
    if (e && (p.events & POLLPRI) && (p.revents & POLLPRI)) {
      FD_SET(p.fd, e);
      ++count;
    }
  }
  return count;
}

// The sets of a select() as the kernel reads them: whole longs for n bits.
bool select_sets_ok(int n, fd_set* r, fd_set* w, fd_set* e) {
  if (n <= 0) return true;
  const size_t bytes = (size_t(n) + 8 * sizeof(long) - 1) / (8 * sizeof(long)) * sizeof(long);
  for (fd_set* s : {r, w, e})
    if (s && !user_writable(s, bytes)) return false;
  return true;
}

bool select_has_ours(int n, fd_set* r, fd_set* w, fd_set* e) {
  // (Sets the program cannot give: the kernel's to answer.)
  if (!select_sets_ok(n, r, w, e)) return false;
  if (passed_any() && r)
    for (int fd = 0; fd < n; ++fd)
      if (FD_ISSET(fd, r) && passed_waiting(fd)) return true;
  if (!rt().enabled()) return false;
  for (int fd = 0; fd < n; ++fd) {
    if (!((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))) continue;
    Socket* s = rt().socket_at(fd);
    if ((s && s->accelerated) || epoll_set_of(fd)) return true;
  }
  return false;
}

int epoll_wait_common(int epfd, epoll_event* events, int max, int64_t timeout_ns,
                      const sigset_t* mask) {
  stack::CoreGuard g;
  EpollSet* set = epoll_set_of(epfd);
  if (!set) return -EBADF;
  return set->wait(events, max, timeout_ns, mask);
}

}  // namespace

int xdpload_poll(struct pollfd* fds, nfds_t n, int timeout) {
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(do_poll(fds, n, timeout < 0 ? -1 : int64_t(timeout) * 1000000, nullptr), saved);
}

int xdpload___poll_chk(struct pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return xdpload_poll(fds, n, timeout);
}

int xdpload_ppoll(struct pollfd* fds, nfds_t n, const struct timespec* timeout,
                  const sigset_t* mask) {
  // (A timeout the program cannot give: the kernel's EFAULT.)
  if (timeout && !user_readable(timeout, sizeof *timeout))
    return libc::ppoll(fds, n, timeout, mask);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(do_poll(fds, n, to_ns(timeout), mask), saved);
}

int xdpload___ppoll_chk(struct pollfd* fds, nfds_t n, const struct timespec* timeout,
                        const sigset_t* mask, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return xdpload_ppoll(fds, n, timeout, mask);
}

int xdpload_select(int n, fd_set* r, fd_set* w, fd_set* e, struct timeval* timeout) {
  if (!select_has_ours(n, r, w, e) || (timeout && !user_writable(timeout, sizeof *timeout)))
    return libc::select(n, r, w, e, timeout);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  int64_t t = timeout ? int64_t(timeout->tv_sec) * 1000000000 + timeout->tv_usec * 1000 : -1;
  int64_t start = mono_ns();
  int rc = do_select(n, r, w, e, t, nullptr);
  if (timeout && rc >= 0) {
    // Linux leaves the time not slept in the timeval.
    int64_t left = std::max<int64_t>(0, t - (mono_ns() - start));
    timeout->tv_sec = left / 1000000000;
    timeout->tv_usec = (left % 1000000000) / 1000;
  }
  return done(rc, saved);
}

int xdpload_pselect(int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* timeout,
                    const sigset_t* mask) {
  if (!select_has_ours(n, r, w, e) ||
      (timeout && !user_readable(timeout, sizeof *timeout)))
    return libc::pselect(n, r, w, e, timeout, mask);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(do_select(n, r, w, e, to_ns(timeout), mask), saved);
}

// ---- epoll ----

int xdpload_epoll_create(int size) {
  int fd = libc::epoll_create(size);
  if (fd >= 0 && rt().enabled()) {
    stack::CoreGuard g;
    epoll_set_create(fd);
  }
  return fd;
}

int xdpload_epoll_create1(int flags) {
  int fd = libc::epoll_create1(flags);
  if (fd >= 0 && rt().enabled()) {
    stack::CoreGuard g;
    epoll_set_create(fd);
  }
  return fd;
}

int xdpload_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  // The event is read below (ADD, MOD) where the set and the socket are
  // ours: one the program cannot give is the kernel's to answer, EFAULT,
  // before anything else, as the kernel does. (Other calls go to the
  // kernel with the program's pointer, as they always did.)
  EpollSet* set = epoll_set_of(epfd);
  Socket* s = rt().socket_at(fd);
  epoll_event copy;
  if (op != EPOLL_CTL_DEL && event && (passed_any() || (set && s)) && user_faults_recoverable()) {
    if (copy_from_user(&copy, event, sizeof copy) != sizeof copy)
      return libc::epoll_ctl(epfd, op, fd, event);
    event = &copy;
  }
  if (passed_any()) {
    passed_epoll_ctl(epfd, op, fd, event);
    set = epoll_set_of(epfd);  // (as they are after it)
    s = rt().socket_at(fd);
  }
  if (!set || !s || rt().forked_child()) {
    if (set && set->kernel_changes_pending()) {
      // (Another process's changes to the real instance come first: the
      // program's descriptor may be one that left for the kernel there.)
      const int saved = errno;
      stack::CoreGuard g;
      set->apply_kernel_changes();
      errno = saved;
    }
    EpollSet* inner = rt().forked_child() ? nullptr : epoll_set_of(fd);
    if (inner) {
      // An epoll instance of ours inside another one.
      stack::CoreGuard g;
      inner->set_nested();
    }
    const int rc = libc::epoll_ctl(epfd, op, fd, event);
    if (rc == 0 && inner && set && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_DEL)) {
      // (The outer set makes the inner one's queued changes as it waits.)
      const int saved = errno;
      stack::CoreGuard g;
      if (epoll_set_of(epfd) == set) set->note_nested_set(fd, op == EPOLL_CTL_ADD);
      errno = saved;
    }
    return rc;
  }
  int saved = errno;
  if (epfd == fd) return done(-EINVAL, saved);
  stack::CoreGuard g;
  if (epoll_set_of(epfd) != set || rt().fds().get(fd) != s) return done(-EBADF, saved);
  return done(set->ctl(op, fd, s, event), saved);
}

int xdpload_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout) {
  if (!epoll_set_of(epfd)) return libc::epoll_wait(epfd, events, max, timeout);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(epoll_wait_common(epfd, events, max, timeout < 0 ? -1 : int64_t(timeout) * 1000000,
                                nullptr),
              saved);
}

int xdpload_epoll_pwait(int epfd, struct epoll_event* events, int max, int timeout,
                        const sigset_t* mask) {
  if (!epoll_set_of(epfd)) return libc::epoll_pwait(epfd, events, max, timeout, mask);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(epoll_wait_common(epfd, events, max, timeout < 0 ? -1 : int64_t(timeout) * 1000000,
                                mask),
              saved);
}

int xdpload_epoll_pwait2(int epfd, struct epoll_event* events, int max,
                         const struct timespec* timeout, const sigset_t* mask) {
  if (!epoll_set_of(epfd) ||
      (timeout && !user_readable(timeout, sizeof *timeout)))
    return libc::epoll_pwait2(epfd, events, max, timeout, mask);
  int saved = errno;
  pthread_testcancel();  // (a cancellation point: intercept_socket.cc says why)
  return done(epoll_wait_common(epfd, events, max, to_ns(timeout), mask), saved);
}
