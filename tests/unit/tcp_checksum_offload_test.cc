// TCP checksums leave complete whether or not the link completes them:
// lwIP leaves the field to the netif driver (lwipopts.h, CHECKSUM_GEN_TCP 0),
// which either writes the pseudo-header sum and asks the link to finish it
// (AF_XDP transmit metadata; here FakeLink's offload, which finishes it on
// the "wire" as the kernel's skb_checksum_help does) or computes it itself.
// Each receiving driver checks every checksum and drops a wrong one, so a
// driver that got either case wrong stalls the transfer.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "stack/lwip_port.h"
#include "stack/stack.h"
#include "tests/unit/fake_stack_pair.h"
#include "tests/unit/tcp_stream_sink.h"

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

using namespace xdpload;
using namespace xdpload::stack;
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
};

// `total` bytes from a client on `from_ip` to a listener on `to_ip`, then a
// close; returns what the listener's sink saw.
TcpSink transfer(Pair& pair, uint32_t from_ip, uint32_t to_ip, uint16_t port, uint64_t total) {
  TcpSink sink;
  bool connected = false;
  struct tcp_pcb *listener, *client;
  {
    CoreGuard g;
    listener = tcp_new();
    ip4_addr_t any{to_ip};
    EXPECT_EQ(tcp_bind(listener, &any, port), ERR_OK);
    listener = tcp_listen(listener);
    tcp_arg(listener, &sink);
    tcp_accept(listener, sink_accept);
    client = tcp_new();
    ip4_addr_t src{from_ip}, dst{to_ip};
    EXPECT_EQ(tcp_bind(client, &src, 0), ERR_OK);
    tcp_arg(client, &connected);
    EXPECT_EQ(tcp_connect(client, &dst, port,
                          [](void* arg, struct tcp_pcb*, err_t) -> err_t {
                            *static_cast<bool*>(arg) = true;
                            return ERR_OK;
                          }),
              ERR_OK);
  }
  uint64_t sent = 0;
  uint8_t chunk[3000];  // odd-sized writes: segments of every length and parity
  for (int rounds = 0; sink.received < total && rounds < 200000; ++rounds) {
    CoreGuard g;
    if (connected && sent < total) {
      while (sent < total && tcp_sndbuf(client) > 0 &&
             tcp_sndqueuelen(client) < TCP_SND_QUEUELEN - 4) {
        uint32_t n = uint32_t(std::min<uint64_t>(
            {uint64_t(997 + (sent % 2003)), uint64_t(tcp_sndbuf(client)), total - sent}));
        for (uint32_t i = 0; i < n; ++i) chunk[i] = stream_byte(sent + i);
        if (tcp_write(client, chunk, uint16_t(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
        sent += n;
      }
      tcp_output(client);
    }
    pair.poll();
  }
  {
    CoreGuard g;
    EXPECT_EQ(tcp_close(client), ERR_OK);
  }
  for (int i = 0; i < 1000 && !sink.closed; ++i) {
    CoreGuard g;
    pair.poll();
  }
  CoreGuard g;
  for (int i = 0; i < 100; ++i) pair.poll();  // the last ACK of the close
  tcp_close(listener);
  while (tcp_tw_pcbs) tcp_abort(tcp_tw_pcbs);
  return sink;
}

}  // namespace

TEST(TcpChecksumOffload, SegmentsLeaveCompleteWithAndWithoutTheLinksHelp) {
  Pair pair;
  pair.link_a->offload_checksums = true;  // A: the link completes; B: the driver does
  constexpr uint64_t kTotal = 8ull << 20;

  TcpSink a_to_b = transfer(pair, pair.ip_a, pair.ip_b, 7100, kTotal);
  EXPECT_EQ(a_to_b.received, kTotal);
  EXPECT_EQ(a_to_b.mismatches, 0u);
  EXPECT_TRUE(a_to_b.closed);
  TcpSink b_to_a = transfer(pair, pair.ip_b, pair.ip_a, 7101, kTotal);
  EXPECT_EQ(b_to_a.received, kTotal);
  EXPECT_EQ(b_to_a.mismatches, 0u);
  EXPECT_TRUE(b_to_a.closed);

  CoreGuard g;
  // Every TCP segment A sent (data, ACKs, SYN, FIN) was completed by its
  // link, and none of B's asked for it.
  const NetifCounters& ca = pair.a->driver().counters();
  const NetifCounters& cb = pair.b->driver().counters();
  EXPECT_GT(pair.link_a->checksums_completed(), kTotal / 1460);
  EXPECT_EQ(pair.link_a->checksums_completed(), ca.tx_checksum_offload);
  EXPECT_EQ(pair.link_b->checksums_completed(), 0u);
  EXPECT_EQ(cb.tx_checksum_offload, 0u);
  EXPECT_EQ(pair.link_a->bad_offloads() + pair.link_b->bad_offloads(), 0u);
  // Nothing was dropped for its checksum, or passed as partial.
  EXPECT_EQ(ca.rx_bad_checksum + cb.rx_bad_checksum, 0u);
  EXPECT_EQ(ca.rx_partial_checksum + cb.rx_partial_checksum, 0u);
  pair.a.reset();
  pair.b.reset();
}
