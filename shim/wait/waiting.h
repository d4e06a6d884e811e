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
// False when no such waiter is there any more (its thread or process gone).
bool wake_remote_waiter(pid_t tid);
// This process's id (cached; set again in a forked child).
pid_t process_id();
void waiting_after_fork();

// Waiters of one socket or epoll set, in any process of the family. Changed
// with the CoreLock held.
class WaitQueue {
 public:
  // `exclusive`: a waiter for one of a series of events (accept() for a
  // connection), woken one at a time for them (wake_exclusive).
  void add(ThreadWaiter* w, bool exclusive = false) {
    waiters_.push_back(Ref{w, w->pid(), w->tid(), exclusive});
  }
  // (Nothing when a wake_exclusive() took it off already: false then.)
  bool remove(ThreadWaiter* w);
  bool empty() const { return waiters_.empty(); }
  // Both return how many wake-ups went to other processes (a datagram each).
  int wake_all() {
    int remote = 0;
    for (const Ref& r : waiters_) wake(r, &remote);
    return remote;
  }
  // One more of the events exclusive waiters wait for (a connection to a
  // listener): every other waiter is woken (poll() on the listener), and of
  // the exclusive ones only the first, which leaves the queue so that the
  // next such event wakes the next one. Linux's exclusive wait entries
  // (WQ_FLAG_EXCLUSIVE, autoremoved when woken): a connection to a listener
  // that eight workers block in accept() on wakes one worker, not eight
  // for seven to find the queue empty. A woken waiter that then leaves
  // without the connection (a signal) takes it all the same
  // (Runtime::block_impl), so none is left waiting while others sleep.
  // `passed_over`: a process whose exclusive waiters are left in the queue
  // (stopped: woken, none would answer).
  int wake_exclusive(pid_t passed_over = 0) {
    int remote = 0;
    bool woke_exclusive = false;
    for (size_t i = 0; i < waiters_.size();) {
      const Ref r = waiters_[i];
      if (!r.exclusive) {
        wake(r, &remote);
        ++i;
        continue;
      }
      if (woke_exclusive || (passed_over && r.pid == passed_over)) {
        ++i;
        continue;
      }
      // (One whose thread is gone without leaving the queue is passed over.)
      woke_exclusive = wake(r, &remote);
      waiters_.erase(waiters_.begin() + ptrdiff_t(i));
    }
    return remote;
  }
  // Takes out the waiters of process `pid` (gone, or going: no thread of it
  // will leave the queue by itself). True when one of them was exclusive.
  bool forget_process(pid_t pid) {
    bool exclusive = false;
    for (size_t i = 0; i < waiters_.size();) {
      if (waiters_[i].pid != pid) {
        ++i;
        continue;
      }
      exclusive |= waiters_[i].exclusive;
      waiters_.erase(waiters_.begin() + ptrdiff_t(i));
    }
    return exclusive;
  }

 private:
  struct Ref {
    ThreadWaiter* w;  // valid in process `pid` only
    pid_t pid;
    pid_t tid;
    bool exclusive;
  };
  // False when the waiter is gone (wake_remote_waiter).
  static bool wake(const Ref& r, int* remote) {
    if (r.pid != process_id()) {
      ++*remote;
      return wake_remote_waiter(r.tid);
    }
    r.w->signal();
    return true;
  }
  family::vector<Ref> waiters_;
};

// Signals caught while a call blocked: Linux restarts a blocking socket call
// interrupted by a handler installed with SA_RESTART (unless the socket has a
// timeout), and fails it with EINTR otherwise. We wrap the program's handlers
// (shim/wait/signals.cc) to know which kind ran.
// The waiter of this thread while it sleeps in Runtime::block_impl (else
// null): a handler of the program that runs then makes it readable, so that
// a signal caught just before the sleep ends it too. (initial-exec: read in
// signal handlers.)
extern thread_local ThreadWaiter* t_sleeping_waiter __attribute__((tls_model("initial-exec")));

// What a sleep of this thread is registered in, with the way out of it
// (Runtime::block_impl). A handler of the program that runs during the
// sleep (shim/wait/signals.cc) takes the thread out first, the lock not
// held: the handler may never come back to the sleep (siglongjmp, as a
// handler may leave a recv() it interrupted; pthread_exit), and a thread
// left in a queue is woken once it is gone (its memory with it), or takes
// a wake-up meant for one waiter of many (accept()) that it never answers.
// The sleep, if the handler returns, ends as any interrupted sleep does.
struct CancelUndo;
struct SleepExit {
  void (*leave)(SleepExit*);
  bool left = false;  // (the lock held to read or write it)
  // The call's undo records (t_cancel_undo), which the wrapper hides from
  // the handler: a handler's pthread_exit() unwinds into the sleep's
  // cancellation handler, which runs them.
  CancelUndo* undo = nullptr;
};
extern thread_local SleepExit* t_sleep_exit __attribute__((tls_model("initial-exec")));

// What a call's frames would undo on their way out, for a thread the
// program cancels while the call waits (Runtime::block_impl): the
// cancellation unwinds those frames without running their destructors
// (the library is built without exceptions), so each such frame lists its
// undo here, and the cancellation's handler runs the list, last first,
// under the stack's lock. A frame takes its record off as it returns.
//
// A record with a `redo` undoes the sleep's own registration (an epoll
// set's count of sleepers): it runs as soon as the sleep is left, before a
// handler that may never return (leave_sleep_queues), and is then `done`:
// its frame, if it goes on, does not undo it again; a next sleep of the
// same call redoes it first (rearm_leave_undos).
struct CancelUndo {
  void (*undo)(void*);
  void* arg;
  CancelUndo* next;
  void (*redo)(void*) = nullptr;
  bool done = false;
};
extern thread_local CancelUndo* t_cancel_undo __attribute__((tls_model("initial-exec")));
struct UndoIfCancelled {
  CancelUndo record;
  UndoIfCancelled(void (*undo)(void*), void* arg, void (*redo)(void*) = nullptr)
      : record{undo, arg, t_cancel_undo, redo} {
    t_cancel_undo = &record;
  }
  bool done() const { return record.done; }
  ~UndoIfCancelled() { t_cancel_undo = record.next; }
  UndoIfCancelled(const UndoIfCancelled&) = delete;
  UndoIfCancelled& operator=(const UndoIfCancelled&) = delete;
};
// Runs and empties the list (the stack's lock held); a record already
// done is skipped.
void run_cancel_undos();
// Runs the records of `list` that have a redo and are not done, and marks
// them done; rearm_leave_undos redoes those done, for a next sleep (both
// with the stack's lock held). has_leave_undos: is there one to run? (The
// list is the calling thread's own: no lock needed to read it.)
void run_leave_undos(CancelUndo* list);
void rearm_leave_undos(CancelUndo* list);
bool has_leave_undos(const CancelUndo* list);

struct SignalMark {
  uint64_t caught;        // handlers run on this thread
  uint64_t not_restart;   // of which installed without SA_RESTART
};
SignalMark signal_mark();
// After a wait returned EINTR: should the call be restarted?
bool restart_after_signal(const SignalMark& before);

}  // namespace xdpload::shim
