// The lwIP core of a process family: lwIP keeps its state in globals (PCB
// lists, netif list, timers), shared by the processes a stack's owner forks
// (family/shared_globals.h), so every Stack in a family shares one core and
// one lock, a robust process-shared mutex in the family arena. Holding the
// lock is the right to call any lwIP function and to change any socket.
#pragma once

#include <cstdint>

#include "family/arena.h"

namespace xdpload::stack {

// Threads of this process holding it now: at most one; read by a signal
// handler to know whether its own thread holds it.
inline __attribute__((tls_model("initial-exec"))) thread_local int t_core_held = 0;

class CoreLock {
 public:
  static void lock() {
    if (family::core_mutex().lock()) holder_died();
    t_core_held = 1;
  }
  static void unlock() {
    t_core_held = 0;
    family::core_mutex().unlock();
  }
  static bool try_lock() {
    if (!family::core_mutex().try_lock()) return false;
    t_core_held = 1;
    return true;
  }
  // The calling thread holds it (async-signal-safe).
  static bool held_here() { return t_core_held != 0; }
  // How many times this process found the lock's last holder dead.
  static uint64_t holders_died();

 private:
  // A process of the family was killed holding the lock: said once per
  // process, counted.
  static void holder_died();
};

// RAII holder, for setup code and tests.
struct CoreGuard {
  CoreGuard() { CoreLock::lock(); }
  ~CoreGuard() { CoreLock::unlock(); }
  CoreGuard(const CoreGuard&) = delete;
  CoreGuard& operator=(const CoreGuard&) = delete;
};

// Initializes lwIP once per process. Call with the lock held.
void lwip_core_init();

// Milliseconds on the monotonic clock (what lwIP's sys_now() returns).
uint64_t now_ms();

}  // namespace xdpload::stack
