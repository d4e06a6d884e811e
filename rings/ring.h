// AF_XDP ring wrappers: the four rings a socket shares with the kernel.
//
// A ring is a power-of-two array of entries plus a producer index, a consumer
// index and a flags word, all in memory mapped from the socket. We produce on
// the fill and tx rings and consume the rx and completion rings, so producer
// and consumer are distinct types: a consumer operation cannot be applied to a
// producer ring by mistake.
//
// Each side keeps a cached copy of the other side's index and reads the shared
// one only when the cached view runs out, so a burst costs one shared-memory
// load, not one per entry.
#pragma once

#include <cstdint>
#include <linux/if_xdp.h>

namespace xdpload::rings {

// Ring sizes (and frame counts) must be powers of two.
inline bool power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

// The mapped memory of one ring, as the kernel lays it out.
struct RingMap {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* entries = nullptr;
  uint32_t size = 0;  // entries, a power of two
};

template <typename Entry>
class ProdRing {
 public:
  ProdRing() = default;
  explicit ProdRing(const RingMap& m)
      : producer_(m.producer), consumer_(m.consumer), flags_(m.flags),
        entries_(static_cast<Entry*>(m.entries)), mask_(m.size - 1), size_(m.size) {
    cached_prod_ = *producer_;
    // The producer's view of the consumer is offset by the ring size, so that
    // "free slots" is a plain subtraction.
    cached_cons_ = *consumer_ + size_;
  }

  uint32_t size() const { return size_; }

  // Slots free for us to fill, looking at the kernel's consumer index only if
  // the cached view shows fewer than `wanted`.
  uint32_t free_slots(uint32_t wanted) {
    uint32_t free = cached_cons_ - cached_prod_;
    if (free >= wanted) return free;
    // Acquire: the kernel has finished reading the entries it consumed before
    // we overwrite them.
    cached_cons_ = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE) + size_;
    return cached_cons_ - cached_prod_;
  }

  // Reserves up to `n` slots (all or nothing); returns how many, 0 or n.
  uint32_t reserve(uint32_t n, uint32_t* index) {
    if (free_slots(n) < n) return 0;
    *index = cached_prod_;
    cached_prod_ += n;
    return n;
  }

  // Gives back the last `n` reserved but unsubmitted slots.
  void cancel(uint32_t n) { cached_prod_ -= n; }

  Entry& at(uint32_t index) { return entries_[index & mask_]; }

  // Publishes every reserved slot. Release: the entries we wrote are visible
  // to the kernel before the new producer index is.
  void submit() { __atomic_store_n(producer_, cached_prod_, __ATOMIC_RELEASE); }

  // Entries submitted but not yet consumed by the kernel.
  uint32_t outstanding() const {
    return cached_prod_ - __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
  }
  // The same from the shared indices alone (any thread, a hint).
  uint32_t published() const {
    return __atomic_load_n(producer_, __ATOMIC_RELAXED) - __atomic_load_n(consumer_, __ATOMIC_RELAXED);
  }

  bool needs_wakeup() const {
    return __atomic_load_n(flags_, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP;
  }

  // The consumer's shared index (its owner's view of how far it has read).
  const uint32_t* consumer_index() const { return consumer_; }

 private:
  uint32_t* producer_ = nullptr;
  uint32_t* consumer_ = nullptr;
  uint32_t* flags_ = nullptr;
  Entry* entries_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t cached_prod_ = 0;
  uint32_t cached_cons_ = 0;
};

template <typename Entry>
class ConsRing {
 public:
  ConsRing() = default;
  explicit ConsRing(const RingMap& m)
      : producer_(m.producer), consumer_(m.consumer), flags_(m.flags),
        entries_(static_cast<Entry*>(m.entries)), mask_(m.size - 1), size_(m.size) {
    cached_prod_ = *producer_;
    cached_cons_ = *consumer_;
  }

  uint32_t size() const { return size_; }

  // Entries ready to read, up to `wanted`.
  uint32_t available(uint32_t wanted) {
    uint32_t ready = cached_prod_ - cached_cons_;
    if (ready == 0) {
      // Acquire: entries the kernel wrote are visible once we see the index
      // that publishes them.
      cached_prod_ = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
      ready = cached_prod_ - cached_cons_;
    }
    return ready < wanted ? ready : wanted;
  }

  // Takes up to `n` entries; returns how many. They stay valid until release.
  uint32_t peek(uint32_t n, uint32_t* index) {
    uint32_t got = available(n);
    if (got) {
      *index = cached_cons_;
      cached_cons_ += got;
    }
    return got;
  }

  const Entry& at(uint32_t index) const { return entries_[index & mask_]; }

  // Hands `n` peeked entries back to the kernel. Release: our reads of the
  // entries complete before the kernel may overwrite them.
  void release(uint32_t n) {
    __atomic_store_n(consumer_, *consumer_ + n, __ATOMIC_RELEASE);
  }

  bool needs_wakeup() const {
    return __atomic_load_n(flags_, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP;
  }

  // Entries published and not yet released, from the shared indices alone:
  // safe to call from any thread, without the consumer's lock (a hint).
  uint32_t unreleased() const {
    return __atomic_load_n(producer_, __ATOMIC_ACQUIRE) - __atomic_load_n(consumer_, __ATOMIC_RELAXED);
  }

 private:
  uint32_t* producer_ = nullptr;
  uint32_t* consumer_ = nullptr;
  uint32_t* flags_ = nullptr;
  const Entry* entries_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t cached_prod_ = 0;
  uint32_t cached_cons_ = 0;
};

// The four rings of one AF_XDP socket, by role.
using FillRing = ProdRing<uint64_t>;        // frames we lend the kernel for rx
using CompletionRing = ConsRing<uint64_t>;  // tx frames the kernel is done with
using RxRing = ConsRing<xdp_desc>;          // received frames
using TxRing = ProdRing<xdp_desc>;          // frames to send

}  // namespace xdpload::rings
