// FramePool: never hands out a frame twice, refuses double and foreign frees.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "rings/frame_pool.h"

using xdpload::rings::FramePool;

TEST(FramePool, HandsOutEveryFrameExactlyOnce) {
  FramePool pool;
  pool.init(1024, 12);
  std::set<uint64_t> seen;
  uint64_t addr;
  while (pool.alloc(&addr)) {
    EXPECT_EQ(addr % 4096, 0u);
    EXPECT_LT(addr, 1024u * 4096);
    EXPECT_TRUE(seen.insert(addr).second) << "frame " << addr << " handed out twice";
  }
  EXPECT_EQ(seen.size(), 1024u);
  EXPECT_TRUE(pool.empty());
}

TEST(FramePool, RandomChurnNeverDuplicates) {
  FramePool pool;
  pool.init(256, 11);
  std::set<uint64_t> out;
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    if (rng() % 2 && !out.empty()) {
      auto it = out.begin();
      std::advance(it, rng() % out.size());
      // Any address inside the frame gives it back.
      EXPECT_TRUE(pool.free(*it + rng() % 2048));
      out.erase(it);
    } else {
      uint64_t addr;
      if (pool.alloc(&addr)) {
        EXPECT_TRUE(out.insert(addr).second);
      } else {
        EXPECT_EQ(out.size(), 256u);
      }
    }
    ASSERT_EQ(pool.size() + out.size(), 256u);
  }
  EXPECT_EQ(pool.bad_frees(), 0u);
}

TEST(FramePool, RefusesDoubleFree) {
  FramePool pool;
  pool.init(4, 12);
  uint64_t a;
  ASSERT_TRUE(pool.alloc(&a));
  EXPECT_TRUE(pool.free(a));
  EXPECT_FALSE(pool.free(a));
  EXPECT_EQ(pool.bad_frees(), 1u);
  EXPECT_EQ(pool.size(), 4u);
  // The pool is intact: four distinct frames, then empty.
  std::set<uint64_t> seen;
  uint64_t x;
  while (pool.alloc(&x)) seen.insert(x);
  EXPECT_EQ(seen.size(), 4u);
}

TEST(FramePool, RefusesFramesOutsideTheUmem) {
  FramePool pool;
  pool.init(4, 12);
  EXPECT_FALSE(pool.free(4 * 4096));
  EXPECT_FALSE(pool.free(~0ull));
  EXPECT_EQ(pool.bad_frees(), 2u);
  EXPECT_EQ(pool.size(), 4u);
}
