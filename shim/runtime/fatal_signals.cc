#include "shim/runtime/fatal_signals.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "shim/intercept/libc.h"
#include "stack/lwip_port.h"

namespace xdpload::shim {

namespace {

// Terminating by default, and used to end programs on purpose. (Not the
// crash signals: a SIGSEGV's handler must not run our code.)
constexpr int kCaught[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2};

std::atomic<bool> g_installed[_NSIG];
std::atomic<int> g_pending{0};
int g_wake_fd = -1;
thread_local bool t_ends_process = false;
thread_local bool t_holds_progress = false;
std::atomic<int>* g_progress_hold = nullptr;

bool is_caught(int sig) {
  for (int s : kCaught)
    if (s == sig) return true;
  return false;
}

void on_fatal(int sig, siginfo_t*, void*) {
  // This thread keeps the progress thread out (an exec under way) and
  // stops below: the progress thread is let in to finish the process
  // (before the wake-up, which it must not take for a spurious one).
  const bool let_in = t_holds_progress && !t_ends_process && g_progress_hold;
  if (let_in) g_progress_hold->store(0);
  int expected = 0;
  // (Woken by the first signal, or by the one that let it in: a parked
  // progress thread took an earlier wake-up for a spurious one.)
  if (g_pending.compare_exchange_strong(expected, sig) || let_in) {
    uint64_t one = 1;
    // Async-signal-safe: the progress thread watches this eventfd.
    ssize_t w = libc::write(g_wake_fd, &one, sizeof one);
    (void)w;
  }
  // This thread is ending the process (its progress thread parked for
  // good): it goes on, and dies by the signal at the end.
  if (t_ends_process) return;
  // This thread holds the stack (or is taking it): it goes on until it
  // releases it, and stops there; the progress thread finishes after.
  // Otherwise it stops here, as the whole process would have.
  if (stack::CoreLock::held_here()) {
    stack::t_core_stop_at_release = 1;
    return;
  }
  for (;;) pause();
}

// SIG_DFL again where our catcher stood.
void restore_default_actions() {
  for (int sig : kCaught) {
    if (!g_installed[sig].exchange(false)) continue;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    libc::sigaction(sig, &dfl, nullptr);
  }
}

void install(int sig) {
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (libc::sigaction(sig, &sa, nullptr) == 0) g_installed[sig].store(true);
}

}  // namespace

void catch_fatal_signals(int wake_fd) {
  g_wake_fd = wake_fd;
  for (int sig : kCaught) {
    struct sigaction cur {};
    if (libc::sigaction(sig, nullptr, &cur) != 0) continue;
    bool dfl = !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL;
    if (dfl) install(sig);
  }
}

void this_thread_ends_the_process(bool on) { t_ends_process = on; }

bool this_thread_ends_process() { return t_ends_process; }

void this_thread_holds_progress(bool on) { t_holds_progress = on; }

void watch_progress_hold(std::atomic<int>* hold) { g_progress_hold = hold; }

void stop_catching_at_exit() {
  sigset_t caught, before;
  sigemptyset(&caught);
  for (int sig : kCaught) sigaddset(&caught, sig);
  pthread_sigmask(SIG_BLOCK, &caught, &before);
  // The default actions first, then the look: a signal another thread
  // caught before they were back is seen here (pending is not cleared).
  restore_default_actions();
  if (fatal_signal_pending()) die_by_pending_signal();
  t_ends_process = t_holds_progress = false;
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

int fatal_signal_pending() { return g_pending.load(std::memory_order_acquire); }

bool fatal_catcher_installed(int sig) {
  return sig > 0 && sig < _NSIG && g_installed[sig].load(std::memory_order_acquire);
}

void fatal_action_changed(int sig, bool to_default) {
  if (sig <= 0 || sig >= _NSIG || !is_caught(sig) || g_wake_fd < 0) return;
  if (to_default) install(sig);
  else g_installed[sig].store(false);
}

void fatal_signals_after_fork() {
  g_pending.store(0);
  t_ends_process = t_holds_progress = false;  // (the forking thread's)
}

void release_fatal_signals() {
  restore_default_actions();
  g_wake_fd = -1;
  g_pending.store(0);
}

void die_by_pending_signal() {
  int sig = g_pending.load();
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  libc::sigaction(sig, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(sig);
  // Still here: the signal could not kill us (SIGPIPE blocked elsewhere?).
  libc::_exit(128 + sig);
  __builtin_unreachable();
}

}  // namespace xdpload::shim
