// FdTable: which descriptors are accelerated sockets. A flat array indexed
// by fd, read without a lock on every intercepted call: a null entry means
// "not ours", and the call goes to the real function at once.
#pragma once

#include <atomic>
#include <cstddef>

namespace xdpload::shim {

class Socket;

class FdTable {
 public:
  // Sizes the table to the process's hard descriptor limit (pages are only
  // touched where descriptors are used).
  void init();
  Socket* get(int fd) const {
    if (static_cast<unsigned>(fd) >= size_) return nullptr;
    return slots_[fd].load(std::memory_order_acquire);
  }
  bool fits(int fd) const { return static_cast<unsigned>(fd) < size_; }
  void set(int fd, Socket* s) {
    slots_[fd].store(s, std::memory_order_release);
    int h = high_.load(std::memory_order_relaxed);
    while (fd > h && !high_.compare_exchange_weak(h, fd, std::memory_order_relaxed)) {
    }
  }
  // No descriptor above this one was ever ours (for walks over the table).
  int high() const { return high_.load(std::memory_order_relaxed); }
  Socket* take(int fd) {
    if (static_cast<unsigned>(fd) >= size_) return nullptr;
    return slots_[fd].exchange(nullptr, std::memory_order_acq_rel);
  }
  size_t size() const { return size_; }

 private:
  std::atomic<Socket*>* slots_ = nullptr;
  size_t size_ = 0;
  std::atomic<int> high_{-1};
};

}  // namespace xdpload::shim
