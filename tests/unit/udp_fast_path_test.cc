// The UDP fast path (stack/link_netif_udp.cc) writes the frame lwIP would
// write: for each size, TTL, TOS and checksum setting, one datagram through
// udp_sendto and one through LinkNetif::send_udp are caught on the wire and
// compared byte for byte, the IP identification aside (consecutive values
// of lwIP's one counter, and the header checksum with it). Both are then
// delivered to a receiving lwIP, checksums verified. What must stay with
// lwIP (broadcast, multicast, an unresolved neighbour, a transmit tap)
// comes back false with nothing sent.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "stack/checksum.h"
#include "stack/lwip_port.h"
#include "stack/stack.h"
#include "tests/unit/fake_stack_pair.h"

extern "C" {
#include "lwip/udp.h"
}

using namespace xdpload;
using namespace xdpload::stack;

namespace {

struct Pair : xdpload::testing::FakeStackPair {
  std::vector<std::vector<uint8_t>> wire;  // frames A sent, in order
  Pair() {
    ErrorText why;
    CoreGuard g;
    EXPECT_EQ(open(&why), 0) << why.c_str();
    link_a->wire_filter = [this](uint8_t* f, uint32_t len) {
      wire.emplace_back(f, f + len);
      return false;  // delivered
    };
  }
};

struct Count {
  uint32_t datagrams = 0;
  uint32_t bytes = 0;
};

uint16_t ip_id(const std::vector<uint8_t>& f) { return uint16_t(f[18] << 8 | f[19]); }

}  // namespace

TEST(UdpFastPath, SameFrameAsLwipAndDelivered) {
  Pair pair;
  CoreGuard g;
  Count got;
  udp_pcb* rx = udp_new();
  ip4_addr_t b{pair.ip_b};
  ASSERT_EQ(udp_bind(rx, &b, 7001), ERR_OK);
  udp_recv(
      rx,
      [](void* arg, udp_pcb*, pbuf* p, const ip_addr_t*, u16_t port) {
        auto* c = static_cast<Count*>(arg);
        if (port == 7002) {
          ++c->datagrams;
          c->bytes += p->tot_len;
        }
        pbuf_free(p);
      },
      &got);
  udp_pcb* tx = udp_new();
  ip4_addr_t a{pair.ip_a};
  ASSERT_EQ(udp_bind(tx, &a, 7002), ERR_OK);

  uint32_t sent = 0, sent_bytes = 0;
  const uint64_t direct_before = pair.a->driver().counters().tx_udp_direct;
  for (uint16_t len : {0, 1, 2, 63, 64, 65, 1000, 1471, 1472}) {
    // Variants: plain; TTL and TOS; no checksum; DF (the socket's
    // IP_PMTUDISC_DO: lwIP's packet gets it in LinkNetif::output).
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<uint8_t> payload(len);
      for (uint16_t i = 0; i < len; ++i) payload[i] = uint8_t(i * 7 + len + variant);
      tx->ttl = variant == 1 ? 3 : 64;
      tx->tos = variant == 1 ? 0xb8 : 0;
      if (variant == 2) udp_setflags(tx, udp_flags(tx) | UDP_FLAGS_NOCHKSUM);
      else udp_setflags(tx, udp_flags(tx) & ~UDP_FLAGS_NOCHKSUM);

      pair.wire.clear();
      pbuf* p = pbuf_alloc(PBUF_TRANSPORT, len, PBUF_RAM);
      ASSERT_NE(p, nullptr);
      if (len) memcpy(p->payload, payload.data(), len);
      pair.a->driver().set_dont_fragment(variant == 3);
      ASSERT_EQ(udp_sendto(tx, p, &b, 7001), ERR_OK);
      pair.a->driver().set_dont_fragment(false);
      pbuf_free(p);

      LinkNetif::UdpHeaderFields h;
      h.src_ip = pair.ip_a;
      h.dst_ip = pair.ip_b;
      h.src_port = 7002;
      h.dst_port = 7001;
      h.ttl = tx->ttl;
      h.tos = tx->tos;
      h.checksum = variant != 2;
      h.dont_fragment = variant == 3;
      // In two pieces, as a sendmsg with two iovecs.
      iovec iov[2] = {{payload.data(), size_t(len / 3)},
                      {payload.data() + len / 3, size_t(len - len / 3)}};
      ASSERT_TRUE(pair.a->driver().send_udp(h, iov, 2, len)) << "len " << len;
      pair.a->flush();
      sent += 2;
      sent_bytes += 2 * len;

      ASSERT_EQ(pair.wire.size(), 2u) << "len " << len;
      std::vector<uint8_t> lwip = pair.wire[0], direct = pair.wire[1];
      ASSERT_EQ(lwip.size(), direct.size()) << "len " << len;
      EXPECT_EQ(uint16_t(ip_id(lwip) + 1), ip_id(direct)) << "one ID counter for both";
      // The headers' checksums are valid, each for its own ID.
      EXPECT_EQ(csum_fold(csum_partial(direct.data() + 14, 20)), 0xffff);
      EXPECT_EQ(csum_fold(csum_partial(lwip.data() + 14, 20)), 0xffff);
      EXPECT_EQ(direct[20], variant == 3 ? 0x40 : 0) << "DF only when asked";
      if (variant != 2) {
        EXPECT_EQ(check_l4(pair.ip_a, pair.ip_b, IPPROTO_UDP, direct.data() + 34, 8 + len, 6),
                  L4Checksum::kGood)
            << "len " << len;
      } else {
        EXPECT_EQ(direct[40], 0);
        EXPECT_EQ(direct[41], 0);
      }
      // Otherwise the same bytes: the ID and the IP checksum set aside.
      for (size_t i : {18, 19, 24, 25}) lwip[i] = direct[i] = 0;
      EXPECT_EQ(lwip, direct) << "len " << len << " variant " << variant;
      pair.poll();
    }
  }
  for (int i = 0; i < 10 && got.datagrams < sent; ++i) pair.poll();
  EXPECT_EQ(got.datagrams, sent);
  EXPECT_EQ(got.bytes, sent_bytes);
  EXPECT_EQ(pair.a->driver().counters().tx_udp_direct - direct_before, sent / 2);

  // What stays with lwIP: nothing sent, false.
  pair.wire.clear();
  LinkNetif::UdpHeaderFields h;
  h.src_ip = pair.ip_a;
  h.src_port = 7002;
  h.dst_port = 7001;
  h.ttl = 64;
  h.tos = 0;
  h.checksum = true;
  uint8_t byte = 1;
  iovec one{&byte, 1};
  for (const char* dst : {"255.255.255.255", "10.9.0.255", "239.1.2.3", "10.9.0.77"}) {
    h.dst_ip = inet_addr(dst);
    EXPECT_FALSE(pair.a->driver().send_udp(h, &one, 1, 1)) << dst;
  }
  h.dst_ip = pair.ip_b;
  std::vector<uint8_t> big(1473);
  iovec too_long{big.data(), big.size()};
  EXPECT_FALSE(pair.a->driver().send_udp(h, &too_long, 1, big.size())) << "beyond the MTU";
  pair.a->driver().set_tx_tap([](void*, const uint8_t*, uint32_t, const timespec&) {}, nullptr);
  EXPECT_FALSE(pair.a->driver().send_udp(h, &one, 1, 1)) << "a transmit tap";
  pair.a->driver().set_tx_tap(nullptr, nullptr);
  pair.a->flush();
  EXPECT_TRUE(pair.wire.empty());

  udp_remove(rx);
  udp_remove(tx);
}
