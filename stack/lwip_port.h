// The process-wide lwIP core: lwIP keeps its state in globals (PCB lists,
// netif list, timers), so every Stack in a process shares one core and one
// lock. Holding the lock is the right to call any lwIP function.
#pragma once

#include <cstdint>
#include <mutex>

namespace xdpload::stack {

class CoreLock {
 public:
  static void lock() { mutex().lock(); }
  static void unlock() { mutex().unlock(); }
  static bool try_lock() { return mutex().try_lock(); }

 private:
  static std::mutex& mutex();
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
