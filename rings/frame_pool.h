// FramePool: the UMEM frames nobody holds (not in a ring, not lent to the
// stack). A LIFO stack, so the frame handed out next is the one most recently
// touched and likely still in cache.
//
// A bit per frame records whether it is in the pool, so that giving back a
// frame that is already free (a double free somewhere above) is refused and
// counted instead of silently handing the same frame out twice.
#pragma once

#include "family/arena.h"
#include <cstdint>
#include <vector>

namespace xdpload::rings {

class FramePool {
 public:
  FramePool() = default;

  // Frames are numbered 0..count-1; their UMEM address is number << shift.
  void init(uint32_t count, uint32_t frame_shift) {
    init_empty(count, frame_shift);
    for (uint32_t i = count; i-- > 0;) push_index(i);
  }

  // The same, with no frame in the pool yet: frames arrive by free() (a
  // broker's program, given its frames one by one).
  void init_empty(uint32_t count, uint32_t frame_shift) {
    shift_ = frame_shift;
    count_ = count;
    stack_.assign(count, 0);
    in_pool_.assign((count + 63) / 64, 0);
    top_ = 0;
  }

  uint32_t capacity() const { return count_; }
  uint32_t size() const { return top_; }
  bool empty() const { return top_ == 0; }

  // Returns a frame's UMEM address, or false when the pool is empty.
  bool alloc(uint64_t* addr) {
    if (top_ == 0) return false;
    uint32_t i = stack_[--top_];
    in_pool_[i >> 6] &= ~(1ull << (i & 63));
    *addr = uint64_t(i) << shift_;
    return true;
  }

  // Takes back the frame holding `addr` (any offset inside it). Returns false,
  // and keeps the pool unchanged, for an address outside the UMEM or a frame
  // that is already free.
  bool free(uint64_t addr) {
    uint64_t i = addr >> shift_;
    if (i >= count_ || (in_pool_[i >> 6] & (1ull << (i & 63)))) {
      ++bad_frees_;
      return false;
    }
    push_index(uint32_t(i));
    return true;
  }

  bool contains(uint64_t addr) const {
    uint64_t i = addr >> shift_;
    return i < count_ && (in_pool_[i >> 6] & (1ull << (i & 63)));
  }

  // Refused frees: each one is a bug above the pool.
  uint64_t bad_frees() const { return bad_frees_; }

 private:
  void push_index(uint32_t i) {
    in_pool_[i >> 6] |= 1ull << (i & 63);
    stack_[top_++] = i;
  }

  family::vector<uint32_t> stack_;
  family::vector<uint64_t> in_pool_;
  uint32_t top_ = 0;
  uint32_t count_ = 0;
  uint32_t shift_ = 12;
  uint64_t bad_frees_ = 0;
};

}  // namespace xdpload::rings
