// Hand-built Ethernet/IPv4/UDP frames for programs that drive an XskPort
// directly (no stack): the rings tests and the raw AF_XDP floor benchmark.
#pragma once

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <net/ethernet.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace xdpload::testing {

struct UdpEndpoint {
  uint8_t mac[6];
  uint32_t ip;    // network order
  uint16_t port;  // host order
};

constexpr size_t kUdpHeaders = sizeof(ether_header) + sizeof(iphdr) + sizeof(udphdr);

inline uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

inline uint32_t sum16(const void* data, size_t len, uint32_t sum = 0) {
  auto* p = static_cast<const uint8_t*>(data);
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t(p[0]) << 8) | p[1];
  if (len) sum += uint32_t(p[0]) << 8;
  return sum;
}

// Writes the Ethernet, IPv4 and UDP headers of a datagram of `len` bytes
// into `frame` (the IPv4 checksum filled in, the UDP one 0); returns the
// UDP header, the payload right behind it.
inline udphdr* build_udp_headers(uint8_t* frame, const UdpEndpoint& src, const UdpEndpoint& dst,
                                 size_t len) {
  auto* eth = reinterpret_cast<ether_header*>(frame);
  memcpy(eth->ether_dhost, dst.mac, 6);
  memcpy(eth->ether_shost, src.mac, 6);
  eth->ether_type = htons(ETHERTYPE_IP);
  auto* ip = reinterpret_cast<iphdr*>(eth + 1);
  *ip = iphdr{};
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons(uint16_t(sizeof(iphdr) + sizeof(udphdr) + len));
  ip->frag_off = htons(IP_DF);
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->saddr = src.ip;
  ip->daddr = dst.ip;
  ip->check = htons(fold(sum16(ip, sizeof *ip)));
  auto* udp = reinterpret_cast<udphdr*>(ip + 1);
  udp->source = htons(src.port);
  udp->dest = htons(dst.port);
  udp->len = htons(uint16_t(sizeof(udphdr) + len));
  udp->check = 0;
  return udp;
}

// Writes a complete frame (IPv4 and UDP checksums filled in) into `frame`;
// returns its length.
inline size_t build_udp(uint8_t* frame, const UdpEndpoint& src, const UdpEndpoint& dst,
                        const void* payload, size_t len) {
  udphdr* udp = build_udp_headers(frame, src, dst, len);
  auto* ip = reinterpret_cast<iphdr*>(frame + sizeof(ether_header));
  memcpy(udp + 1, payload, len);
  uint32_t pseudo = sum16(&ip->saddr, 8) + IPPROTO_UDP + sizeof(udphdr) + len;
  uint16_t c = htons(fold(sum16(udp, sizeof(udphdr) + len, pseudo)));
  udp->check = c ? c : 0xffff;
  return kUdpHeaders + len;
}

struct UdpView {
  uint32_t src_ip, dst_ip;  // network order
  uint16_t src_port, dst_port;
  const uint8_t* payload;
  size_t len;
  bool checksum_ok;
};

// Parses an IPv4/UDP frame; false for anything else or a truncated frame.
inline bool parse_udp(const uint8_t* frame, size_t flen, UdpView* v) {
  if (flen < kUdpHeaders) return false;
  auto* eth = reinterpret_cast<const ether_header*>(frame);
  if (eth->ether_type != htons(ETHERTYPE_IP)) return false;
  auto* ip = reinterpret_cast<const iphdr*>(eth + 1);
  if (ip->version != 4 || ip->protocol != IPPROTO_UDP) return false;
  size_t ihl = ip->ihl * 4u;
  if (ihl < sizeof(iphdr) || sizeof(ether_header) + ihl + sizeof(udphdr) > flen) return false;
  auto* udp = reinterpret_cast<const udphdr*>(reinterpret_cast<const uint8_t*>(ip) + ihl);
  size_t ulen = ntohs(udp->len);
  if (ulen < sizeof(udphdr) || sizeof(ether_header) + ihl + ulen > flen) return false;
  v->src_ip = ip->saddr;
  v->dst_ip = ip->daddr;
  v->src_port = ntohs(udp->source);
  v->dst_port = ntohs(udp->dest);
  v->payload = reinterpret_cast<const uint8_t*>(udp + 1);
  v->len = ulen - sizeof(udphdr);
  uint32_t pseudo = sum16(&ip->saddr, 8) + IPPROTO_UDP + ulen;
  v->checksum_ok = udp->check == 0 || fold(sum16(udp, ulen, pseudo)) == 0;
  return true;
}

inline bool parse_mac(const char* s, uint8_t mac[6]) {
  unsigned b[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) mac[i] = uint8_t(b[i]);
  return true;
}

inline bool interface_mac(const char* ifname, uint8_t mac[6]) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return false;
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  bool ok = ioctl(s, SIOCGIFHWADDR, &ifr) == 0;
  close(s);
  if (ok) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return ok;
}

}  // namespace xdpload::testing
