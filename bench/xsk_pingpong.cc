// xsk_pingpong: the floor under xdpload's latency. A UDP ping-pong over two
// raw AF_XDP ports (rings/ only: no lwIP, no shim, no sockets), both sides
// busy-polling their rings. The gap between this and sockperf under xdpload
// is what the stack and the shim cost.
//
//   xsk_pingpong echo --iface X --port P [--seconds S]
//       turns every UDP frame to port P around in place (MACs, addresses and
//       ports swapped; the checksums stay valid) and sends it back
//   xsk_pingpong ping --iface X --local-ip A --peer-ip B --peer-mac M --port P
//                [--size 64] [--seconds 3] [--samples FILE]
//       sends one message, waits for its echo, repeats; prints round-trip
//       percentiles in microseconds, like sockperf --full-rtt, and with
//       --samples writes every round trip (ns), one per line
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rings/xsk_port.h"
#include "tests/progs/packet.h"

using namespace xdpload;
using namespace xdpload::rings;
using namespace xdpload::testing;

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

struct Options {
  bool echo = false;
  const char* iface = nullptr;
  const char* local_ip = nullptr;
  const char* peer_ip = nullptr;
  const char* peer_mac = nullptr;
  const char* samples = nullptr;
  uint16_t port = 0;
  uint32_t size = 64;
  double seconds = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2 || (strcmp(argv[1], "echo") && strcmp(argv[1], "ping"))) {
    fprintf(stderr, "usage: see the comment at the top of bench/xsk_pingpong.cc\n");
    exit(2);
  }
  o.echo = !strcmp(argv[1], "echo");
  static option longs[] = {{"iface", 1, 0, 'i'},   {"local-ip", 1, 0, 'l'}, {"peer-ip", 1, 0, 'p'},
                           {"peer-mac", 1, 0, 'm'}, {"port", 1, 0, 'P'},     {"size", 1, 0, 's'},
                           {"seconds", 1, 0, 't'},  {"samples", 1, 0, 'o'},  {0, 0, 0, 0}};
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
    switch (c) {
      case 'i': o.iface = optarg; break;
      case 'l': o.local_ip = optarg; break;
      case 'p': o.peer_ip = optarg; break;
      case 'm': o.peer_mac = optarg; break;
      case 'P': o.port = uint16_t(atoi(optarg)); break;
      case 's': o.size = uint32_t(atoi(optarg)); break;
      case 't': o.seconds = atof(optarg); break;
      case 'o': o.samples = optarg; break;
      default: exit(2);
    }
  }
  if (!o.iface || !o.port || o.size < 16 || o.size > 1400 ||
      (!o.echo && (!o.local_ip || !o.peer_ip || !o.peer_mac))) {
    fprintf(stderr, "usage: see the comment at the top of bench/xsk_pingpong.cc\n");
    exit(2);
  }
  return o;
}

// Turns a UDP frame around in place. Swapping source and destination leaves
// both checksums valid (one's-complement sums do not depend on order).
void turn_around(uint8_t* frame) {
  auto* eth = reinterpret_cast<ether_header*>(frame);
  uint8_t mac[6];
  memcpy(mac, eth->ether_dhost, 6);
  memcpy(eth->ether_dhost, eth->ether_shost, 6);
  memcpy(eth->ether_shost, mac, 6);
  auto* ip = reinterpret_cast<iphdr*>(eth + 1);
  std::swap(ip->saddr, ip->daddr);
  auto* udp = reinterpret_cast<udphdr*>(reinterpret_cast<uint8_t*>(ip) + ip->ihl * 4);
  std::swap(udp->source, udp->dest);
}

int echo(XskPort& port, const Options& o) {
  RxFrame rx[64];
  uint64_t echoed = 0, end = o.seconds > 0 ? now_ns() + uint64_t(o.seconds * 1e9) : 0;
  while (!g_stop && (!end || now_ns() < end)) {
    uint32_t n = port.rx_burst(rx, 64);
    for (uint32_t i = 0; i < n; ++i) {
      UdpView v;
      if (rx[i].more || !parse_udp(rx[i].data, rx[i].len, &v) || v.dst_port != o.port) {
        port.free_frame(rx[i].addr);
        continue;
      }
      turn_around(rx[i].data);
      if (port.send(rx[i].addr, rx[i].len)) ++echoed;
      else port.free_frame(rx[i].addr);
    }
    if (n) port.flush();
    port.reap();
    port.refill();
  }
  printf("echoed %llu\n", (unsigned long long)echoed);
  return 0;
}

int ping(XskPort& port, const Options& o) {
  UdpEndpoint me{}, peer{};
  if (!interface_mac(o.iface, me.mac) || !parse_mac(o.peer_mac, peer.mac)) {
    fprintf(stderr, "xsk_pingpong: cannot get MAC addresses\n");
    return 1;
  }
  inet_pton(AF_INET, o.local_ip, &me.ip);
  inet_pton(AF_INET, o.peer_ip, &peer.ip);
  me.port = peer.port = o.port;

  std::vector<uint8_t> payload(o.size, 0x5a);
  std::vector<uint32_t> rtts;
  rtts.reserve(4 << 20);
  RxFrame rx[64];
  uint64_t seq = 0, lost = 0;
  uint64_t start = now_ns(), warm_until = start + 200000000, end = warm_until + uint64_t(o.seconds * 1e9);
  while (!g_stop) {
    uint64_t t0 = now_ns();
    if (t0 >= end) break;
    uint64_t addr;
    uint8_t* f = port.alloc_tx(&addr);
    if (!f) {
      port.reap();
      continue;
    }
    memcpy(payload.data(), &seq, sizeof seq);
    size_t flen = build_udp(f, me, peer, payload.data(), payload.size());
    if (!port.send(addr, uint32_t(flen))) {
      port.free_frame(addr);
      continue;
    }
    port.flush();
    // Spin for the echo of this message; after 10 ms count it lost.
    bool got = false;
    while (!got) {
      uint32_t n = port.rx_burst(rx, 64);
      for (uint32_t i = 0; i < n; ++i) {
        UdpView v;
        uint64_t s;
        if (parse_udp(rx[i].data, rx[i].len, &v) && v.len == o.size &&
            (memcpy(&s, v.payload, sizeof s), s == seq))
          got = true;
        port.free_frame(rx[i].addr);
      }
      if (n) port.refill();
      if (!got && now_ns() - t0 > 10000000) break;
    }
    uint64_t t1 = now_ns();
    port.reap();
    ++seq;
    if (!got) {
      ++lost;
      continue;
    }
    if (t0 >= warm_until) rtts.push_back(uint32_t(t1 - t0));
  }
  if (rtts.empty()) {
    fprintf(stderr, "xsk_pingpong: no echo came back\n");
    return 1;
  }
  if (o.samples) {
    if (FILE* f = fopen(o.samples, "w")) {
      for (uint32_t r : rtts) fprintf(f, "%u\n", r);
      fclose(f);
    }
  }
  std::vector<uint32_t> sorted = rtts;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    size_t i = std::min(sorted.size() - 1, size_t(p / 100.0 * double(sorted.size())));
    return sorted[i] / 1000.0;
  };
  printf("round trips %zu lost %llu (%s)\n", sorted.size(), (unsigned long long)lost,
         port.mode_string().c_str());
  printf("percentile 50.000 = %.3f\npercentile 99.000 = %.3f\npercentile 99.900 = %.3f\n"
         "<MAX> observation = %.3f\n",
         pct(50), pct(99), pct(99.9), sorted.back() / 1000.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  PortConfig pc;
  pc.iface = o.iface;
  pc.ring_size = 1024;
  std::unique_ptr<XskPort> port;
  ErrorText why;
  if (XskPort::open(pc, &port, &why) < 0) {
    fprintf(stderr, "xsk_pingpong: %s\n", why.c_str());
    return 1;
  }
  if (int rc = port->steering().steer(IPPROTO_UDP, o.port); rc < 0) {
    fprintf(stderr, "xsk_pingpong: cannot steer port %u: %s\n", o.port, strerror(-rc));
    return 1;
  }
  port->refill();
  return o.echo ? echo(*port, o) : ping(*port, o);
}
