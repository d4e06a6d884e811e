// Two Stacks in one process joined by FakeLinks: 100 MB over TCP byte-exact,
// 10,000 UDP datagrams intact, and afterwards every lwIP pool, the heap and
// every frame back where they started.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <memory>

#include "stack/lwip_port.h"
#include "stack/stack.h"
#include "tests/unit/fake_link.h"
#include "tests/unit/fake_stack_pair.h"
#include "tests/unit/tcp_stream_sink.h"

#include <unistd.h>

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
}

using namespace xdpload;
using namespace xdpload::stack;
using xdpload::testing::FakeLink;
using xdpload::testing::sink_accept;
using xdpload::testing::stream_byte;
using xdpload::testing::TcpSink;

namespace {

struct Pair : xdpload::testing::FakeStackPair {
  Pair() {
    ErrorText why;
    CoreGuard g;
    EXPECT_EQ(open(&why), 0) << why.c_str();
  }
  // Ends TIME_WAIT now instead of in 60 s, then lets lwIP's TCP timer see
  // there is nothing left and stop: afterwards every allocation must be gone.
  void settle() {
    while (tcp_tw_pcbs) tcp_abort(tcp_tw_pcbs);
    for (int i = 0; i < 10; ++i) {
      poll();
      CoreLock::unlock();
      usleep(10000);
      CoreLock::lock();
    }
  }
};

// Every pool, the heap and the timers as before.
void expect_same_usage(const LwipUsage& before, const LwipUsage& after) {
  EXPECT_EQ(after.tcp_pcbs, before.tcp_pcbs);
  EXPECT_EQ(after.tcp_time_wait, before.tcp_time_wait);
  EXPECT_EQ(after.tcp_listen_pcbs, before.tcp_listen_pcbs);
  EXPECT_EQ(after.udp_pcbs, before.udp_pcbs);
  EXPECT_EQ(after.tcp_segments, before.tcp_segments);
  EXPECT_EQ(after.ref_pbufs, before.ref_pbufs);
  EXPECT_EQ(after.pool_pbufs, before.pool_pbufs);
  EXPECT_EQ(after.timeouts, before.timeouts);
  EXPECT_EQ(after.heap_bytes, before.heap_bytes);
}

}  // namespace

TEST(StackOverFakeLink, Tcp100MBByteExactAndNothingLeaks) {
  LwipUsage without_stacks, before;
  {
    CoreGuard g;
    without_stacks = lwip_usage();
  }
  Pair pair;
  {
    // With both interfaces up (each has joined the all-hosts group).
    CoreGuard g;
    before = lwip_usage();
  }
  constexpr uint64_t kTotal = 100ull << 20;
  TcpSink sink;
  bool connected = false;
  struct tcp_pcb *listener, *client;
  {
    CoreGuard g;
    listener = tcp_new();
    ip4_addr_t any{pair.ip_b};
    ASSERT_EQ(tcp_bind(listener, &any, 7000), ERR_OK);
    listener = tcp_listen(listener);
    tcp_arg(listener, &sink);
    tcp_accept(listener, sink_accept);

    client = tcp_new();
    ip4_addr_t src{pair.ip_a}, dst{pair.ip_b};
    ASSERT_EQ(tcp_bind(client, &src, 0), ERR_OK);
    tcp_arg(client, &connected);
    ASSERT_EQ(tcp_connect(client, &dst, 7000,
                          [](void* arg, struct tcp_pcb*, err_t) -> err_t {
                            *static_cast<bool*>(arg) = true;
                            return ERR_OK;
                          }),
              ERR_OK);
  }
  uint64_t sent = 0;
  uint8_t chunk[16384];
  for (int rounds = 0; sink.received < kTotal && rounds < 10000000; ++rounds) {
    CoreGuard g;
    if (connected && sent < kTotal) {
      uint32_t room = tcp_sndbuf(client);
      while (room > 0 && sent < kTotal && tcp_sndqueuelen(client) < TCP_SND_QUEUELEN - 4) {
        uint32_t n = uint32_t(std::min<uint64_t>({sizeof chunk, room, kTotal - sent}));
        for (uint32_t i = 0; i < n; ++i) chunk[i] = stream_byte(sent + i);
        if (tcp_write(client, chunk, uint16_t(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
        sent += n;
        room -= n;
      }
      tcp_output(client);
    }
    pair.poll();
  }
  EXPECT_EQ(sink.received, kTotal);
  EXPECT_EQ(sink.mismatches, 0u);

  // Close both ends and let the FIN exchange finish.
  {
    CoreGuard g;
    ASSERT_EQ(tcp_close(client), ERR_OK);
  }
  for (int i = 0; i < 1000 && !sink.closed; ++i) {
    CoreGuard g;
    pair.poll();
  }
  EXPECT_TRUE(sink.closed);
  {
    CoreGuard g;
    for (int i = 0; i < 100; ++i) pair.poll();
    tcp_close(listener);
    // The side that closed first is in TIME_WAIT; nothing else may remain.
    LwipUsage after = lwip_usage();
    EXPECT_EQ(after.tcp_pcbs - after.tcp_time_wait, before.tcp_pcbs);
    EXPECT_EQ(after.tcp_time_wait, 1u);
    pair.settle();
    expect_same_usage(before, lwip_usage());
    EXPECT_EQ(pair.link_a->held_frames(), 0u);
    EXPECT_EQ(pair.link_b->held_frames(), 0u);
    EXPECT_EQ(pair.link_a->free_frames(), 4096u);
    EXPECT_EQ(pair.link_b->free_frames(), 4096u);
    pair.a.reset();
    pair.b.reset();
    expect_same_usage(without_stacks, lwip_usage());
  }
}

TEST(StackOverFakeLink, TenThousandUdpDatagramsIntactAndNothingLeaks) {
  LwipUsage without_stacks, before;
  {
    CoreGuard g;
    without_stacks = lwip_usage();
  }
  Pair pair;
  {
    // With both interfaces up (each has joined the all-hosts group).
    CoreGuard g;
    before = lwip_usage();
  }
  struct Received {
    uint32_t count = 0;
    uint32_t bad = 0;
    uint32_t next = 0;
  } got;
  struct udp_pcb *rx, *tx;
  {
    CoreGuard g;
    rx = udp_new();
    ip4_addr_t b{pair.ip_b};
    ASSERT_EQ(udp_bind(rx, &b, 7001), ERR_OK);
    udp_recv(
        rx,
        [](void* arg, struct udp_pcb*, struct pbuf* p, const ip_addr_t* from, u16_t port) {
          auto* g = static_cast<Received*>(arg);
          uint32_t seq = 0;
          bool ok = p->tot_len >= 4 && pbuf_copy_partial(p, &seq, 4, 0) == 4 && seq == g->next &&
                    port == 7002 && ip4_addr_get_u32(from) == inet_addr("10.9.0.1");
          for (uint16_t i = 4; ok && i < p->tot_len; ++i)
            ok = pbuf_get_at(p, i) == uint8_t(seq + i);
          ok = ok && p->tot_len == 4 + seq % 1400;
          g->bad += !ok;
          g->next = seq + 1;
          ++g->count;
          pbuf_free(p);
        },
        &got);
    tx = udp_new();
    ip4_addr_t a{pair.ip_a};
    ASSERT_EQ(udp_bind(tx, &a, 7002), ERR_OK);
  }
  // Odd datagrams are built in a transmit frame (the zero-copy path), even
  // ones in an ordinary pbuf.
  uint64_t in_frame = 0;
  for (uint32_t seq = 0; seq < 10000; ++seq) {
    CoreGuard g;
    uint16_t len = uint16_t(4 + seq % 1400);
    struct pbuf* p = nullptr;
    if (seq % 2) {
      p = pair.a->driver().alloc_tx_pbuf(len);
      in_frame += p != nullptr;
    }
    if (!p) p = pbuf_alloc(PBUF_TRANSPORT, len, PBUF_RAM);
    ASSERT_NE(p, nullptr);
    auto* d = static_cast<uint8_t*>(p->payload);
    memcpy(d, &seq, 4);
    for (uint16_t i = 4; i < len; ++i) d[i] = uint8_t(seq + i);
    ip4_addr_t b{pair.ip_b};
    EXPECT_EQ(udp_sendto(tx, p, &b, 7001), ERR_OK);
    pbuf_free(p);
    if (seq % 64 == 0) pair.poll();
  }
  {
    CoreGuard g;
    for (int i = 0; i < 1000 && got.count < 10000; ++i) pair.poll();
    EXPECT_EQ(got.count, 10000u);
    EXPECT_EQ(got.bad, 0u);
    EXPECT_GT(in_frame, 4000u);
    EXPECT_EQ(pair.a->driver().counters().tx_zero_copy, in_frame);
    udp_remove(rx);
    udp_remove(tx);
    pair.settle();
    expect_same_usage(before, lwip_usage());
    EXPECT_EQ(pair.link_a->held_frames(), 0u);
    EXPECT_EQ(pair.link_b->held_frames(), 0u);
    pair.a.reset();
    pair.b.reset();
    expect_same_usage(without_stacks, lwip_usage());
  }
}
