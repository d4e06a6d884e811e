// LentBuffers: the stack's buffers a program holds through the extensions
// API's zero-copy calls (include/xdpload/extensions.h): received data it
// reads in place, and transmit frames it fills before it sends them.
//
// The program names a buffer by a handle, never by a pointer of ours: a
// handle is a slot and that slot's generation, so that a handle released
// twice, made up, or kept by a forked child (each buffer belongs to the
// process that took it) is refused with EINVAL instead of freeing memory
// that is someone else's. In the family arena (RuntimeShared): the buffers
// are the family's stack's, and when a process leaves or dies, its
// buffers go back (release_all_of). CoreLock held for every call.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "family/arena.h"

struct pbuf;

namespace xdpload::shim {

class LentBuffers {
 public:
  enum class Kind : uint8_t { Received, Transmit };

  // A handle for `p` (which the program now holds: the registry keeps the
  // reference it is given), 0 when the family already lends `limit`.
  // `room`: a transmit frame's capacity, the most it may carry.
  uint64_t lend(pbuf* p, Kind kind, uint16_t room, pid_t pid, uint32_t limit);
  // The buffer behind `handle` when `pid` holds it as `kind` (and its
  // room), else nullptr. The registry keeps it.
  pbuf* find(uint64_t handle, Kind kind, pid_t pid, uint16_t* room = nullptr) const;
  // Forgets `handle` (found valid) and returns its buffer, which the caller
  // now owns.
  pbuf* take(uint64_t handle);
  // Each of the n handles names a buffer `pid` holds (as `kind`, unless
  // any), none twice.
  bool held(const uint64_t* handles, int n, pid_t pid, Kind kind, bool any_kind = false) const;
  // Frees the buffers of n handles when held() (of any kind); else false,
  // and nothing changes.
  bool release(const uint64_t* handles, int n, pid_t pid);
  // Frees every buffer `pid` holds (it left the family, or died).
  void release_all_of(pid_t pid);
  uint32_t lent() const { return lent_; }

 private:
  struct Slot {
    pbuf* p = nullptr;  // nullptr: free
    pid_t pid = 0;
    uint32_t generation = 0;
    uint16_t room = 0;
    Kind kind = Kind::Received;
    mutable bool marked = false;  // held(): already named in this call
  };
  // Index of the slot a handle names, or -1.
  int64_t slot_of(uint64_t handle) const;
  static uint64_t handle_of(uint32_t index, uint32_t generation) {
    return (uint64_t(generation) << 32) | (uint64_t(index) + 1);
  }
  family::vector<Slot> slots_;
  family::vector<uint32_t> free_;
  uint32_t lent_ = 0;
};

}  // namespace xdpload::shim
