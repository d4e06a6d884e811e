// TCP demultiplexing through the PCB hash (stack/lwip/patches/0015): with
// hundreds of connections between two stacks over the fake link, every
// segment reaches its own connection; the hash holds exactly the active and
// TIME-WAIT PCBs, each found under its own state, as they open, close, wait
// and expire (tcp_slowtmr unlinks expired TIME-WAIT and FIN-WAIT-2 PCBs
// itself); and the salted hash spreads sequential ports over the buckets.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "stack/stack.h"
#include "tests/unit/fake_stack_pair.h"

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

using namespace xdpload;
using namespace xdpload::stack;

namespace {

constexpr int kConnections = 300;
constexpr uint16_t kPort = 9100;

// B's side of one connection: the bytes it got, keyed by A's port.
struct Received {
  std::map<uint16_t, std::vector<uint8_t>> by_port;
  std::vector<struct tcp_pcb*> pcbs;
};

err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t) {
  auto* r = static_cast<Received*>(arg);
  if (!p) return ERR_OK;  // (closed by the test itself)
  std::vector<uint8_t>& v = r->by_port[pcb->remote_port];
  for (struct pbuf* q = p; q; q = q->next) {
    auto* d = static_cast<const uint8_t*>(q->payload);
    v.insert(v.end(), d, d + q->len);
  }
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  return ERR_OK;
}

err_t on_accept(void* arg, struct tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || !pcb) return ERR_VAL;
  auto* r = static_cast<Received*>(arg);
  r->pcbs.push_back(pcb);
  tcp_arg(pcb, r);
  tcp_recv(pcb, on_recv);
  return ERR_OK;
}

// The hash agrees with the lists: every PCB on them is found under its
// state, nothing else is in the buckets. The longest chain, or -1.
int check_hash_matches_lists() {
  std::set<struct tcp_pcb*> listed;
  for (struct tcp_pcb* p = tcp_active_pcbs; p; p = p->next) {
    listed.insert(p);
    if (tcp_pcb_hash_find(&p->local_ip, p->local_port, &p->remote_ip, p->remote_port, 0) != p)
      return -1;
  }
  for (struct tcp_pcb* p = tcp_tw_pcbs; p; p = p->next) {
    listed.insert(p);
    if (tcp_pcb_hash_find(&p->local_ip, p->local_port, &p->remote_ip, p->remote_port, 1) != p ||
        tcp_pcb_hash_find(&p->local_ip, p->local_port, &p->remote_ip, p->remote_port, 0))
      return -1;
  }
  size_t hashed = 0;
  int longest = 0;
  for (struct tcp_pcb* b : tcp_pcb_hash) {
    int chain = 0;
    for (struct tcp_pcb* p = b; p; p = p->hash_next, ++chain, ++hashed)
      if (!listed.count(p)) return -1;
    longest = std::max(longest, chain);
  }
  return hashed == listed.size() ? longest : -1;
}

TEST(TcpPcbHash, HundredsOfConnectionsEachGetTheirOwnBytes) {
  xdpload::testing::FakeStackPair pair;
  Received got;
  std::vector<struct tcp_pcb*> clients;
  ErrorText why;
  CoreGuard g;
  ASSERT_EQ(pair.open(&why, 16384), 0) << why.c_str();
  struct tcp_pcb* listener = tcp_new();
  ip4_addr_t b{pair.ip_b}, a{pair.ip_a};
  ASSERT_EQ(tcp_bind(listener, &b, kPort), ERR_OK);
  listener = tcp_listen_with_backlog(listener, 255);
  tcp_arg(listener, &got);
  tcp_accept(listener, on_accept);
  int connected = 0;
  for (int i = 0; i < kConnections; ++i) {
    struct tcp_pcb* c = tcp_new();
    ASSERT_EQ(tcp_bind(c, &a, 0), ERR_OK);
    tcp_arg(c, &connected);
    tcp_nagle_disable(c);  // (each message goes at once: no ACK timer runs here)
    ASSERT_EQ(tcp_connect(c, &b, kPort,
                          [](void* arg, struct tcp_pcb*, err_t) -> err_t {
                            ++*static_cast<int*>(arg);
                            return ERR_OK;
                          }),
              ERR_OK);
    clients.push_back(c);
    if (i % 32 == 31)
      for (int k = 0; k < 20; ++k) pair.poll();
  }
  for (int k = 0; k < 200 && connected < kConnections; ++k) pair.poll();
  ASSERT_EQ(connected, kConnections);
  ASSERT_EQ(got.pcbs.size(), size_t(kConnections));
  const int longest = check_hash_matches_lists();
  EXPECT_GE(longest, 1);
  // 600 PCBs in 4096 buckets: a chain of 6 would already be unlikely.
  EXPECT_LE(longest, 6) << "ports not spread over the buckets";

  // Each connection sends its own bytes, the connections in a shuffled
  // order, three rounds: a segment delivered to another connection's PCB
  // shows as wrong or missing bytes.
  std::mt19937 rng(7);
  for (int round = 0; round < 3; ++round) {
    std::shuffle(clients.begin(), clients.end(), rng);
    for (struct tcp_pcb* c : clients) {
      uint8_t msg[64];
      for (size_t i = 0; i < sizeof msg; ++i) msg[i] = uint8_t(c->local_port * 31 + round * 7 + i);
      ASSERT_EQ(tcp_write(c, msg, sizeof msg, TCP_WRITE_FLAG_COPY), ERR_OK);
      tcp_output(c);
    }
    for (int k = 0; k < 50; ++k) pair.poll();
  }
  for (struct tcp_pcb* c : clients) {
    const std::vector<uint8_t>& v = got.by_port[c->local_port];
    ASSERT_EQ(v.size(), 3 * 64u) << "port " << c->local_port;
    for (int round = 0; round < 3; ++round)
      for (size_t i = 0; i < 64; ++i)
        ASSERT_EQ(v[round * 64 + i], uint8_t(c->local_port * 31 + round * 7 + i))
            << "port " << c->local_port << " round " << round;
  }

  // Half the connections close, A first. B closes 100 of its ends: A's
  // wait in TIME-WAIT, found there and not as active; the other 50 stay in
  // FIN-WAIT-2 at A (active), with B's in CLOSE-WAIT.
  std::set<uint16_t> a_closed;
  for (int i = 0; i < kConnections / 2; ++i) {
    a_closed.insert(clients[i]->local_port);
    ASSERT_EQ(tcp_close(clients[i]), ERR_OK);
    clients[i] = nullptr;
  }
  for (int k = 0; k < 50; ++k) pair.poll();
  int b_closed = 0;
  for (struct tcp_pcb*& p : got.pcbs)
    if (p && p->state == CLOSE_WAIT && a_closed.count(p->remote_port) && b_closed < 100) {
      tcp_close(p);
      p = nullptr;
      ++b_closed;
    }
  for (int k = 0; k < 50; ++k) pair.poll();
  uint32_t waiting = 0, fin_wait_2 = 0;
  for (struct tcp_pcb* p = tcp_tw_pcbs; p; p = p->next) ++waiting;
  for (struct tcp_pcb* p = tcp_active_pcbs; p; p = p->next) fin_wait_2 += p->state == FIN_WAIT_2;
  EXPECT_EQ(waiting, 100u);
  EXPECT_EQ(fin_wait_2, 50u);
  EXPECT_GE(check_hash_matches_lists(), 1);

  // TIME-WAIT runs out (2 MSL of the slow timer's ticks), and FIN-WAIT-2 of
  // a closed connection (TCP_FIN_WAIT_TIMEOUT): tcp_slowtmr unlinks both
  // kinds itself; the hash must let go of them too.
  static_assert(TCP_FIN_WAIT_TIMEOUT < 2 * TCP_MSL, "the loop below covers both");
  for (uint32_t t = 0; t <= 2 * TCP_MSL / TCP_SLOW_INTERVAL + 2; ++t) tcp_slowtmr();
  EXPECT_EQ(tcp_tw_pcbs, nullptr);
  fin_wait_2 = 0;
  for (struct tcp_pcb* p = tcp_active_pcbs; p; p = p->next) fin_wait_2 += p->state == FIN_WAIT_2;
  EXPECT_EQ(fin_wait_2, 0u);
  EXPECT_GE(check_hash_matches_lists(), 1);

  // The other half still works.
  for (struct tcp_pcb* c : clients) {
    if (!c) continue;
    uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ASSERT_EQ(tcp_write(c, msg, sizeof msg, TCP_WRITE_FLAG_COPY), ERR_OK);
    tcp_output(c);
  }
  for (int k = 0; k < 50; ++k) pair.poll();
  for (struct tcp_pcb* c : clients) {
    if (!c) continue;
    EXPECT_EQ(got.by_port[c->local_port].size(), 3 * 64u + 8) << "port " << c->local_port;
  }

  for (struct tcp_pcb* c : clients)
    if (c) tcp_abort(c);
  while (tcp_active_pcbs) tcp_abort(tcp_active_pcbs);
  while (tcp_tw_pcbs) tcp_abort(tcp_tw_pcbs);
  EXPECT_EQ(check_hash_matches_lists(), 0) << "PCBs left in the hash";
  tcp_close(listener);
  pair.a.reset();
  pair.b.reset();
}

}  // namespace
