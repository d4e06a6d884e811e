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

#include <sys/types.h>

#include <atomic>
#include <vector>

#include "family/arena.h"

namespace xdpload::shim {

class ThreadWaiter {
 public:
  // This thread's waiter (created on first use; closed at thread exit; made
  // anew in a forked child, whose copy is its parent's).
  static ThreadWaiter* current();
  // Descriptors to sleep on: the eventfd its own process writes, and a
  // datagram socket the other processes of the family send to (they cannot
  // reach our eventfd). Either readable means "look again".
  int fd() const { return efd_; }
  int remote_fd() const { return sock_; }
  pid_t pid() const { return pid_; }
  pid_t tid() const { return tid_; }
  // Any thread of this process: makes fd() readable, once until consumed.
  void signal();
  // The waiting thread, after waking: reads the eventfd empty.
  void consume();
  // ...and the datagram socket, when poll() said it was readable (a system
  // call a blocking wait does not pay otherwise).
  void drain_remote();
  ~ThreadWaiter();

 private:
  ThreadWaiter() { open(); }
  void open();
  void close();
  int efd_ = -1;
  int sock_ = -1;
  pid_t pid_ = 0;
  pid_t tid_ = 0;
  std::atomic<bool> signaled_{false};
};

// Wakes the waiter `tid` of another process of the family (its socket).
void wake_remote_waiter(pid_t tid);
// This process's id (cached; set again in a forked child).
pid_t process_id();
void waiting_after_fork();

// Waiters of one socket or epoll set, in any process of the family. Changed
// with the CoreLock held.
class WaitQueue {
 public:
  void add(ThreadWaiter* w) { waiters_.push_back(Ref{w, w->pid(), w->tid()}); }
  void remove(ThreadWaiter* w);
  bool empty() const { return waiters_.empty(); }
  void wake_all() {
    const pid_t me = process_id();
    for (const Ref& r : waiters_) {
      if (r.pid == me) r.w->signal();
      else wake_remote_waiter(r.tid);
    }
  }

 private:
  struct Ref {
    ThreadWaiter* w;  // valid in process `pid` only
    pid_t pid;
    pid_t tid;
  };
  family::vector<Ref> waiters_;
};

// Signals caught while a call blocked: Linux restarts a blocking socket call
// interrupted by a handler installed with SA_RESTART (unless the socket has a
// timeout), and fails it with EINTR otherwise. We wrap the program's handlers
// (shim/wait/signals.cc) to know which kind ran.
struct SignalMark {
  uint64_t caught;        // handlers run on this thread
  uint64_t not_restart;   // of which installed without SA_RESTART
};
SignalMark signal_mark();
// After a wait returned EINTR: should the call be restarted?
bool restart_after_signal(const SignalMark& before);

}  // namespace xdpload::shim
