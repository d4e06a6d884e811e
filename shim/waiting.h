// Blocking without losing a wake-up.
//
// A thread that has to sleep in the library registers its ThreadWaiter (an
// eventfd of its own) on the wait queue of every socket it waits for, then
// sleeps in the real poll() on that eventfd, the AF_XDP socket and any kernel
// descriptors involved. Whoever changes a socket's state (lwIP callbacks, run
// by whichever thread polls the stack) wakes the queue: each waiter's eventfd
// is written once. A waiter registers before its last check of the condition,
// so a change between that check and the sleep still leaves the eventfd
// readable.
#pragma once

#include <atomic>
#include <vector>

namespace xdpload::shim {

class ThreadWaiter {
 public:
  // This thread's waiter (created on first use; closed at thread exit).
  static ThreadWaiter* current();
  int fd() const { return efd_; }
  // Any thread: makes fd() readable, once until consumed.
  void signal();
  // The waiting thread, after waking: reads the eventfd empty.
  void consume();
  ~ThreadWaiter();

 private:
  ThreadWaiter();
  int efd_ = -1;
  std::atomic<bool> signaled_{false};
};

// Waiters of one socket or epoll set. Changed with the CoreLock held.
class WaitQueue {
 public:
  void add(ThreadWaiter* w) { waiters_.push_back(w); }
  void remove(ThreadWaiter* w);
  bool empty() const { return waiters_.empty(); }
  void wake_all() {
    for (ThreadWaiter* w : waiters_) w->signal();
  }

 private:
  std::vector<ThreadWaiter*> waiters_;
};

// Signals caught while a call blocked: Linux restarts a blocking socket call
// interrupted by a handler installed with SA_RESTART (unless the socket has a
// timeout), and fails it with EINTR otherwise. We wrap the program's handlers
// (shim/signals.cc) to know which kind ran.
struct SignalMark {
  uint64_t caught;        // handlers run on this thread
  uint64_t not_restart;   // of which installed without SA_RESTART
};
SignalMark signal_mark();
// After a wait returned EINTR: should the call be restarted?
bool restart_after_signal(const SignalMark& before);

}  // namespace xdpload::shim
