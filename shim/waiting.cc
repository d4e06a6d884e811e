#include "shim/waiting.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "rings/private_fd.h"
#include "shim/libc.h"

namespace xdpload::shim {

ThreadWaiter::ThreadWaiter() { efd_ = rings::to_private_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

ThreadWaiter::~ThreadWaiter() {
  rings::close_private_fd(efd_);
}

ThreadWaiter* ThreadWaiter::current() {
  static thread_local ThreadWaiter waiter;
  return &waiter;
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

void WaitQueue::remove(ThreadWaiter* w) {
  auto it = std::find(waiters_.begin(), waiters_.end(), w);
  if (it != waiters_.end()) {
    *it = waiters_.back();
    waiters_.pop_back();
  }
}

}  // namespace xdpload::shim
