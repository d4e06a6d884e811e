// InlineVector (shim/wait/inline_vector.h): the elements stay inside it up
// to N, move to the heap past N, in order, and it is reusable after clear().
#include "shim/wait/inline_vector.h"

#include <gtest/gtest.h>

#include <cstdint>

using xdpload::shim::InlineVector;

namespace {

bool inside(const InlineVector<int, 4>& v) {
  const auto* self = reinterpret_cast<const uint8_t*>(&v);
  const auto* d = reinterpret_cast<const uint8_t*>(v.data());
  return d >= self && d < self + sizeof v;
}

TEST(InlineVector, KeepsUpToNInside) {
  InlineVector<int, 4> v;
  EXPECT_TRUE(v.empty());
  for (int i = 0; i < 4; ++i) v.push_back(i * 10);
  EXPECT_EQ(v.size(), 4u);
  EXPECT_TRUE(inside(v));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], i * 10);
}

TEST(InlineVector, SpillsInOrderPastN) {
  InlineVector<int, 4> v;
  for (int i = 0; i < 100; ++i) v.push_back(i);
  EXPECT_EQ(v.size(), 100u);
  EXPECT_FALSE(inside(v));
  int expect = 0;
  for (int x : v) EXPECT_EQ(x, expect++);
  EXPECT_EQ(expect, 100);
}

TEST(InlineVector, ReusableAfterClear) {
  InlineVector<int, 4> v;
  for (int round = 0; round < 3; ++round) {
    const int n = round == 1 ? 9 : 3;  // inside, spilled, inside again
    v.clear();
    for (int i = 0; i < n; ++i) v.push_back(round * 100 + i);
    ASSERT_EQ(v.size(), size_t(n));
    EXPECT_EQ(inside(v), n <= 4);
    for (int i = 0; i < n; ++i) EXPECT_EQ(v[i], round * 100 + i);
  }
}

}  // namespace
