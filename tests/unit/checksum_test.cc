// The fast checksum against a byte-by-byte RFC 1071 reference, and TCP/UDP
// verification: good, partial (CHECKSUM_PARTIAL) and corrupted segments.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <random>
#include <vector>

#include "stack/checksum.h"

using namespace xdpload::stack;

namespace {
// Straight from RFC 1071: big-endian 16-bit words, result in host order.
uint16_t reference_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}
}  // namespace

TEST(Checksum, MatchesRfc1071ReferenceForEveryLengthAndOffset) {
  std::mt19937 rng(1);
  std::vector<uint8_t> buf(2100);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; len < 2000; len += (len < 80 ? 1 : 37)) {
      uint16_t fast = ntohs(csum_fold(csum_partial(buf.data() + off, len)));
      ASSERT_EQ(fast, reference_sum(buf.data() + off, len)) << "off " << off << " len " << len;
    }
  }
}

TEST(Checksum, AllOnesAndCarries) {
  std::vector<uint8_t> ff(1501, 0xff);
  EXPECT_EQ(ntohs(csum_fold(csum_partial(ff.data(), ff.size()))), reference_sum(ff.data(), ff.size()));
}

TEST(Checksum, UdpGoodPartialBad) {
  uint32_t src = inet_addr("10.0.0.1"), dst = inet_addr("10.0.0.2");
  std::vector<uint8_t> udp(8 + 37);
  for (size_t i = 8; i < udp.size(); ++i) udp[i] = uint8_t(i * 7);
  udp[0] = 0x30; udp[1] = 0x39; udp[2] = 0x23; udp[3] = 0x28;
  uint16_t len = uint16_t(udp.size());
  udp[4] = uint8_t(len >> 8); udp[5] = uint8_t(len);
  // Partial, as a kernel leaves it for offload: folded pseudo sum, not inverted.
  uint16_t partial = csum_fold(csum_pseudo(src, dst, 17, len));
  memcpy(&udp[6], &partial, 2);
  EXPECT_EQ(check_l4(src, dst, 17, udp.data(), len, 6), L4Checksum::kPartial);
  // Complete it: sum over everything with the partial in place, inverted.
  uint16_t full = uint16_t(~csum_fold(csum_partial(udp.data(), len)));
  memcpy(&udp[6], &full, 2);
  EXPECT_EQ(check_l4(src, dst, 17, udp.data(), len, 6), L4Checksum::kGood);
  udp[20] ^= 0x01;
  EXPECT_EQ(check_l4(src, dst, 17, udp.data(), len, 6), L4Checksum::kBad);
  udp[20] ^= 0x01;
  // Wrong address in the pseudo-header: also bad.
  EXPECT_EQ(check_l4(src, inet_addr("10.0.0.3"), 17, udp.data(), len, 6), L4Checksum::kBad);
  // UDP checksum 0: none.
  udp[6] = udp[7] = 0;
  EXPECT_EQ(check_l4(src, dst, 17, udp.data(), len, 6), L4Checksum::kGood);
}

TEST(Checksum, SumAcrossBlocksSplitAtAnyOffset) {
  // A packet in several frames is summed block by block; blocks that start
  // at an odd offset must contribute byte-swapped.
  std::mt19937 rng(3);
  std::vector<uint8_t> buf(9000);
  for (auto& b : buf) b = uint8_t(rng());
  uint16_t whole = csum_fold(csum_partial(buf.data(), buf.size()));
  for (int trial = 0; trial < 200; ++trial) {
    uint64_t sum = 0;
    size_t at = 0;
    while (at < buf.size()) {
      size_t len = std::min<size_t>(buf.size() - at, 1 + rng() % 3000);
      sum = csum_block_add(sum, csum_partial(buf.data() + at, len), at);
      at += len;
    }
    ASSERT_EQ(csum_fold(sum), whole) << "trial " << trial;
  }
}
