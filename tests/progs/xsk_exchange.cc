// xsk_exchange: two of these, one per namespace, exchange numbered UDP frames
// over their XskPorts and check that every frame arrives, once, in order and
// intact.
//
// Each data frame carries a sequence number, a body derived from it and a
// checksum of the body. Every frame also carries the count of in-order frames
// received from the peer (a cumulative ack); a sender keeps at most `window`
// frames beyond that ack, fewer than the receiver's rx ring holds, so frames
// can only be lost to a fault, never to overrun. A gap in sequence numbers is
// a loss, a bad checksum a corruption; both fail the run.
//
//   xsk_exchange --iface X --local-ip A --peer-ip B --peer-mac M --port P
//                [--count N] [--mode auto|driver|skb] [--window W]
//   xsk_exchange --iface X --port P --hold   # steer P and drop, until killed
//
// Exit 0 when all N frames went each way intact, 1 otherwise.
#include <arpa/inet.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rings/xsk_port.h"
#include "tests/progs/packet.h"

using namespace xdpload;
using namespace xdpload::rings;
using namespace xdpload::testing;

namespace {

enum Kind : uint8_t { kHello = 1, kData = 2, kAck = 3, kDone = 4 };

struct __attribute__((packed)) Header {
  uint32_t magic;
  uint8_t kind;
  uint8_t pad[3];
  uint64_t seq;
  uint64_t ack;  // in-order data frames received from the peer
  uint32_t body_len;
  uint32_t body_sum;
};
constexpr uint32_t kMagic = 0x58504c44;  // "XPLD"

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

uint32_t fnv1a(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

// Body length and bytes are a function of the sequence number, so the receiver
// knows what it should have got.
uint32_t body_len_for(uint64_t seq) { return 18 + uint32_t((seq * 2654435761u) % 1400); }
void fill_body(uint8_t* p, uint32_t len, uint64_t seq) {
  uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1;
  for (uint32_t i = 0; i < len; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = uint8_t(x);
  }
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Options {
  const char* iface = nullptr;
  const char* local_ip = nullptr;
  const char* peer_ip = nullptr;
  const char* peer_mac = nullptr;
  uint16_t port = 0;
  uint64_t count = 1000000;
  uint32_t window = 512;
  XdpMode mode = XdpMode::Auto;
  bool hold = false;
};

Options parse(int argc, char** argv) {
  Options o;
  static option longs[] = {{"iface", 1, 0, 'i'},   {"local-ip", 1, 0, 'l'},
                           {"peer-ip", 1, 0, 'p'}, {"peer-mac", 1, 0, 'm'},
                           {"port", 1, 0, 'P'},    {"count", 1, 0, 'n'},
                           {"mode", 1, 0, 'M'},    {"window", 1, 0, 'w'},
                           {"hold", 0, 0, 'H'},    {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
    switch (c) {
      case 'i': o.iface = optarg; break;
      case 'l': o.local_ip = optarg; break;
      case 'p': o.peer_ip = optarg; break;
      case 'm': o.peer_mac = optarg; break;
      case 'P': o.port = uint16_t(atoi(optarg)); break;
      case 'n': o.count = strtoull(optarg, nullptr, 10); break;
      case 'w': o.window = uint32_t(atoi(optarg)); break;
      case 'H': o.hold = true; break;
      case 'M':
        o.mode = !strcmp(optarg, "driver") ? XdpMode::Driver
                 : !strcmp(optarg, "skb")  ? XdpMode::Skb
                                           : XdpMode::Auto;
        break;
      default: exit(2);
    }
  }
  if (!o.iface || !o.port || (!o.hold && (!o.local_ip || !o.peer_ip || !o.peer_mac))) {
    fprintf(stderr, "usage: see the comment at the top of xsk_exchange.cc\n");
    exit(2);
  }
  return o;
}

// Drops everything steered to the port until a signal: proves the steering
// (the kernel socket on the port sees nothing) and gives tests a process to kill.
int hold(XskPort& port) {
  uint64_t frames = 0;
  RxFrame rx[64];
  while (!g_stop) {
    int fds[kMaxQueues];
    pollfd pfd[kMaxQueues];
    int nfds = port.wait_fds(fds, int(kMaxQueues));
    for (int i = 0; i < nfds; ++i) pfd[i] = pollfd{fds[i], POLLIN, 0};
    poll(pfd, nfds_t(nfds), 100);
    uint32_t n = port.rx_burst(rx, 64);
    for (uint32_t i = 0; i < n; ++i) port.free_frame(rx[i].addr);
    frames += n;
    port.refill();
    if (n) {
      printf("held %llu frames\n", (unsigned long long)frames);
      fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  PortConfig pc;
  pc.iface = o.iface;
  pc.mode = o.mode;
  std::unique_ptr<XskPort> port;
  ErrorText why;
  if (XskPort::open(pc, &port, &why) < 0) {
    fprintf(stderr, "xsk_exchange: %s\n", why.c_str());
    return 1;
  }
  port->steering().steer(IPPROTO_UDP, o.port);
  printf("port open: %s queues %s mode %s umem %s\n", o.iface, port->queue_list().c_str(),
         port->mode_string().c_str(), port->umem().hugepages() ? "hugepages" : "4k pages");
  fflush(stdout);
  if (o.hold) return hold(*port);

  UdpEndpoint me{}, peer{};
  if (!interface_mac(o.iface, me.mac) || !parse_mac(o.peer_mac, peer.mac)) {
    fprintf(stderr, "xsk_exchange: cannot get MAC addresses\n");
    return 1;
  }
  inet_pton(AF_INET, o.local_ip, &me.ip);
  inet_pton(AF_INET, o.peer_ip, &peer.ip);
  me.port = peer.port = o.port;

  uint64_t next_seq = 0;   // next data frame we send
  uint64_t peer_ack = 0;   // our frames the peer has received in order
  uint64_t expected = 0;   // next data frame we expect from the peer
  uint64_t acked_sent = 0; // the ack value we last told the peer
  uint64_t lost = 0, corrupt = 0, dup = 0, foreign = 0;
  bool peer_seen = false, peer_done = false;
  uint64_t start = now_ns(), last_progress = start, last_hello = 0, done_at = 0;
  uint64_t data_start = 0, last_send = 0;
  uint8_t frame_buf[2048];
  RxFrame rx[64];

  auto send_frame = [&](Kind kind, uint64_t seq) -> bool {
    uint64_t addr;
    uint8_t* f = port->alloc_tx(&addr);
    if (!f) return false;
    Header h{kMagic, kind, {}, seq, expected, 0, 0};
    uint8_t* payload = frame_buf;
    size_t len = sizeof h;
    if (kind == kData) {
      h.body_len = body_len_for(seq);
      fill_body(payload + sizeof h, h.body_len, seq);
      h.body_sum = fnv1a(payload + sizeof h, h.body_len);
      len += h.body_len;
    }
    memcpy(payload, &h, sizeof h);
    size_t flen = build_udp(f, me, peer, payload, len);
    if (!port->send(addr, uint32_t(flen))) {
      port->free_frame(addr);
      return false;
    }
    acked_sent = expected;
    last_send = now_ns();
    return true;
  };

  while (!g_stop) {
    uint64_t now = now_ns();
    // Until the peer answers, say hello every 10 ms (it may not be up yet).
    if (!peer_seen && now - last_hello > 10000000) {
      send_frame(kHello, 0);
      last_hello = now;
    }
    // Data, within the window.
    uint32_t burst = 0;
    while (peer_seen && next_seq < o.count && next_seq < peer_ack + o.window && burst < 64) {
      if (!send_frame(kData, next_seq)) break;
      ++next_seq;
      ++burst;
    }
    // Nothing to send but acks owed: a pure ack once a quarter window is due,
    // or when any is owed and nothing has gone out for 100 us (the tail).
    if (peer_seen && !burst && expected != acked_sent &&
        (expected - acked_sent >= o.window / 4 || now - last_send > 100000))
      send_frame(kAck, 0);
    bool complete = expected == o.count && peer_ack == o.count;
    if (complete) {
      if (!done_at) done_at = now;
      if (now - last_hello > 1000000) {
        send_frame(kDone, 0);
        last_hello = now;
      }
      if (peer_done || now - done_at > 2000000000ull) break;
    }
    port->flush();

    uint32_t n = port->rx_burst(rx, 64);
    for (uint32_t i = 0; i < n; ++i) {
      UdpView v;
      Header h;
      if (!parse_udp(rx[i].data, rx[i].len, &v) || v.dst_port != o.port || v.len < sizeof h) {
        ++foreign;
        port->free_frame(rx[i].addr);
        continue;
      }
      memcpy(&h, v.payload, sizeof h);
      if (h.magic != kMagic) {
        ++foreign;
        port->free_frame(rx[i].addr);
        continue;
      }
      if (!peer_seen) data_start = now_ns();
      peer_seen = true;
      if (h.ack > peer_ack) {
        peer_ack = h.ack;
        last_progress = now;
      }
      if (h.kind == kDone) peer_done = true;
      if (h.kind == kData) {
        const uint8_t* body = v.payload + sizeof h;
        if (!v.checksum_ok || h.body_len != body_len_for(h.seq) ||
            v.len != sizeof h + h.body_len || fnv1a(body, h.body_len) != h.body_sum) {
          ++corrupt;
        } else {
          uint8_t want[1500];
          fill_body(want, h.body_len, h.seq);
          if (memcmp(want, body, h.body_len)) ++corrupt;
        }
        if (h.seq == expected) {
          ++expected;
          last_progress = now;
        } else if (h.seq > expected) {
          lost += h.seq - expected;
          expected = h.seq + 1;
        } else {
          ++dup;
        }
      }
      port->free_frame(rx[i].addr);
    }
    port->refill();
    if (now - last_progress > 3000000000ull && now - start > 3000000000ull) {
      fprintf(stderr, "xsk_exchange: stalled (no progress for 3 s)\n");
      break;
    }
  }

  double secs = double(now_ns() - (data_start ? data_start : start)) / 1e9;
  port->refresh_kernel_stats();
  const PortCounters& c = port->counters();
  printf("sent %llu acked %llu received %llu lost %llu corrupt %llu dup %llu foreign %llu "
         "in %.2f s (%.0f frames/s each way) kernel-drops %llu fill-empty %llu kicks %llu\n",
         (unsigned long long)next_seq, (unsigned long long)peer_ack,
         (unsigned long long)expected, (unsigned long long)lost, (unsigned long long)corrupt,
         (unsigned long long)dup, (unsigned long long)foreign, secs, expected / secs,
         (unsigned long long)(c.rx_dropped + c.rx_ring_full),
         (unsigned long long)c.rx_fill_ring_empty, (unsigned long long)c.kicks);
  bool ok = expected == o.count && peer_ack == o.count && lost == 0 && corrupt == 0;
  return ok ? 0 : 1;
}
