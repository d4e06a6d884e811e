#include "shim/wait/waiting.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "rings/private_fd.h"
#include "shim/intercept/libc.h"

namespace xdpload::shim {

namespace {

pid_t g_pid = 0;
int g_send_sock = -1;  // unbound: sends wake-ups to other processes' waiters

// The abstract socket name of a waiter: the family's random id makes it
// impossible for another family (or user) to guess and take first.
socklen_t waiter_address(pid_t tid, sockaddr_un* a) {
  *a = sockaddr_un{};
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "xdpload-%016llx-%d",
                   (unsigned long long)family::id(), int(tid));
  return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

pid_t process_id() {
  if (!g_pid) g_pid = getpid();
  return g_pid;
}

void waiting_after_fork() { g_pid = getpid(); }

void ThreadWaiter::open() {
  pid_ = process_id();
  tid_ = pid_t(syscall(SYS_gettid));
  efd_ = rings::to_private_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  int s = libc::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    sockaddr_un a;
    socklen_t len = waiter_address(tid_, &a);
    if (libc::bind(s, reinterpret_cast<sockaddr*>(&a), len) == 0) {
      sock_ = rings::to_private_fd(s);
    } else {
      libc::close(s);
    }
  }
}

void ThreadWaiter::close() {
  rings::close_private_fd(efd_);
  if (sock_ >= 0) rings::close_private_fd(sock_);
  efd_ = sock_ = -1;
}

ThreadWaiter::~ThreadWaiter() { close(); }

ThreadWaiter* ThreadWaiter::current() {
  static thread_local ThreadWaiter waiter;
  if (waiter.pid_ != process_id()) {
    // A forked child's copy of its parent's waiter: the descriptors are the
    // parent's (shared), the socket's name is the parent thread's.
    waiter.close();
    waiter.signaled_ = false;
    waiter.open();
  }
  return &waiter;
}

__attribute__((tls_model("initial-exec"))) thread_local ThreadWaiter* t_sleeping_waiter = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local SleepExit* t_sleep_exit = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local CancelUndo* t_cancel_undo = nullptr;

void run_cancel_undos() {
  while (CancelUndo* u = t_cancel_undo) {
    t_cancel_undo = u->next;
    if (!u->done) u->undo(u->arg);
  }
}

void run_leave_undos(CancelUndo* list) {
  for (CancelUndo* u = list; u; u = u->next)
    if (u->redo && !u->done) {
      u->done = true;
      u->undo(u->arg);
    }
}

bool has_leave_undos(const CancelUndo* list) {
  for (const CancelUndo* u = list; u; u = u->next)
    if (u->redo && !u->done) return true;
  return false;
}

void rearm_leave_undos(CancelUndo* list) {
  for (CancelUndo* u = list; u; u = u->next)
    if (u->redo && u->done) {
      u->done = false;
      u->redo(u->arg);
    }
}

void ThreadWaiter::signal() {
  if (signaled_.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  int saved = errno;
  libc::write(efd_, &one, sizeof one);
  errno = saved;
}

void ThreadWaiter::consume() {
  if (!signaled_.exchange(false, std::memory_order_acq_rel)) return;
  uint64_t v;
  int saved = errno;
  libc::read(efd_, &v, sizeof v);
  errno = saved;
}

void ThreadWaiter::drain_remote() {
  if (sock_ < 0) return;
  int saved = errno;
  char b;
  while (libc::recv(sock_, &b, sizeof b, MSG_DONTWAIT) >= 0) {
  }
  errno = saved;
}

bool wake_remote_waiter(pid_t tid) {
  int saved = errno;
  if (g_send_sock < 0) {
    int s = libc::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return true;  // (no way to tell: taken as woken)
    g_send_sock = rings::to_private_fd(s);
  }
  sockaddr_un a;
  socklen_t len = waiter_address(tid, &a);
  // A full queue already holds a wake-up; no socket of that name is a
  // waiter gone meanwhile (its thread or process).
  bool there = libc::sendto(g_send_sock, "", 0, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a),
                            len) >= 0 ||
               (errno != ECONNREFUSED && errno != ENOENT);
  errno = saved;
  return there;
}

bool WaitQueue::remove(ThreadWaiter* w) {
  const pid_t me = process_id();
  auto it = std::find_if(waiters_.begin(), waiters_.end(),
                         [&](const Ref& r) { return r.w == w && r.pid == me; });
  // (Erased in place: the exclusive waiters stay in the order they came, the
  // first of them woken first.)
  if (it == waiters_.end()) return false;
  waiters_.erase(it);
  return true;
}

}  // namespace xdpload::shim
