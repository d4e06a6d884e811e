// The stack's share of a round trip, without the kernel: two Stacks in one
// process joined by the FakeLink test double (a memcpy stands in for the
// wire, tests/unit/fake_link.h), lwIP and the netif driver doing everything
// they do over AF_XDP (Ethernet, IP and UDP headers, checksums checked and
// computed, datagrams built in transmit frames). bench/run.sh sets these
// figures beside the sockperf round trips and the raw AF_XDP floor: what is
// left is the shim (the socket calls) and the program.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>

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
  udp_pcb *pa = nullptr, *pb = nullptr;
  uint64_t a_got = 0, b_got = 0;
  bool echo = false;
  uint32_t size = 64;

  Pair() {
    ErrorText why;
    if (open(&why) != 0) {
      fprintf(stderr, "stack_path_bench: %s\n", why.c_str());
      abort();
    }
    pa = udp_new();
    pb = udp_new();
    ip4_addr_t ia{ip_a}, ib{ip_b};
    udp_bind(pa, &ia, 7002);
    udp_bind(pb, &ib, 7001);
    udp_recv(pa, on_a, this);
    udp_recv(pb, on_b, this);
  }
  ~Pair() {
    udp_remove(pa);
    udp_remove(pb);
  }

  // A datagram as the shim sends one: built in a transmit frame.
  static void send(Stack& s, udp_pcb* pcb, uint32_t to, uint16_t port, uint32_t size) {
    pbuf* p = s.driver().alloc_tx_pbuf(u16_t(size));
    if (!p) p = pbuf_alloc(PBUF_TRANSPORT, u16_t(size), PBUF_RAM);
    memset(p->payload, 'x', size);
    ip4_addr_t ip{to};
    udp_sendto(pcb, p, &ip, port);
    pbuf_free(p);
    s.flush();
  }
  static void on_a(void* arg, udp_pcb*, pbuf* p, const ip_addr_t*, u16_t) {
    static_cast<Pair*>(arg)->a_got++;
    pbuf_free(p);
  }
  static void on_b(void* arg, udp_pcb*, pbuf* p, const ip_addr_t*, u16_t) {
    auto* self = static_cast<Pair*>(arg);
    self->b_got++;
    pbuf_free(p);
    if (self->echo) send(*self->b, self->pb, self->ip_a, 7002, self->size);
  }
};

// A to B and back: two sends, two receptions, each through lwIP and the
// driver (the "wire" is FakeLink's memcpy).
void BM_UdpRoundTrip(benchmark::State& state) {
  CoreGuard g;
  Pair pair;
  pair.echo = true;
  pair.size = uint32_t(state.range(0));
  for (auto _ : state) {
    Pair::send(*pair.a, pair.pa, pair.ip_b, 7001, pair.size);
    pair.b->poll();
    pair.a->poll();
  }
  if (pair.a_got != uint64_t(state.iterations())) state.SkipWithError("datagrams lost");
}
BENCHMARK(BM_UdpRoundTrip)->Arg(64)->Arg(1400);

// A poll that finds nothing: what a spinning caller pays per look.
void BM_EmptyPoll(benchmark::State& state) {
  CoreGuard g;
  Pair pair;
  for (auto _ : state) pair.a->poll();
}
BENCHMARK(BM_EmptyPoll);

}  // namespace

BENCHMARK_MAIN();
