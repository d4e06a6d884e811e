// The broker's shared frame queues (rings/broker_protocol.h): order,
// capacity, and an impossible producer index seen for what it is.
#include "rings/broker_protocol.h"

#include <gtest/gtest.h>

#include <memory>

namespace xdpload::rings::broker {
namespace {

TEST(BrokerFrameQueue, FifoUpToItsSize) {
  auto q = std::make_unique<FrameQueue>();
  *q = FrameQueue{};
  EXPECT_EQ(q->waiting(), 0u);
  EXPECT_EQ(q->room(), kFrameQueueSize);
  for (uint32_t i = 0; i < kFrameQueueSize; ++i) ASSERT_TRUE(q->push(uint64_t(i) << 12));
  EXPECT_FALSE(q->push(1));  // full
  EXPECT_EQ(q->waiting(), kFrameQueueSize);
  EXPECT_EQ(q->at(0), 0u);
  EXPECT_EQ(q->at(5), uint64_t(5) << 12);
  q->consume(10);
  EXPECT_EQ(q->room(), 10u);
  EXPECT_EQ(q->at(0), uint64_t(10) << 12);
  // Wraps around.
  for (uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(q->push(7));
  q->consume(kFrameQueueSize - 10);
  EXPECT_EQ(q->waiting(), 10u);
  EXPECT_EQ(q->at(9), 7u);
}

TEST(BrokerFrameQueue, AHostileProducerIndexIsRefused) {
  auto q = std::make_unique<FrameQueue>();
  *q = FrameQueue{};
  q->producer = kFrameQueueSize + 1;  // more than could ever be waiting
  EXPECT_EQ(q->waiting(), UINT32_MAX);
  q->producer = 0;
  q->consumer = 5;  // behind the consumer: wraps to a huge count
  EXPECT_EQ(q->waiting(), UINT32_MAX);
}

TEST(BrokerProtocol, AddressIsAbstractAndPerInterface) {
  sockaddr_un a, b;
  socklen_t la = broker_address("eth1", &a);
  socklen_t lb = broker_address("eth2", &b);
  EXPECT_EQ(a.sun_path[0], 0);  // abstract: one per network namespace
  EXPECT_NE(std::string(a.sun_path + 1, la - 1 - offsetof(sockaddr_un, sun_path)),
            std::string(b.sun_path + 1, lb - 1 - offsetof(sockaddr_un, sun_path)));
}

TEST(BrokerProtocol, HeaderChecks) {
  Header h;
  h.op = uint16_t(Op::Claim);
  EXPECT_TRUE(valid_header(h, Op::Claim));
  EXPECT_FALSE(valid_header(h, Op::Hello));
  h.magic ^= 1;
  EXPECT_FALSE(valid_header(h, Op::Claim));
  h.magic ^= 1;
  h.version = kVersion + 1;
  EXPECT_FALSE(valid_header(h, Op::Claim));
}

}  // namespace
}  // namespace xdpload::rings::broker
