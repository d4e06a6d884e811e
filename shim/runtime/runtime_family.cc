// The process family: a process whose stack is running forks, and the child
// uses the same stack (OpenOnload's shared stacks, without a kernel module).
//
// - Memory: everything the stack changes lives in the family arena and in
//   lwIP's globals, both mapped shared before the first fork
//   (family/arena.h, family/shared_globals.h); the descriptor tables stay
//   per process, as descriptors are.
// - fork(): the parent takes the CoreLock, forks, and before releasing it
//   gives the child a reference for each descriptor the child inherited, so
//   that no socket can close in between. The child starts its own progress
//   thread: timers and ACKs go on while any process of the family lives.
// - close/exit: a socket closes when its last descriptor in any process
//   closes. A process that leaves (exit, _exit) closes its descriptors;
//   the last one finishes the connections as a lone process does.
// - death: a process killed without leaving (SIGKILL, a crash) is found by
//   the others' progress threads within a fifth of a second and its
//   descriptors are closed for it, as the kernel would. A process that
//   exec'd is gone from the family too (its new image does not map the
//   arena): its descriptors are closed on the stack's side.
// - Wake-ups across processes go through each waiter's datagram socket
//   (shim/wait/waiting.h).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "family/shared_globals.h"
#include "rings/private_fd.h"
#include "rings/xsk_port.h"
#include "shim/wait/epoll_set.h"
#include "shim/intercept/export.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"

namespace xdpload::shim {

using stack::CoreLock;

thread_local bool Runtime::t_family_fork = false;

namespace {

// Is `pid` alive and still running an image that maps the family arena?
// A zombie is dead; an exec'd image is gone from the family. The image is
// looked at (its maps: tens of microseconds for a process with many
// mappings) only when `look_at_image`.
// A process's state letter in /proc/PID/stat ('R', 'S', 'T'...); 0 when it
// cannot be read (gone).
char process_state(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  ssize_t n = libc::read(fd, buf, sizeof buf - 1);
  libc::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* paren = strrchr(buf, ')');
  if (!paren || paren[1] != ' ') return 0;
  return paren[2];
}

// Stopped by a signal (SIGSTOP, SIGTSTP...) or by a tracer (a debugger).
bool process_stopped(pid_t pid) {
  const char state = process_state(pid);
  return state == 'T' || state == 't';
}

bool member_alive(pid_t pid, const void* arena_base, bool look_at_image) {
  // Our parent, while it is ours, has not exited (an exiting process gives
  // its children to another before it is a zombie): no /proc read, which
  // every forked child's exit made.
  if (!look_at_image && pid == getppid()) return true;
  char path[64];
  const char state = process_state(pid);
  if (state == 0 || state == 'Z' || state == 'X' || state == 'x') return false;
  if (!look_at_image) return true;
  // The arena's first line in its maps: "base-end rw-s ...".
  snprintf(path, sizeof path, "/proc/%d/maps", int(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // cannot tell: keep it
  char want[32];
  int wn = snprintf(want, sizeof want, "%lx-", (unsigned long)uintptr_t(arena_base));
  static char maps[1 << 16];  // under the CoreLock
  size_t have = 0;
  bool found = false;
  for (;;) {
    ssize_t n = libc::read(fd, maps + have, sizeof maps - 1 - have);
    if (n <= 0) break;
    have += size_t(n);
    maps[have] = 0;
    for (char* line = maps; line && *line;) {
      if (!strncmp(line, want, size_t(wn))) {
        found = true;
        break;
      }
      line = strchr(line, '\n');
      if (line) ++line;
    }
    if (found) break;
    // Keep the last partial line for the next read.
    char* last = strrchr(maps, '\n');
    if (!last) {
      have = 0;
      continue;
    }
    size_t tail = have - size_t(last + 1 - maps);
    memmove(maps, last + 1, tail);
    have = tail;
  }
  libc::close(fd);
  return found;
}

// The family's list of members inside an exec (Runtime::exec_starts).
bool listed(const family::vector<pid_t>& v, pid_t pid) {
  return std::find(v.begin(), v.end(), pid) != v.end();
}
void unlist(family::vector<pid_t>& v, pid_t pid) { v.erase(std::remove(v.begin(), v.end(), pid), v.end()); }

// Threads of this process; 0 when unknown. procfs counts them in the link
// count of /proc/self/task (two plus one per thread, proc_task_getattr):
// one stat, where reading /proc/self/stat was an open, a read and a close
// in every exit of every forked child.
int thread_count() {
  struct stat st;
  if (::stat("/proc/self/task", &st) != 0 || st.st_nlink < 3) return 0;
  return int(st.st_nlink - 2);
}

}  // namespace

bool Runtime::family_shares() const {
  return start_state_.load() > 0 && !forked_child_ && sh_ != &own_shared_ && family::shared() &&
         family::lwip_globals_shared();
}

pid_t Runtime::fork_process() {
  if (!family_shares() || vfork_child()) return libc::fork();
  t_family_fork = true;
  CoreLock::lock();
  // Each child transmits on a ring of its own while there are rings (the
  // parent on queues_[0]'s; children in turn on the others'): the
  // processes of a family kick different sockets (XskPort::
  // transmit_on_queue).
  rings::XskPort* port = stack_ ? stack_->port() : nullptr;
  const uint32_t child_tx_queue = port ? port->child_tx_queue(++sh_->forks) : 0;
  pid_t pid = libc::fork();
  if (pid == 0) {
    rings::XskPort::transmit_on_queue(child_tx_queue);
    // The CoreLock is held by the parent's thread until it has counted our
    // descriptors; we wait for it at our first use of the stack. (The
    // lock's flags of this thread were cleared in fork_child.)
    t_family_fork = false;
    after_fork_in_child();
    return 0;
  }
  int err = errno;
  if (pid > 0) adopt_child(pid);
  CoreLock::unlock();
  t_family_fork = false;
  errno = err;
  return pid;
}

void Runtime::adopt_child(pid_t child) {
  sh_->members.push_back(child);
  // The child has a copy of each of our descriptors.
  for (int fd = 0; fd <= fds_.high(); ++fd) {
    if (Socket* s = fds_.get(fd)) {
      s->descriptors.push_back(Descriptor{child, fd});
      ++s->fd_refs;
    }
  }
  epoll_sets_forked();
  XLOG(kLogDecision, "forked process %d shares the stack", int(child));
}

void Runtime::after_fork_in_child() {
  pid_ = getpid();
  // (Copies of the parent's flags: its progress thread is not ours.)
  progress_inside_.store(false);
  progress_parked_.store(false);
  progress_hold_.store(kProgressFree);
  if (const char* v = getenv("XL_TEST_CHILD_PROGRESS_HOLD_MS")) test_first_hold_ms_ = atoi(v);
  if (getenv("XL_TEST_CHILD_DIES_IN_KICK")) rings::XskPort::test_die_in_kick();
  waiting_after_fork();
  // Our own progress thread: the parent's did not come with fork().
  progress_wake_fd_ = rings::to_private_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (progress_pending_.load()) return;  // the parent had none yet either: the first socket starts it
  progress_ = std::thread([this] { progress_loop(true); });
  progress_.detach();
  catch_fatal_signals(progress_wake_fd_);  // our own wake-up descriptor now
}

void Runtime::forget_departed(int fd, Socket* s) {
  // (From socket_at() under the lock too: poll_sockets' turns, its wake-up
  // test. The lock is not recursive: taken again, the thread waited for
  // itself.)
  const bool held = stack::CoreLock::held_here();
  if (!held) stack::CoreLock::lock();
  struct Release {
    bool held;
    ~Release() {
      if (!held) stack::CoreLock::unlock();
    }
  } release{held};
  if (fds_.get(fd) != s) return;
  fds_.take(fd);
  s->forget_descriptors(process_id(), fd);
  maybe_delete(s);
}

void Runtime::forget_waiters_of(pid_t pid) {
  for (Socket* s = sh_->live; s; s = s->live_next)
    if (s->waiters.forget_process(pid) && s->connections_waiting()) s->wake_next_acceptor();
  sh_->set_watchers.forget_process(pid);
  forget_frame_watch_of(pid);
}

void Runtime::release_descriptors_of(pid_t pid) {
  forget_waiters_of(pid);
  sh_->lent.release_all_of(pid);
  std::vector<Socket*> affected;
  for (Socket* s = sh_->live; s; s = s->live_next)
    for (const Descriptor& d : s->descriptors)
      if (d.pid == pid) {
        affected.push_back(s);
        break;
      }
  for (Socket* s : affected) {
    s->forget_descriptors(pid);
    if (s->fd_refs > 0) continue;
    detach_from_epolls(s);
    s->release();
    s->notify();
    maybe_delete(s);
  }
}

void Runtime::reap_dead_members(bool thorough) {
  const pid_t me = process_id();
  auto& m = sh_->members;
  for (size_t i = 0; i < m.size();) {
    pid_t pid = m[i];
    const bool image = thorough || listed(sh_->execing, pid);
    if (pid == me || member_alive(pid, family::arena_base(), image)) {
      ++i;
      continue;
    }
    if (listed(sh_->execing, pid)) {
      // (It ran exec: the new image is not in the family. The descriptors
      // the family still counts for it are those exec closed: close-on-exec
      // ones. What it passed on became the kernel's before the exec.)
      XLOG(kLogDecision, "process %d of the family ran a new program: its close-on-exec descriptors closed",
           int(pid));
    } else {
      XLOG(kLogInfo, "process %d of the family is gone without closing its sockets: closed for it",
           int(pid));
    }
    release_descriptors_of(pid);
    unlist(sh_->execing, pid);
    if (sh_->progress_owner == pid) sh_->progress_owner = 0;  // the next progress thread to look takes it
    stats_.take_from(pid);  // (the family's statistics, if it held them)
    m[i] = m.back();
    m.pop_back();
  }
  if (sh_->tx_unkicked) kick();
}

void Runtime::take_progress_from_stalled_owner() {
  // A timer due, and none run for two of our looks (an owner wakes at
  // each due timer, and lwIP's IGMP timer falls due every 100 ms), and the
  // owner's process stopped (SIGSTOP, a debugger, job control; a dead one
  // is reaped): the family's retransmissions, probes, delayed ACKs and
  // TIME-WAITs would wait for it as long as it stays so. This process runs
  // the stack from now on; the old owner only watches once it runs again
  // (progress_loop looks at progress_owner after each sleep).
  const pid_t owner = sh_->progress_owner;
  if (owner == 0 || owner == process_id() || leaving_ || !stack_) return;
  if (stack_->next_timer_ms() != 0) return;
  const int64_t since = stack_->ms_since_timers_ran();
  if (since < 2 * kReapIntervalNs / 1000000) return;
  // Only from a process whose own view of the port is the current one (a
  // port replaced after this process forked, for a broker that came back,
  // is watched through descriptors it does not have), and only from an
  // owner that is stopped: one merely late (the whole family stopped and
  // continued, this process first) keeps the stack.
  if (nwait_ == 0 || wait_fds_port_ != stack_->port_generation() || !process_stopped(owner))
    return;
  XLOG(kLogDecision,
       "process %d is stopped and ran none of the family's timers for %lld ms: process %d "
       "runs the stack from now on",
       int(owner), (long long)since, int(process_id()));
  ++counters_->progress_takeovers;
  sh_->progress_owner = process_id();
  // (The timers at once: the next non-owner's look must not find them
  // overdue still and take the stack again.)
  stack_->poll();
}

void Runtime::exec_starts() {
  if (sh_ == &own_shared_) return;
  const pid_t me = process_id();
  if (!listed(sh_->execing, me)) sh_->execing.push_back(me);
}

void Runtime::exec_failed() {
  if (sh_ == &own_shared_) return;
  const pid_t me = process_id();
  unlist(sh_->execing, me);
}

void Runtime::stats_before_exec() {
  // (The new image, if it loads the library, makes a segment of its own
  // under the same pid: the family's is listed under one of its members.
  // Without another, exec detaches it, its last process, and the kernel
  // removes it; an exec that fails keeps it.)
  if (!stats_.holder()) return;
  const pid_t me = process_id();
  for (pid_t p : sh_->members)
    if (p != me && member_alive(p, family::arena_base(), true)) {
      stats_.hand_to(p);
      return;
    }
}

thread_local bool Runtime::t_progress_thread = false;

bool Runtime::keep_progress_out(bool for_exec) {
  if (t_progress_thread || vfork_child() || forked_child_ || sh_ == &own_shared_) return false;
  // (First: a signal stopping this thread from here on lets it in again.)
  this_thread_holds_progress(true);
  progress_hold_.store(for_exec ? kProgressHeldForExec : kProgressHeldForExit);
  // (seq_cst: this store, then the read of its flag; it stores its flag,
  // then reads ours. Seen outside here, it sees the hold before it enters.)
  if (!progress_inside_.load()) return true;
  // Inside, perhaps waiting for a lock this thread holds (an exit from a
  // signal handler that interrupted a socket call): not waited for then.
  if (CoreLock::held_here()) return true;
  const int64_t until = mono_ns() + kProgressOutWaitNs;
  for (int i = 0; progress_inside_.load(); ++i) {
    // A fatal signal came (to another thread): the progress thread
    // finishes the process (die_of_signal) once let in, and this thread
    // stops, as the signal stops it; unless it is ending the process
    // itself, and then dies by the signal at the end.
    if (fatal_signal_pending() && !this_thread_ends_process()) {
      let_progress_in();
      for (;;) pause();
    }
    if (mono_ns() > until) {
      XLOG(kLogInfo, "the progress thread is still inside the stack after %lld ms; going on",
           (long long)(kProgressOutWaitNs / 1000000));
      break;
    }
    if (i < 100) sched_yield();
    else usleep(100);
  }
  return true;
}

void Runtime::let_progress_in() {
  const int err = errno;
  progress_hold_.store(kProgressFree);
  // (A parked thread waits for this; one that never parked drains it after
  // its next wait.)
  uint64_t one = 1;
  ssize_t w = libc::write(progress_wake_fd_, &one, sizeof one);
  (void)w;
  this_thread_holds_progress(false);  // (after: a signal before still lets it in)
  errno = err;
}

void Runtime::drain_progress_wake() {
  uint64_t v;
  ssize_t r = libc::read(progress_wake_fd_, &v, sizeof v);
  (void)r;
}

void Runtime::progress_enter() {
  for (;;) {
    progress_inside_.store(true);
    if (progress_hold_.load() == kProgressFree) return;
    progress_inside_.store(false);
    // Parked, outside the lock, until a failed exec lets it in again. A
    // fatal signal meanwhile is left to the thread that ends the process
    // (xdpload__exit and exit()'s destructor die by it once out of the
    // stack) or to this thread once let in (die_of_signal): dying from
    // here could kill that thread inside the stack.
    pollfd wake{progress_wake_fd_, POLLIN, 0};
    progress_parked_.store(true);
    libc::ppoll(&wake, 1, nullptr, nullptr);
    progress_parked_.store(false);
    drain_progress_wake();
  }
}

void Runtime::release_port_at_exit() {
  if (!last_of_family_ || forked_child_ || vfork_child() || t_progress_thread ||
      start_state_.load() <= 0)
    return;
  const bool progress = !progress_pending_.load(std::memory_order_acquire);
  const int threads = thread_count();
  if (threads == 0 || threads > (progress ? 2 : 1)) return;
  // No handler runs in the middle (nor on the helper threads, which
  // inherit the mask): a fatal signal is delivered at the end, to this
  // thread, which its caller then ends by.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  this_thread_ends_the_process();
  release_port_now(progress);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

void Runtime::release_port_now(bool progress) {
  if (progress) {
    // Out of its wait on the AF_XDP sockets, which holds them (a socket
    // closed under a waiting ppoll is released when the wait ends), and
    // parked on its wake-up descriptor alone, for good.
    progress_hold_.store(kProgressHeldForExit);
    uint64_t one = 1;
    ssize_t w = libc::write(progress_wake_fd_, &one, sizeof one);
    (void)w;
    const int64_t until = mono_ns() + kProgressOutWaitNs / 10;
    while (!progress_parked_.load())
      if (mono_ns() > until) return;  // (left to exit_group, as before)
      else sched_yield();
  }
  if (!lock_at_exit()) return;
  // The program's descriptors are the kernel's sockets from here on, as
  // they are: nothing is closed or sent on the stack (the connections
  // were finished, or left, by leave_family).
  for (int fd = 0; fd <= fds_.high(); ++fd) fds_.take(fd);
  epoll_sets_forget_all();
  start_state_.store(-1);  // (a socket made from here on is the kernel's)
  rings::XskPort& port = *stack_->port();
  const uint32_t queues = port.brokered() ? 0 : port.queue_count();
  // (What still waits on any process's ring goes before the sockets do.)
  port.kick_now_if_noted();
  port.release_at_exit();
  CoreLock::unlock();
  if (queues)
    XLOG(kLogInfo, "exit: the XDP link and %u AF_XDP socket(s) released together", queues);
}

void Runtime::leave_family() {
  if (forked_child_ || start_state_.load() <= 0 || vfork_child()) return;
  if (sh_ == &own_shared_) {
    last_of_family_ = true;
    return finish_connections();
  }
  // With the progress thread kept out, this thread is the one that ends the
  // process: a fatal signal from here on is noted and the end goes on, then
  // the process dies by it (its caller checks). Stopping this thread where
  // the signal landed, as for any other thread, would leave nobody to end
  // it: the progress thread stays parked (a SIGTERM during exit()'s
  // finishing of a slow connection hung the program for good). Marked
  // before the hold, signals blocked until both are so.
  {
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    this_thread_ends_the_process(true);
    if (!keep_progress_out(false)) this_thread_ends_the_process(false);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
  if (!lock_at_exit()) return;
  // Are others left? Dead ones are told by their state; an exec'd image
  // by its maps only where the member said it was exec'ing: one that
  // exec'd by other means was found by the progress threads' thorough
  // look (every kReapIntervalNs), or is within that time of it.
  reap_dead_members(false);
  const pid_t me = process_id();
  leaving_ = true;
  if (sh_->progress_owner == me) sh_->progress_owner = 0;
  bool others = false;
  for (pid_t p : sh_->members) others |= p != me;
  if (!others) {
    last_of_family_ = true;
    CoreLock::unlock();
    finish_connections();
    return;
  }
  others_remain_ = true;
  // A thread of this process asleep in accept() never leaves the queue by
  // itself now: a connection must not be woken for it.
  forget_waiters_of(me);
  // The family's statistics stay listed, under a process that stays.
  for (pid_t p : sh_->members)
    if (p != me) {
      stats_.hand_to(p);
      break;
    }
  // Others go on with the stack: this process's descriptors close, and
  // what they still have to deliver the others' progress threads deliver.
  // With other threads of the program still running (exit() does not stop
  // them), closing under their feet could free a socket one of them is
  // using: then the others close them once this process is gone (within
  // kReapIntervalNs), as they do for a killed one. Ours and the progress
  // thread only: now.
  int threads = thread_count();
  if (threads == 0 || threads > 2) {
    kick();
    CoreLock::unlock();
    return;
  }
  for (int fd = 0; fd <= fds_.high(); ++fd)
    if (fds_.get(fd)) op_forget(fd);
  epoll_sets_forget_all();
  sh_->lent.release_all_of(me);  // (the zero-copy calls' buffers go back)
  auto& m = sh_->members;
  m.erase(std::remove(m.begin(), m.end(), me), m.end());
  kick();
  CoreLock::unlock();
}

}  // namespace xdpload::shim

using namespace xdpload::shim;

pid_t xdpload_fork(void) { return Runtime::get().fork_process(); }

void xdpload__exit(int status) {
  // What the kernel does at any exit: the process's sockets close (and
  // deliver what they hold).
  Runtime& r = Runtime::get();
  r.leave_family();
  r.shutdown_stats();
  r.release_port_at_exit();
  // A fatal signal during the end (its progress thread kept out): the
  // process dies by it now, as it would have on the kernel path.
  if (fatal_signal_pending()) die_by_pending_signal();
  xdpload::libc::_exit(status);
  __builtin_unreachable();
}
