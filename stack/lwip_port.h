// The lwIP core of a process family: lwIP keeps its state in globals (PCB
// lists, netif list, timers), shared by the processes a stack's owner forks
// (family/shared_globals.h), so every Stack in a family shares one core and
// one lock, a robust process-shared mutex in the family arena. Holding the
// lock is the right to call any lwIP function and to change any socket.
#pragma once

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
// Work the releasing thread does just after each release, outside the lock
// (the transmit kick XskPort::flush() noted: Stack::open sets it).
inline std::atomic<void (*)()> g_core_release_hook{nullptr};

class CoreLock {
 public:
  static void lock() {
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (family::core_mutex().lock()) holder_died();
  }
  static void unlock() {
    family::core_subject() = nullptr;
    family::core_mutex().unlock();
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = 0;
    if (void (*hook)() = g_core_release_hook.load(std::memory_order_relaxed)) hook();
    if (__builtin_expect(t_core_stop_at_release, 0)) stop_for_good();
  }
  static bool try_lock() {
    // (As it was on failure: a thread that holds the lock already and
    // tries again must still be seen holding it.)
    const int was = t_core_held;
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    bool died = false;
    if (family::core_mutex().try_lock(&died)) {
      if (died) holder_died();
      return true;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = was;
    if (__builtin_expect(!was && t_core_stop_at_release, 0)) stop_for_good();
    return false;
  }
  // Takes it within `ms` milliseconds, or not (the caller's flags as
  // before). For a thread that must not wait for ever behind a holder
  // (the progress thread, once a fatal signal is pending).
  static bool lock_within(int ms) {
    t_core_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    bool died = false;
    if (family::core_mutex().lock_within(ms, &died)) {
      if (died) holder_died();
      return true;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_core_held = 0;
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

// Initializes lwIP once per process. Call with the lock held.
void lwip_core_init();

// Milliseconds on the monotonic clock (what lwIP's sys_now() returns).
uint64_t now_ms();

}  // namespace xdpload::stack
