// Ring wrappers against a hand-played kernel side: FIFO order across many
// wrap-arounds of the entry array and of the 32-bit indices themselves,
// all-or-nothing reservation, cancel, and no overrun.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "rings/ring.h"

using namespace xdpload::rings;

namespace {

// The memory of one ring as the kernel would map it.
template <typename Entry>
struct FakeRingMemory {
  uint32_t producer;
  uint32_t consumer;
  uint32_t flags = 0;
  std::vector<Entry> entries;
  FakeRingMemory(uint32_t size, uint32_t start) : producer(start), consumer(start), entries(size) {}
  RingMap map() {
    return RingMap{&producer, &consumer, &flags, entries.data(), uint32_t(entries.size())};
  }
};

constexpr uint32_t kNearWrap = 0xFFFFFF00u;

}  // namespace

TEST(ProdRing, FifoAcrossWrapAroundWithFakeKernelConsumer) {
  for (uint32_t start : {0u, kNearWrap}) {
    FakeRingMemory<uint64_t> mem(64, start);
    FillRing ring(mem.map());
    std::mt19937 rng(start);
    uint64_t next_in = 0, next_out = 0;
    while (next_out < 64 * 1000) {
      uint32_t want = 1 + rng() % 20;
      uint32_t idx;
      if (ring.reserve(want, &idx)) {
        for (uint32_t i = 0; i < want; ++i) ring.at(idx + i) = next_in++;
        ring.submit();
      }
      // The kernel consumes some.
      uint32_t take = rng() % 24;
      while (take-- && mem.consumer != mem.producer) {
        ASSERT_EQ(mem.entries[mem.consumer & 63], next_out) << "start " << start;
        ++next_out;
        ++mem.consumer;
      }
      ASSERT_LE(mem.producer - mem.consumer, 64u) << "producer overran the consumer";
    }
    if (start == kNearWrap) {
      EXPECT_LT(mem.producer, start) << "indices did not wrap";
    }
  }
}

TEST(ProdRing, ReserveIsAllOrNothingAndCancelGivesBack) {
  FakeRingMemory<xdp_desc> mem(8, kNearWrap);
  TxRing ring(mem.map());
  uint32_t idx;
  EXPECT_EQ(ring.reserve(9, &idx), 0u);
  EXPECT_EQ(ring.reserve(6, &idx), 6u);
  EXPECT_EQ(ring.reserve(3, &idx), 0u) << "only 2 slots are left";
  ring.cancel(2);
  EXPECT_EQ(ring.reserve(4, &idx), 4u);
  ring.submit();
  EXPECT_EQ(mem.producer - kNearWrap, 8u);
  EXPECT_EQ(ring.outstanding(), 8u);
  mem.consumer += 3;
  EXPECT_EQ(ring.outstanding(), 5u);
  EXPECT_EQ(ring.reserve(3, &idx), 3u) << "freed slots are seen after the consumer moved";
}

TEST(ConsRing, FifoAcrossWrapAroundWithFakeKernelProducer) {
  for (uint32_t start : {0u, kNearWrap}) {
    FakeRingMemory<xdp_desc> mem(32, start);
    RxRing ring(mem.map());
    std::mt19937 rng(start + 1);
    uint64_t next_in = 0, next_out = 0;
    while (next_out < 32 * 1000) {
      // The kernel produces some, never more than the ring holds.
      uint32_t put = rng() % 12;
      while (put-- && mem.producer - mem.consumer < 32) {
        mem.entries[mem.producer & 31] = xdp_desc{next_in, uint32_t(next_in), 0};
        ++next_in;
        ++mem.producer;
      }
      uint32_t idx;
      uint32_t got = ring.peek(1 + rng() % 16, &idx);
      for (uint32_t i = 0; i < got; ++i) {
        ASSERT_EQ(ring.at(idx + i).addr, next_out);
        ++next_out;
      }
      if (got) ring.release(got);
      ASSERT_EQ(mem.consumer, uint32_t(start + next_out));
    }
  }
}

TEST(ConsRing, NeedsWakeupFollowsTheFlag) {
  FakeRingMemory<uint64_t> mem(4, 0);
  CompletionRing ring(mem.map());
  EXPECT_FALSE(ring.needs_wakeup());
  mem.flags = XDP_RING_NEED_WAKEUP;
  EXPECT_TRUE(ring.needs_wakeup());
}
