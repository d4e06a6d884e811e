// The lwIP core of a process family: lwIP keeps its state in globals (PCB
// lists, netif list, timers), shared by the processes a stack's owner forks
// (family/shared_globals.h), so every Stack in a family shares one core and
// one lock, a robust process-shared mutex in the family arena. Holding the
// lock is the right to call any lwIP function and to change any socket.
#pragma once

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <cstdint>

#include "family/arena.h"

namespace xdpload::stack {

// Whether this thread holds the lock or is taking it (set before the
// mutex is taken, cleared after it is released), read by a signal handler
// of the same thread: a handler that interrupts lock() between the mutex
// and the flag must not take the thread for one outside the stack and stop
// it there with the lock held (a fatal signal to a spinning program used to
// hang it that way).
inline __attribute__((tls_model("initial-exec"))) thread_local volatile int t_core_held = 0;
// Set by a signal handler that found the lock held: the thread stops for
// good when it releases it (a process being ended by a signal).
inline __attribute__((tls_model("initial-exec"))) thread_local volatile int t_core_stop_at_release =
    0;
// The program's cancellability of this thread (pthread_setcancelstate)
// while it holds the lock, which is held with cancellation off: a thread
// the program cancels (pthread_cancel) must not end at a cancellation
// point inside the stack (a kick's sendto(), an eventfd's write()) with the
// stack half changed. It ends where the call it made would have let it:
// where that call sleeps (Runtime::block_impl), with the lock let go.
inline __attribute__((tls_model("initial-exec"))) thread_local int t_cancel_state_was = 0;
// Signals whose handlers (the program's) came while this thread held the
// lock or was taking it: one bit per signal (1 << (sig - 1)). The signal
// was put back, pending and blocked (shim/wait/signals.cc), and is let in
// as the thread lets go of the lock: a handler that leaves by siglongjmp,
// as one may leave a recv() it interrupted, would otherwise leave the lock
// held, the family hung.
inline __attribute__((tls_model("initial-exec"))) thread_local volatile uint64_t
    t_signals_deferred = 0;
// Set while unlock() runs, the release hook included (it may take and let
// go of the lock again): signals that come then are deferred too, and let
// in by the outermost release only, at its very end. A handler must not
// run inside the hook, nor with cancellation still off: one that left by
// siglongjmp would leave the thread so.
inline __attribute__((tls_model("initial-exec"))) thread_local volatile int t_core_releasing = 0;
// Work the releasing thread does just after each release, outside the lock
// (the transmit kick XskPort::flush() noted: Stack::open sets it).
inline std::atomic<void (*)()> g_core_release_hook{nullptr};

class CoreLock {
 public:
  static void lock() {
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &t_cancel_state_was);
    if (family::core_mutex().lock()) holder_died();
  }
  static void unlock() {
    // (Read first: the release hook may take and let go of the lock again.)
    const int cancel_state = t_cancel_state_was;
    t_core_releasing = t_core_releasing + 1;
    family::core_subject() = nullptr;
    family::core_mutex().unlock();
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = 0;
    if (void (*hook)() = g_core_release_hook.load(std::memory_order_relaxed)) hook();
    if (__builtin_expect(t_core_stop_at_release, 0)) stop_for_good();
    // (Last: the hook's kick is no cancellation point either. Enabling
    // acts on no pending cancellation of the deferred kind.)
    int ignored;
    pthread_setcancelstate(cancel_state, &ignored);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_releasing = t_core_releasing - 1;
    let_deferred_signals_in_if_any();
  }
  // A handler of the program whose signal comes now must wait for the
  // release (async-signal-safe).
  static bool defers_signals_here() { return t_core_held != 0 || t_core_releasing != 0; }
  // The handlers deferred while the lock was held run now (their signals
  // unblocked), unless this is a release inside the release hook.
  static void let_deferred_signals_in_if_any() {
    if (__builtin_expect(t_signals_deferred != 0, 0) && !t_core_releasing)
      let_deferred_signals_in();
  }
  // Unblocks them whatever the state (a forked child, whose copy of the
  // forking thread had them blocked: none is pending in the child).
  static void let_deferred_signals_in();
  static bool try_lock() {
    // (As it was on failure: a thread that holds the lock already and
    // tries again must still be seen holding it.)
    const int was = t_core_held;
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    int cancel_was;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_was);
    bool died = false;
    if (family::core_mutex().try_lock(&died)) {
      t_cancel_state_was = cancel_was;
      if (died) holder_died();
      return true;
    }
    int ignored;
    pthread_setcancelstate(cancel_was, &ignored);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = was;
    if (__builtin_expect(!was && t_core_stop_at_release, 0)) stop_for_good();
    if (!was) let_deferred_signals_in_if_any();
    return false;
  }
  // Takes it within `ms` milliseconds, or not (the caller's flags as
  // before). For a thread that must not wait for ever behind a holder
  // (the progress thread, once a fatal signal is pending).
  static bool lock_within(int ms) {
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    int cancel_was;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_was);
    bool died = false;
    if (family::core_mutex().lock_within(ms, &died)) {
      t_cancel_state_was = cancel_was;
      if (died) holder_died();
      return true;
    }
    int ignored;
    pthread_setcancelstate(cancel_was, &ignored);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = 0;
    let_deferred_signals_in_if_any();
    return false;
  }
  // The calling thread holds it, or is taking it (async-signal-safe).
  static bool held_here() { return t_core_held != 0; }
  // How many times this process found the lock's last holder dead.
  static uint64_t holders_died();
  // Called (lock held) when the last holder died with it, with what that
  // holder had named as being changed (family::core_subject(), or null).
  using DiedHandler = void (*)(void* subject);
  static void on_holder_died(DiedHandler fn);

 private:
  // A process of the family was killed holding the lock: said once per
  // process, counted.
  static void holder_died();
  // Never returns: the thread sleeps until the process ends.
  [[noreturn]] static void stop_for_good();
};

// RAII holder, for setup code and tests.
struct CoreGuard {
  CoreGuard() { CoreLock::lock(); }
  // Of a lock the caller has taken (CoreLock::lock_within).
  explicit CoreGuard(std::adopt_lock_t) {}
  ~CoreGuard() { CoreLock::unlock(); }
  CoreGuard(const CoreGuard&) = delete;
  CoreGuard& operator=(const CoreGuard&) = delete;
};

// No cancellation in a stretch the program's call would not be cancelled
// in (the file reads of a sendfile(), which is no cancellation point).
struct NoCancellation {
  NoCancellation() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &was); }
  ~NoCancellation() {
    int ignored;
    pthread_setcancelstate(was, &ignored);
  }
  NoCancellation(const NoCancellation&) = delete;
  NoCancellation& operator=(const NoCancellation&) = delete;
  int was = 0;
};

// Initializes lwIP once per process. Call with the lock held.
void lwip_core_init();

// Milliseconds on the monotonic clock (what lwIP's sys_now() returns).
uint64_t now_ms();

}  // namespace xdpload::stack
