// xsk_bulk: the floor under a bulk transfer. Sends as many wire-sized frames
// as a TCP transfer of the same bytes takes (1448 bytes of data a segment,
// 1514-byte frames) through a raw AF_XDP port (rings/ only: no lwIP, no
// shim), as fast as the kernel takes them: no congestion control, no ACKs to
// wait for, no retransmission. What it measures is the transmit path itself.
// In copy mode every kick makes each frame an skb and copies it, and on veth
// the same system call runs the receiving namespace's stack too; xdpload's
// sender pays that path for every segment, so its transfer time cannot go
// below this one's on the same wire.
//
//   xsk_bulk --iface X --local-ip A --peer-ip B --peer-mac M --port P --bytes N
//       prints "frames F bytes N seconds S (mode)": S from the first kick to
//       the last frame's completion
//
// The frames are UDP datagrams of 1472 bytes (a 1514-byte frame, as a
// full-sized segment with TCP timestamps): a kernel UDP socket in B reads
// them. B does less for a datagram than for a TCP segment (no ACK to send),
// so the floor is, if anything, low. The payload is copied into each frame
// from a buffer, as xdpload copies the program's bytes; the UDP checksum is
// completed by the kernel where the port offers it (as xdpload's TCP
// checksums are), else left out (0, allowed for UDP over IPv4).
#include <arpa/inet.h>
#include <getopt.h>
#include <time.h>

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

constexpr size_t kSegmentData = 1448;  // a full segment's data, with timestamps
constexpr size_t kDatagram = 1472;     // the UDP payload that makes the same 1514-byte frame

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

[[noreturn]] void usage() {
  fprintf(stderr, "usage: see the comment at the top of bench/xsk_bulk.cc\n");
  exit(2);
}

// Headers and payload; the UDP checksum as the pseudo-header's sum for the
// kernel to complete (offload), or none.
size_t build_frame(uint8_t* frame, const UdpEndpoint& src, const UdpEndpoint& dst,
                   const uint8_t* payload, bool offload) {
  udphdr* udp = build_udp_headers(frame, src, dst, kDatagram);
  if (offload) {
    // fold() complements; the offloaded field holds the sum itself.
    const auto* ip = reinterpret_cast<const iphdr*>(frame + sizeof(ether_header));
    const uint32_t pseudo = sum16(&ip->saddr, 8) + IPPROTO_UDP + sizeof(udphdr) + kDatagram;
    udp->check = htons(uint16_t(~fold(pseudo)));
  }
  memcpy(udp + 1, payload, kDatagram);
  return sizeof(ether_header) + sizeof(iphdr) + sizeof(udphdr) + kDatagram;
}

}  // namespace

int main(int argc, char** argv) {
  const char *iface = nullptr, *local_ip = nullptr, *peer_ip = nullptr, *peer_mac = nullptr;
  uint16_t port_no = 0;
  uint64_t bytes = 0;
  static option longs[] = {{"iface", 1, 0, 'i'}, {"local-ip", 1, 0, 'l'}, {"peer-ip", 1, 0, 'p'},
                           {"peer-mac", 1, 0, 'm'}, {"port", 1, 0, 'P'}, {"bytes", 1, 0, 'b'},
                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
    switch (c) {
      case 'i': iface = optarg; break;
      case 'l': local_ip = optarg; break;
      case 'p': peer_ip = optarg; break;
      case 'm': peer_mac = optarg; break;
      case 'P': port_no = uint16_t(atoi(optarg)); break;
      case 'b': bytes = strtoull(optarg, nullptr, 10); break;
      default: usage();
    }
  }
  if (!iface || !local_ip || !peer_ip || !peer_mac || !port_no || !bytes) usage();
  UdpEndpoint me{}, peer{};
  if (!interface_mac(iface, me.mac) || !parse_mac(peer_mac, peer.mac) ||
      inet_pton(AF_INET, local_ip, &me.ip) != 1 || inet_pton(AF_INET, peer_ip, &peer.ip) != 1) {
    fprintf(stderr, "xsk_bulk: bad address or interface\n");
    return 1;
  }
  me.port = peer.port = port_no;

  PortConfig pc;
  pc.iface = iface;
  std::unique_ptr<XskPort> port;
  ErrorText why;
  if (XskPort::open(pc, &port, &why) < 0) {
    fprintf(stderr, "xsk_bulk: %s\n", why.c_str());
    return 1;
  }
  const bool offload = port->tx_checksum_offload();
  const uint16_t csum_start = offload ? sizeof(ether_header) + sizeof(iphdr) : 0;
  const uint16_t csum_offset = offload ? offsetof(udphdr, check) : 0;

  std::vector<uint8_t> payload(kDatagram, 0x5a);
  const uint64_t frames = (bytes + kSegmentData - 1) / kSegmentData;
  // Every frame is back in the pool once the last completion is reaped
  // (alloc_tx reaps too when the pool runs dry).
  const uint32_t pool_size = port->free_frames();
  uint64_t queued = 0;
  const uint64_t start = now_ns();
  while (queued < frames || port->free_frames() < pool_size) {
    while (queued < frames) {
      uint64_t addr;
      uint8_t* f = port->alloc_tx(&addr);
      if (!f) break;
      memcpy(payload.data(), &queued, sizeof queued);
      size_t len = build_frame(f, me, peer, payload.data(), offload);
      if (!port->send(addr, uint32_t(len), csum_start, csum_offset)) {
        port->free_frame(addr);
        break;
      }
      ++queued;
    }
    port->flush();
    port->reap();
  }
  const double seconds = double(now_ns() - start) / 1e9;
  printf("frames %llu bytes %llu seconds %.4f (%s)\n", (unsigned long long)frames,
         (unsigned long long)bytes, seconds, port->mode_string().c_str());
  return 0;
}
