// A vector of trivially copyable elements whose first N live inside it (on
// the caller's stack): poll() and select() build three lists per call,
// which took three heap allocations a call as std::vector (a spinning
// program's poll() paid them for every message), and which a thread
// cancelled, or left by a handler's siglongjmp, in the middle of the call
// leaked (its frames run no destructors: the library has no exceptions).
// Past N, the elements move to the heap, as std::vector's; a caller that
// may be cancelled lists release() among its undo records (waiting.h's
// UndoIfCancelled, ReleasedIfCancelled below).
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

namespace xdpload::shim {

template <typename T, size_t N>
class InlineVector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  InlineVector() = default;
  InlineVector(const InlineVector&) = delete;
  InlineVector& operator=(const InlineVector&) = delete;

  void push_back(const T& v) {
    if (size_ < N) {
      inline_[size_++] = v;
      return;
    }
    if (size_ == N) heap_.assign(inline_, inline_ + N);  // (the spill)
    heap_.push_back(v);
    ++size_;
  }
  void clear() {
    size_ = 0;
    heap_.clear();
  }
  // Empty, and its heap part (if it spilled) given back.
  void release() {
    size_ = 0;
    std::vector<T>().swap(heap_);
  }
  T* data() { return size_ <= N ? inline_ : heap_.data(); }
  const T* data() const { return size_ <= N ? inline_ : heap_.data(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }

 private:
  T inline_[N];
  std::vector<T> heap_;  // all elements, once there are more than N
  size_t size_ = 0;
};

}  // namespace xdpload::shim
