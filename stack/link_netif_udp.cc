// LinkNetif::send_udp: the UDP fast path. A unicast datagram that fits one
// frame is written straight into a transmit frame, Ethernet, IP and UDP
// headers and payload, without udp_sendto and ip4_output: on a 64-byte
// ping-pong those layers were a fifth of the library's share of the round
// trip (stage marks, bench/stage_report.py). The headers are the ones lwIP
// writes (no DF, no options, the ID from lwIP's own counter), so that a
// datagram looks the same whichever path it took.
#include <arpa/inet.h>

#include <cstring>

#include "stack/checksum.h"
#include "stack/link_netif.h"

extern "C" {
#include "lwip/ip4.h"
#include "lwip/stats.h"
}

namespace xdpload::stack {

namespace {
constexpr uint32_t kEthHeader = 14, kIpHeader = 20, kUdpHeader = 8;
constexpr uint32_t kHeaders = kEthHeader + kIpHeader + kUdpHeader;
}  // namespace

bool LinkNetif::send_udp(const UdpHeaderFields& h, const iovec* iov, int iovcnt, size_t len) {
  // A transmit tap (stamps) watches lwIP's output; broadcast and multicast
  // have their own addressing and loopback rules: those stay with lwIP.
  if (tx_tap_ || len + kIpHeader + kUdpHeader > address_.mtu) return false;
  if (broadcast(h.dst_ip) || (ntohl(h.dst_ip) >> 28) == 0xe) return false;
  uint32_t hop;
  uint8_t mac[6];
  // An unresolved neighbour: lwIP's path holds the datagram while the
  // kernel resolves it.
  if (!next_hop(h.dst_ip, &hop) || !neighbours_.lookup(hop, mac, clock_ms_)) return false;
  uint64_t token;
  uint32_t room;
  uint8_t* frame = link_->tx_frame(&token, &room);
  if (!frame) return false;
  if (room < kHeaders + len) {
    link_->release(token);
    return false;
  }
  tx_in_hand_ = token;  // (recover_frames_in_hand)

  uint8_t* eth = frame;
  memcpy(eth, mac, 6);
  memcpy(eth + 6, address_.mac, 6);
  eth[12] = 0x08;
  eth[13] = 0x00;

  uint8_t* ip = eth + kEthHeader;
  const uint16_t ip_len = htons(uint16_t(kIpHeader + kUdpHeader + len));
  const uint16_t id = htons(ip4_next_id());
  ip[0] = 0x45;
  ip[1] = h.tos;
  memcpy(ip + 2, &ip_len, 2);
  memcpy(ip + 4, &id, 2);
  ip[6] = h.dont_fragment ? 0x40 : 0;  // DF as asked, never a fragment
  ip[7] = 0;
  ip[8] = h.ttl;
  ip[9] = IPPROTO_UDP;
  ip[10] = ip[11] = 0;
  memcpy(ip + 12, &h.src_ip, 4);
  memcpy(ip + 16, &h.dst_ip, 4);
  const uint16_t ip_sum = uint16_t(~csum_fold(csum_partial(ip, kIpHeader)));
  memcpy(ip + 10, &ip_sum, 2);

  uint8_t* udp = ip + kIpHeader;
  const uint16_t sport = htons(h.src_port), dport = htons(h.dst_port);
  const uint16_t udp_len = htons(uint16_t(kUdpHeader + len));
  memcpy(udp, &sport, 2);
  memcpy(udp + 2, &dport, 2);
  memcpy(udp + 4, &udp_len, 2);
  udp[6] = udp[7] = 0;
  uint8_t* payload = udp + kUdpHeader;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len) memcpy(payload, iov[i].iov_base, iov[i].iov_len);
    payload += iov[i].iov_len;
  }
  if (h.checksum) {
    uint64_t sum = csum_pseudo(h.src_ip, h.dst_ip, IPPROTO_UDP, uint16_t(kUdpHeader + len));
    sum = csum_partial(udp, kUdpHeader + len, sum);
    uint16_t udp_sum = uint16_t(~csum_fold(sum));
    if (udp_sum == 0) udp_sum = 0xffff;  // 0 would say "no checksum"
    memcpy(udp + 6, &udp_sum, 2);
  }

  tx_in_hand_ = kNoFrame;
  if (!link_->tx_send(token, uint32_t(kHeaders + len), TxChecksum{})) {
    link_->release(token);
    ++counters_->tx_link_full;
    return false;
  }
  ++counters_->tx_frames;
  ++counters_->tx_zero_copy;
  ++counters_->tx_udp_direct;
  // lwIP's own counts, as its output path would have kept them.
  UDP_STATS_INC(udp.xmit);
  MIB2_STATS_INC(mib2.udpoutdatagrams);
  IP_STATS_INC(ip.xmit);
  MIB2_STATS_INC(mib2.ipoutrequests);
  return true;
}

}  // namespace xdpload::stack
