// XDPLOAD_QUEUES syntax: "all" or numbers and ranges; anything else refused.
#include "rings/queue_list.h"

#include <gtest/gtest.h>

using xdpload::rings::format_queue_list;
using xdpload::rings::parse_queue_list;

namespace {

std::vector<uint32_t> parsed(const char* text) {
  std::vector<uint32_t> v;
  EXPECT_TRUE(parse_queue_list(text, &v)) << text;
  return v;
}

TEST(QueueList, AllIsEmpty) { EXPECT_TRUE(parsed("all").empty()); }

TEST(QueueList, NumbersAndRangesSortedWithoutDuplicates) {
  EXPECT_EQ(parsed("0"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(parsed("0,2-3"), (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_EQ(parsed("3,1,2-3,1"), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(parsed("63"), (std::vector<uint32_t>{63}));
  EXPECT_EQ(parsed("5-5"), (std::vector<uint32_t>{5}));
}

TEST(QueueList, RefusesMalformed) {
  std::vector<uint32_t> v;
  for (const char* bad : {"", ",", "0,", ",0", "1-", "-1", "3-1", "a", "1-x", "0 ,1", " 0", "64",
                          "0-64", "1000", "00001", "ALL", "all,0", "1,,2", "+1", "0x1"})
    EXPECT_FALSE(parse_queue_list(bad, &v)) << "'" << bad << "'";
}

TEST(QueueList, FormatsRuns) {
  uint32_t a[] = {0, 1, 2, 3};
  EXPECT_EQ(format_queue_list(a, 4), "0-3");
  uint32_t b[] = {0, 2, 3, 7};
  EXPECT_EQ(format_queue_list(b, 4), "0,2-3,7");
  EXPECT_EQ(format_queue_list(b, 1), "0");
  EXPECT_EQ(format_queue_list(b, 0), "");
}

}  // namespace
