// sigaction()/signal() interception: the program's handlers run inside a
// wrapper of ours that counts, per thread, how many handlers ran and how many
// of them were installed without SA_RESTART. A blocking call whose sleep was
// interrupted (EINTR) uses the counts to do what Linux does: restart, or fail
// with EINTR. The program sees its own handlers and flags in every answer.
// The wrapper also keeps a handler from leaving the library's state behind
// when it does not return (siglongjmp out of a recv() it interrupted, which
// POSIX allows; pthread_exit): a signal that comes while the thread holds
// the stack's lock is put back and its handler runs at the release
// (defer_to_release), and a thread asleep in a call leaves its wait queues
// before the handler runs (SleepExit).
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "shim/intercept/export.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/socket/user_memory.h"
#include "shim/intercept/libc.h"
#include "shim/wait/waiting.h"
#include "stack/lwip_port.h"

using namespace xdpload;
using namespace xdpload::shim;

namespace {

// The program's view of each signal's action; valid where `wrapped`.
struct Action {
  struct sigaction act;
  bool wrapped;
};
Action g_actions[_NSIG];

__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_caught = 0;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_not_restart = 0;

// Handlers that must run where their signal comes: a fault's (returning
// would fault again), abort()'s, a profiler's (its sample is of where the
// thread is). (A one-shot handler, SA_RESETHAND, is deferred: its action
// is put back for the signal put back, defer_to_release.)
bool deferrable(int sig) {
  switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS:
    case SIGABRT: case SIGPROF:
      return false;
    default:
      return true;
  }
}

// Our wrapper as the kernel's action for `sig`, the program's `act` being
// what it runs; without SA_RESETHAND, which run_program_handler does.
void install_wrapper(int sig, const struct sigaction& act);

// Realtime instances of a signal taken out of the pending queue to be put
// back behind the deferred one, at most (more stay ahead of it).
constexpr int kReorderedMax = 16;

void run_program_handler(int sig, siginfo_t* info, void* ctx, const struct sigaction& act);

// The signal came while this thread holds the stack's lock (or takes it):
// it is put back, pending for this thread, and blocked until the release
// (CoreLock::let_deferred_signals_in), where the kernel delivers it again
// with its own siginfo. The kernel keeps the queueing (realtime signals
// queue, standard ones merge as pending ones do). False: not put back
// (the handler then runs now). (Not inlined: its frame, 2.4 KB, stays off
// the wrapper's, which a small alternate stack runs every handler on.)
__attribute__((noinline)) bool defer_to_release(int sig, siginfo_t* info, void* ctx,
                                                const struct sigaction& act) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  // (Blocked first: under SA_NODEFER the signal put back would come at once.)
  sigset_t was;
  pthread_sigmask(SIG_BLOCK, &one, &was);
  const int err = errno;
  // Realtime signals come in the order they were sent: the instances that
  // arrived while this one was being taken (blocked meanwhile) are taken
  // out, and put back after it. (The system call, not glibc's sigtimedwait:
  // that one is a cancellation point, and rewrites SI_TKILL as SI_USER.
  // Instances sent to the process come back as this thread's.)
  siginfo_t later[kReorderedMax];
  int nlater = 0;
  if (sig >= SIGRTMIN) {
    const timespec now{0, 0};
    while (nlater < kReorderedMax &&
           syscall(SYS_rt_sigtimedwait, &one, &later[nlater], &now, _NSIG / 8) == sig)
      ++nlater;
  }
  // (Our own siginfo to our own thread: the kernel allows any si_code then.)
  const pid_t pid = getpid(), tid = gettid();
  const bool put_back = syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, info) == 0;
  // (The user's pending-signal limit may be reached meanwhile by others: an
  // instance that cannot be put back runs now, rather than be lost.)
  for (int i = 0; i < nlater; ++i)
    if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &later[i]) != 0)
      run_program_handler(sig, &later[i], ctx, act);
  if (!put_back) {
    // (The ones put back come as this handler returns.)
    errno = err;
    pthread_sigmask(SIG_SETMASK, &was, nullptr);
    return false;
  }
  // A one-shot handler: the kernel reset the action to SIG_DFL as it
  // delivered the signal, which the instance put back would meet. Our
  // wrapper stands again until the handler runs (then the reset is ours).
  if (act.sa_flags & SA_RESETHAND) install_wrapper(sig, act);
  errno = err;
  // ...and blocked after this handler returns (the mask the kernel puts
  // back is the interrupted context's).
  sigaddset(&static_cast<ucontext_t*>(ctx)->uc_sigmask, sig);
  stack::t_signals_deferred = stack::t_signals_deferred | (uint64_t(1) << (sig - 1));
  return true;
}

void wrapper(int sig, siginfo_t* info, void* ctx) {
  if (sig <= 0 || sig >= _NSIG) return;
  // A fault of ours reading or writing the program's memory (EFAULT, as
  // the kernel's copies fail): not the program's to see.
  if ((sig == SIGSEGV || sig == SIGBUS) && recover_user_fault(sig, info, ctx)) return;
  // Copy: the handler may install another action for this signal.
  struct sigaction act = g_actions[sig].act;
  if (stack::CoreLock::defers_signals_here() && info && ctx && deferrable(sig) &&
      defer_to_release(sig, info, ctx, act))
    return;
  run_program_handler(sig, info, ctx, act);
}

// The program's handler, run now.
void run_program_handler(int sig, siginfo_t* info, void* ctx, const struct sigaction& act) {
  ++t_caught;
  if (!(act.sa_flags & SA_RESTART)) ++t_not_restart;
  if (act.sa_flags & SA_RESETHAND) {
    // The action is SIG_DFL again from here, as the handler starts: the
    // kernel has put it back if it delivered this instance with
    // SA_RESETHAND, not if it was deferred (our wrapper stood for it). For
    // a signal one of our catchers stands in for SIG_DFL on, the catcher.
    g_actions[sig].wrapped = false;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    libc::sigaction(sig, &dfl, nullptr);
    fatal_action_changed(sig, true);
    user_fault_action_changed(sig, true);
  }
  // A sleep of ours on this thread ends (before the handler: it may not
  // return), and the thread leaves its queues now (SleepExit).
  ThreadWaiter* const sleeping = t_sleeping_waiter;
  SleepExit* const sleep = t_sleep_exit;
  CancelUndo* const undo = t_cancel_undo;
  const int releasing = stack::t_core_releasing;
  if (sleeping) sleeping->signal();
  if (sleep && !stack::CoreLock::defers_signals_here()) {
    sleep->leave(sleep);
  } else if (!sleep && undo && !stack::CoreLock::defers_signals_here() && has_leave_undos(undo)) {
    // Not asleep but inside a call that counts itself a sleeper (an epoll
    // set's, spinning): the count goes down now, as the sleep's leave does.
    stack::CoreLock::lock();
    run_leave_undos(undo);
    stack::CoreLock::unlock();
  }
  // The handler's own calls start with nothing of the call it interrupted;
  // one that leaves by siglongjmp leaves nothing of it behind either (the
  // undo records are in the frames it leaves). (A handler run inside a
  // release, not deferred: a fault's, abort()'s, must not leave the thread
  // deferring every signal for good.)
  t_sleeping_waiter = nullptr;
  t_sleep_exit = nullptr;
  t_cancel_undo = nullptr;
  stack::t_core_releasing = 0;
  if (act.sa_flags & SA_SIGINFO) {
    act.sa_sigaction(sig, info, ctx);
  } else if (act.sa_handler != SIG_IGN && act.sa_handler != SIG_DFL) {
    act.sa_handler(sig);
  }
  stack::t_core_releasing = releasing;
  t_sleeping_waiter = sleeping;
  t_sleep_exit = sleep;
  t_cancel_undo = undo;
  // The sleep, left, must end: the handler's own calls may have taken the
  // wake-up made above (a call with its own signal mask is not ended by
  // the handler's count).
  if (sleeping && sleep) sleeping->signal();
}

void install_wrapper(int sig, const struct sigaction& act) {
  struct sigaction installed = act;
  installed.sa_flags = (act.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
  installed.sa_sigaction = wrapper;
  libc::sigaction(sig, &installed, nullptr);
}

bool is_handler(const struct sigaction* a) {
  if (a->sa_flags & SA_SIGINFO) return a->sa_sigaction != nullptr;
  return a->sa_handler != SIG_IGN && a->sa_handler != SIG_DFL;
}

// One of our catchers stands in for the program's SIG_DFL on `sig`: of
// fatal signals (shim/runtime/fatal_signals.h) or of faults in our reads
// and writes of its memory (shim/socket/user_memory.h).
bool catcher_installed(int sig) {
  return fatal_catcher_installed(sig) || user_fault_catcher_installed(sig);
}

int do_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (sig <= 0 || sig >= _NSIG || sig == SIGKILL || sig == SIGSTOP)
    return libc::sigaction(sig, act, old);
  struct sigaction prev_program;
  bool had = g_actions[sig].wrapped;
  if (had) prev_program = g_actions[sig].act;
  // Our catcher of fatal signals (shim/runtime/fatal_signals.h) stands in for
  // SIG_DFL: the program sees SIG_DFL.
  const bool catcher = !had && catcher_installed(sig);
  if (catcher) {
    prev_program = {};
    prev_program.sa_handler = SIG_DFL;
    had = true;
  }
  if (!act) {
    int rc = libc::sigaction(sig, nullptr, old);
    if (rc == 0 && old && had) *old = prev_program;
    return rc;
  }
  if (!is_handler(act) && !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL &&
      catcher_installed(sig)) {
    // SIG_DFL again: the catcher stays.
    if (g_actions[sig].wrapped) {
      g_actions[sig].wrapped = false;
      fatal_action_changed(sig, true);
      user_fault_action_changed(sig, true);
    }
    if (old) *old = prev_program;
    return 0;
  }
  // (Read before *old is written: the program may pass one struct as both.)
  const bool to_default = !is_handler(act) && act->sa_handler == SIG_DFL;
  struct sigaction installed = *act;
  if (is_handler(act)) {
    installed.sa_flags |= SA_SIGINFO;
    installed.sa_sigaction = wrapper;
    // A one-shot handler of a fault: the kernel would reset it as it
    // delivers a fault of ours too, which the wrapper recovers without the
    // handler; run_program_handler makes the reset when the handler runs.
    if (sig == SIGSEGV || sig == SIGBUS) installed.sa_flags &= ~SA_RESETHAND;
    // Record before installing: the signal may arrive at once.
    g_actions[sig].act = *act;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    g_actions[sig].wrapped = true;
  }
  struct sigaction kernel_old;
  int rc = libc::sigaction(sig, &installed, &kernel_old);
  if (rc != 0) {
    int err = errno;
    g_actions[sig].wrapped = had;
    if (had) g_actions[sig].act = prev_program;
    errno = err;
    return rc;
  }
  if (!is_handler(act)) g_actions[sig].wrapped = false;
  if (old) *old = had ? prev_program : kernel_old;
  fatal_action_changed(sig, to_default);
  user_fault_action_changed(sig, to_default);
  return 0;
}

}  // namespace

namespace xdpload::shim {

SignalMark signal_mark() { return SignalMark{t_caught, t_not_restart}; }

bool restart_after_signal(const SignalMark& before) {
  // No handler of ours ran: one installed behind our back, or none. Fail
  // with EINTR, which a correct program handles anyway.
  if (t_caught == before.caught) return false;
  return t_not_restart == before.not_restart;
}

}  // namespace xdpload::shim

int xdpload_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  return do_sigaction(sig, act, old);
}

sighandler_t xdpload_signal(int sig, sighandler_t handler) {
  // glibc's signal() has BSD semantics: the handler stays, calls restart.
  struct sigaction act {}, old{};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  if (sig > 0 && sig < _NSIG) sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  if (do_sigaction(sig, &act, &old) != 0) return SIG_ERR;
  // A SA_SIGINFO handler goes back as signal() would return it: the same
  // address, seen through the one-argument type.
  if (old.sa_flags & SA_SIGINFO)
    return reinterpret_cast<sighandler_t>(reinterpret_cast<void (*)()>(old.sa_sigaction));
  return old.sa_handler;
}
