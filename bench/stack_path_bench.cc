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
#include "lwip/tcp.h"
#include "lwip/udp.h"
}

using namespace xdpload;
using namespace xdpload::stack;

namespace {

void open_or_abort(xdpload::testing::FakeStackPair& pair) {
  ErrorText why;
  if (pair.open(&why) != 0) {
    fprintf(stderr, "stack_path_bench: %s\n", why.c_str());
    abort();
  }
}

struct Pair : xdpload::testing::FakeStackPair {
  udp_pcb *pa = nullptr, *pb = nullptr;
  uint64_t a_got = 0, b_got = 0;
  bool echo = false;
  uint32_t size = 64;

  Pair() {
    open_or_abort(*this);
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

// TCP between the two stacks through lwIP's raw API, as the shim drives it:
// A writes a message, B's receive callback echoes it, A reads the echo. The
// echo carries B's ACK; A's ACK rides on its next message.
struct TcpPair : xdpload::testing::FakeStackPair {
  tcp_pcb *listener = nullptr, *pa = nullptr, *pb = nullptr;
  uint64_t a_bytes = 0;
  uint32_t size = 64;
  char buf[2048];

  TcpPair() {
    open_or_abort(*this);
    memset(buf, 'x', sizeof buf);
    ip4_addr_t ia{ip_a}, ib{ip_b};
    tcp_pcb* l = tcp_new();
    tcp_bind(l, &ib, 7003);
    listener = tcp_listen(l);
    tcp_arg(listener, this);
    tcp_accept(listener, [](void* arg, tcp_pcb* n, err_t) -> err_t {
      auto* self = static_cast<TcpPair*>(arg);
      self->pb = n;
      tcp_arg(n, self);
      tcp_nagle_disable(n);
      tcp_recv(n, on_b);
      return ERR_OK;
    });
    pa = tcp_new();
    tcp_arg(pa, this);
    tcp_recv(pa, on_a);
    tcp_nagle_disable(pa);
    tcp_bind(pa, &ia, 0);
    tcp_connect(pa, &ib, 7003, nullptr);
    for (int i = 0; i < 100 && !pb; ++i) poll();
    if (!pb || pa->state != ESTABLISHED) {
      fprintf(stderr, "stack_path_bench: TCP connection not established\n");
      abort();
    }
  }
  // The connections go before the stacks (the netif's removal would abort
  // them through a link already gone).
  ~TcpPair() {
    tcp_abort(pa);
    tcp_abort(pb);
    tcp_close(listener);
  }
  static err_t on_a(void* arg, tcp_pcb* pcb, pbuf* p, err_t) {
    auto* self = static_cast<TcpPair*>(arg);
    if (!p) return ERR_OK;
    self->a_bytes += p->tot_len;
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
  }
  static err_t on_b(void* arg, tcp_pcb* pcb, pbuf* p, err_t) {
    auto* self = static_cast<TcpPair*>(arg);
    if (!p) return ERR_OK;
    u16_t n = p->tot_len;
    tcp_recved(pcb, n);
    pbuf_free(p);
    tcp_write(pcb, self->buf, n, TCP_WRITE_FLAG_COPY);
    tcp_output(pcb);
    self->b->flush();
    return ERR_OK;
  }
};

// A to B and back over TCP: a write, B's echo, A's read of it.
void BM_TcpRoundTrip(benchmark::State& state) {
  CoreGuard g;
  TcpPair pair;
  pair.size = uint32_t(state.range(0));
  for (auto _ : state) {
    tcp_write(pair.pa, pair.buf, u16_t(pair.size), TCP_WRITE_FLAG_COPY);
    tcp_output(pair.pa);
    pair.a->flush();
    pair.b->poll();
    pair.a->poll();
  }
  if (pair.a_bytes != uint64_t(state.iterations()) * pair.size) state.SkipWithError("bytes lost");
}
BENCHMARK(BM_TcpRoundTrip)->Arg(64)->Arg(1400);

// A poll that finds nothing: what a spinning caller pays per look.
void BM_EmptyPoll(benchmark::State& state) {
  CoreGuard g;
  Pair pair;
  for (auto _ : state) pair.a->poll();
}
BENCHMARK(BM_EmptyPoll);

}  // namespace

BENCHMARK_MAIN();
