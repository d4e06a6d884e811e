#include "stack/link_netif.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstring>

#include "stack/checksum.h"
#include "stack/lwip_port.h"

extern "C" {
#include "lwip/ip4.h"
#include "lwip/ip4_addr.h"
#include "netif/ethernet.h"
}

namespace xdpload::stack {

namespace {

// The pbuf of a received frame lives in the frame's scratch area.
struct RxPbuf {
  struct pbuf_custom custom;  // first: lwIP sees a pbuf
  LinkNetif* owner;
  uint64_t token;
};
static_assert(sizeof(RxPbuf) <= Link::kScratch, "RxPbuf must fit the link's scratch area");

// The pbuf of a transmit frame lwIP builds a packet in, likewise.
struct TxPbuf {
  struct pbuf_custom custom;
  LinkNetif* owner;
  uint64_t token;   // the frame, as tx_frame() gave it
  uint8_t* start;   // where tx_frame()'s token points
  bool sent;        // handed to the link: the frame is the link's now
};
static_assert(sizeof(TxPbuf) <= Link::kScratch, "TxPbuf must fit the link's scratch area");

constexpr size_t kMaxHeld = 64;
constexpr uint64_t kHoldMs = 3000;
constexpr uint64_t kRefreshMs = 10000;
constexpr uint16_t kEthIp = 0x0800;

bool is_group_mac(const uint8_t* mac) { return mac[0] & 1; }

}  // namespace

LinkNetif::~LinkNetif() {
  drop_chain();
  for (Held& h : held_) pbuf_free(h.p);
  held_.clear();
  if (added_) netif_remove(&nif_);
}

int LinkNetif::open(Link* link, const NetifAddress& address, int kernel_ifindex, ErrorText* why) {
  link_ = link;
  address_ = address;
  kernel_ifindex_ = kernel_ifindex;
  clock_ms_ = now_ms();
  if (kernel_ifindex) {
    // Subscribe before reading the tables, so that no change falls between.
    if (int rc = events_.open(RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE, why); rc < 0) return rc;
    if (int rc = routes_.open(why); rc < 0) return rc;
    if (int rc = neighbours_.open_kernel(kernel_ifindex, why); rc < 0) return rc;
  }
  ip4_addr_t ip, mask, gw;
  ip.addr = address.addr;
  mask.addr = address.netmask;
  gw.addr = address.gateway;
  if (!netif_add(&nif_, &ip, &mask, &gw, this, init_cb, ip4_input))
    return why->set(EINVAL, "lwIP refused the interface");
  added_ = true;
  netif_set_up(&nif_);
  netif_set_link_up(&nif_);
  return 0;
}

err_t LinkNetif::init_cb(struct netif* n) {
  auto* self = static_cast<LinkNetif*>(n->state);
  n->name[0] = 'x';
  n->name[1] = 'd';
  n->mtu = uint16_t(self->address_.mtu);
  n->hwaddr_len = 6;
  memcpy(n->hwaddr, self->address_.mac, 6);
  n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP | NETIF_FLAG_LINK_UP;
  n->output = output_cb;
  n->linkoutput = linkoutput_cb;
  return ERR_OK;
}

// ---- receive ----

void LinkNetif::rx_pbuf_free(struct pbuf* p) {
  auto* r = reinterpret_cast<RxPbuf*>(p);
  r->owner->link_->release(r->token);
}

// A TCP segment's data frame: lwIP has let go of the segment (acknowledged,
// or the connection is gone). A send still in flight returns the frame
// when it completes.
void LinkNetif::tcp_data_free(struct pbuf* p) {
  auto* t = reinterpret_cast<TxPbuf*>(p);
  t->owner->link_->release(t->token);
}

struct pbuf* LinkNetif::alloc_tcp_data_pbuf(uint16_t max) {
  uint64_t token;
  uint32_t room;
  uint8_t* start = link_->tx_frame(&token, &room);
  if (!start) return nullptr;
  void* scratch = link_->tx_scratch(token);
  if (!scratch || room < kSegmentHeadroom + uint32_t(max)) {
    link_->release(token);
    return nullptr;
  }
  auto* t = static_cast<TxPbuf*>(scratch);
  t->custom.custom_free_function = tcp_data_free;
  t->owner = this;
  t->token = token;
  t->start = start;
  t->sent = false;
  struct pbuf* p = pbuf_alloced_custom(PBUF_RAW, max, PBUF_REF, &t->custom,
                                       start + kSegmentHeadroom, max);
  if (!p) link_->release(token);
  return p;
}

void LinkNetif::tx_pbuf_free(struct pbuf* p) {
  auto* t = reinterpret_cast<TxPbuf*>(p);
  if (!t->sent) t->owner->link_->release(t->token);
}

struct pbuf* LinkNetif::alloc_tx_pbuf(uint16_t len) {
  // Only what goes out in one frame, unfragmented: lwIP would cut a longer
  // datagram into pbufs that point into this one, and those are copied.
  if (len + 28u > address_.mtu) return nullptr;
  uint64_t token;
  uint32_t room;
  uint8_t* start = link_->tx_frame(&token, &room);
  if (!start) return nullptr;
  void* scratch = link_->tx_scratch(token);
  if (!scratch || room > 0xffff) {
    link_->release(token);
    return nullptr;
  }
  auto* t = static_cast<TxPbuf*>(scratch);
  t->custom.custom_free_function = tx_pbuf_free;
  t->owner = this;
  t->token = token;
  t->start = start;
  t->sent = false;
  // lwIP places the payload after room for every header (aligned), and
  // prepends the headers there.
  struct pbuf* p = pbuf_alloced_custom(PBUF_TRANSPORT, len, PBUF_RAM, &t->custom, start, u16_t(room));
  if (!p) link_->release(token);
  return p;
}

namespace {
bool g_test_die_in_burst = false;
}

void LinkNetif::set_test_die_in_burst(bool on) { g_test_die_in_burst = on; }

uint32_t LinkNetif::recover_frames_in_hand() {
  uint32_t given = 0;
  for (uint32_t i = rx_in_hand_next_; i < rx_in_hand_n_ && i < kMaxBurst; ++i, ++given)
    link_->release(rx_in_hand_[i]);
  rx_in_hand_n_ = rx_in_hand_next_ = 0;
  if (tx_in_hand_ != kNoFrame) {
    link_->release(tx_in_hand_);
    tx_in_hand_ = kNoFrame;
    ++given;
  }
  for (int i = 0; i < data_in_hand_n_; ++i, ++given) link_->release(data_in_hand_[i]);
  data_in_hand_n_ = 0;
  return given;
}

void LinkNetif::data_frame_in_hand(struct pbuf* p) {
  if (data_in_hand_n_ < kMaxDataInHand)
    data_in_hand_[data_in_hand_n_++] = reinterpret_cast<const TxPbuf*>(p)->token;
}

uint32_t LinkNetif::input(uint32_t budget, uint64_t now_ms) {
  LinkFrame frames[kMaxBurst];
  if (budget > kMaxBurst) budget = kMaxBurst;
  uint32_t n = link_->rx_burst(frames, budget);
  if (!n) {
    // A ring the last refill left short (the program held the frames) gets
    // them once they are back, without waiting for the next packet.
    link_->refill();
    return 0;
  }
  if (rx_stamp_users_ > 0 && rx_clock_) rx_clock_(&rx_stamp_);
  else rx_stamp_ = timespec{};
  // Asked once a burst: without stamps a packet costs no call for them.
  rx_hw_stamps_now_ = link_->rx_hw_stamps();
  clock_ms_ = now_ms;
  // The burst is ours until each frame goes to lwIP (or the chain of a
  // packet in several frames, which the family's memory holds): noted, so
  // that a death under the lock does not lose the rest.
  for (uint32_t i = 0; i < n; ++i) rx_in_hand_[i] = frames[i].token;
  rx_in_hand_next_ = 0;
  rx_in_hand_n_ = n;
  for (uint32_t i = 0; i < n; ++i) {
    if (g_test_die_in_burst && i == 1) kill(getpid(), SIGKILL);
    // (Given up before lwIP has it: a death inside lwIP may leak this one,
    // never free it twice.)
    rx_in_hand_next_ = i + 1;
    if (!chain_len_ && !frames[i].more) {
      input_packet(&frames[i], 1);
      continue;
    }
    // A packet in several frames; its end may come in the next burst.
    if (chain_len_ == kMaxChain) {
      drop_chain();
      ++counters_->rx_malformed;
    }
    chain_[chain_len_++] = frames[i];
    if (!frames[i].more) {
      input_packet(chain_, chain_len_);
      chain_len_ = 0;
    }
  }
  rx_in_hand_n_ = 0;
  link_->refill();
  return n;
}

void LinkNetif::forget_tcp_flow(uint32_t remote_ip, uint16_t remote_port, uint16_t local_port) {
  ForgottenFlow* slot = &forgotten_[0];
  for (ForgottenFlow& f : forgotten_)
    if (f.until_ms < slot->until_ms) slot = &f;  // a free one, or the oldest
  if (slot->until_ms == 0) ++forgotten_live_;
  *slot = ForgottenFlow{remote_ip, remote_port, local_port, clock_ms_ + 1000};
}

bool LinkNetif::forgotten(const uint8_t* ip, uint32_t ihl) {
  uint32_t saddr;
  uint16_t sport, dport;
  memcpy(&saddr, ip + 12, 4);
  memcpy(&sport, ip + ihl, 2);
  memcpy(&dport, ip + ihl + 2, 2);
  bool hit = false;
  for (ForgottenFlow& f : forgotten_) {
    if (f.until_ms == 0) continue;
    if (f.until_ms < clock_ms_) {
      f.until_ms = 0;
      --forgotten_live_;
      continue;
    }
    hit |= f.remote_ip == saddr && f.remote_port == sport && f.local_port == dport;
  }
  return hit;
}

void LinkNetif::drop_chain() {
  for (uint32_t i = 0; i < chain_len_; ++i) link_->release(chain_[i].token);
  chain_len_ = 0;
}

// One packet in `count` frames: the first holds the Ethernet, IP and L4
// headers (a frame is far larger than any header).
void LinkNetif::input_packet(const LinkFrame* f, uint32_t count) {
  auto drop = [&](uint64_t& counter) {
    ++counter;
    for (uint32_t i = 0; i < count; ++i) link_->release(f[i].token);
  };
  const uint8_t* d = f[0].data;
  uint32_t total = 0;
  for (uint32_t i = 0; i < count; ++i) total += f[i].len;
  const uint64_t hw_ns = rx_hw_stamps_now_ ? link_->rx_hw_stamp(f[0]) : 0;
  rx_hw_stamp_ = hw_ns ? timespec{time_t(hw_ns / 1000000000), long(hw_ns % 1000000000)} : timespec{};
  if (f[0].len < 14 + 20) return drop(counters_->rx_malformed);
  if (((d[12] << 8) | d[13]) != kEthIp) return drop(counters_->rx_not_ipv4);
  if (!is_group_mac(d) && memcmp(d, address_.mac, 6) != 0) return drop(counters_->rx_not_ours);

  const uint8_t* ip = d + 14;
  uint32_t ihl = (ip[0] & 0x0f) * 4u;
  uint32_t tot = (uint32_t(ip[2]) << 8) | ip[3];
  if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > total || 14 + ihl > f[0].len)
    return drop(counters_->rx_malformed);
  // The IP header checksum: counted here, with the other drops (lwIP would
  // drop it too, silently).
  if (csum_fold(csum_partial(ip, ihl)) != 0xffff) return drop(counters_->rx_bad_checksum);
  uint8_t proto = ip[9];
  bool whole = (((ip[6] << 8) | ip[7]) & 0x3fff) == 0;  // not a fragment
  if (whole && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
    uint32_t l4_len = tot - ihl;
    size_t field_at = proto == IPPROTO_TCP ? 16 : 6;
    if (l4_len < field_at + 2 || 14 + ihl + field_at + 2 > f[0].len)
      return drop(counters_->rx_malformed);
    if (proto == IPPROTO_TCP && forgotten_live_ && forgotten(ip, ihl))
      return drop(counters_->rx_handed_over);
    // Lengths inside the L4 header must agree with the IP packet: a TCP
    // data offset within 20..segment, a UDP length within 8..payload.
    if (proto == IPPROTO_TCP) {
      uint32_t doff = uint32_t(ip[ihl + 12] >> 4) * 4;
      if (doff < 20 || doff > l4_len) return drop(counters_->rx_malformed);
    } else {
      uint32_t ulen = (uint32_t(ip[ihl + 4]) << 8) | ip[ihl + 5];
      if (ulen < 8 || ulen > l4_len) return drop(counters_->rx_malformed);
      if (ulen < l4_len) {
        // Bytes after the datagram: Linux trims them (and checks the
        // checksum over the UDP length only). lwIP trusts the IP length,
        // so the IP header is shortened to match, its checksum redone.
        l4_len = ulen;
        tot = ihl + ulen;
        uint8_t* w = const_cast<uint8_t*>(ip);
        w[2] = uint8_t(tot >> 8);
        w[3] = uint8_t(tot);
        w[10] = w[11] = 0;
        uint16_t c = uint16_t(~csum_fold(csum_partial(w, ihl)));
        memcpy(w + 10, &c, 2);
      }
    }
    uint32_t saddr, daddr;
    uint16_t field;
    memcpy(&saddr, ip + 12, 4);
    memcpy(&daddr, ip + 16, 4);
    memcpy(&field, ip + ihl + field_at, 2);
    // Sum the segment across the frames it spans.
    uint64_t sum = 0;
    size_t done = 0;
    for (uint32_t i = 0; i < count && done < l4_len; ++i) {
      const uint8_t* from = i == 0 ? ip + ihl : f[i].data;
      size_t avail = i == 0 ? f[0].len - (14 + ihl) : f[i].len;
      size_t take = std::min<size_t>(avail, l4_len - done);
      sum = csum_block_add(sum, csum_partial(from, take), done);
      done += take;
    }
    switch (classify_l4(csum_pseudo(saddr, daddr, proto, uint16_t(l4_len)), sum, field,
                        proto == IPPROTO_UDP)) {
      case L4Checksum::kGood: break;
      case L4Checksum::kPartial:
        if (!address_.accept_partial_checksums) return drop(counters_->rx_bad_checksum);
        ++counters_->rx_partial_checksum;
        break;
      case L4Checksum::kBad: return drop(counters_->rx_bad_checksum);
    }
  }

  // lwIP gets the IP packet as a chain of pbufs that point into the frames:
  // the Ethernet header was checked above, and lwIP's ethernet_input only
  // handles IP when its own ARP is compiled in. Each pbuf gives its frame
  // back when lwIP (or the application) frees it.
  struct pbuf* head = nullptr;
  for (uint32_t i = 0; i < count; ++i) {
    auto* r = static_cast<RxPbuf*>(f[i].scratch);
    r->custom.custom_free_function = rx_pbuf_free;
    r->owner = this;
    r->token = f[i].token;
    uint8_t* from = i == 0 ? f[0].data + 14 : f[i].data;
    uint16_t len = uint16_t(i == 0 ? f[0].len - 14 : f[i].len);
    struct pbuf* p = pbuf_alloced_custom(PBUF_RAW, len, PBUF_REF, &r->custom, from, len);
    if (head) pbuf_cat(head, p);
    else head = p;
  }
  ++counters_->rx_frames;
  if (count > 1) ++counters_->rx_multi_frame;
  if (nif_.input(head, &nif_) != ERR_OK) pbuf_free(head);
}

// ---- transmit ----

err_t LinkNetif::output_cb(struct netif* n, struct pbuf* p, const ip4_addr_t* dst) {
  return static_cast<LinkNetif*>(n->state)->output(p, ip4_addr_get_u32(dst));
}

err_t LinkNetif::linkoutput_cb(struct netif* n, struct pbuf* p) {
  return static_cast<LinkNetif*>(n->state)->linkoutput(p);
}

bool LinkNetif::next_hop(uint32_t dst, uint32_t* hop) {
  if (((dst ^ address_.addr) & address_.netmask) == 0) {
    *hop = dst;
    return true;
  }
  if (!kernel_ifindex_) {
    *hop = address_.gateway ? address_.gateway : dst;
    return true;
  }
  auto it = route_cache_.find(dst);
  if (it != route_cache_.end()) {
    *hop = it->second;
    return true;
  }
  Route r;
  ++counters_->route_lookups;
  if (routes_.lookup(dst, &r) != 0) return false;
  *hop = r.gateway ? r.gateway : dst;
  route_cache_[dst] = *hop;
  return true;
}

bool LinkNetif::broadcast(uint32_t dst) const {
  return dst == 0xffffffffu ||
         (address_.netmask != 0xffffffffu && (dst & ~address_.netmask) == ~address_.netmask &&
          ((dst ^ address_.addr) & address_.netmask) == 0);
}

err_t LinkNetif::output(struct pbuf* p, uint32_t dst) {
  if (dont_fragment_ && p->len >= 20) {
    // (Before a packet waits for its neighbour: it keeps the bit.)
    auto* ip = static_cast<uint8_t*>(p->payload);
    const uint32_t ihl = (ip[0] & 0x0fu) * 4;
    if ((ip[6] & 0x40) == 0 && ihl >= 20 && p->len >= ihl) {
      ip[6] |= 0x40;
      ip[10] = ip[11] = 0;
      const uint16_t sum = uint16_t(~csum_fold(csum_partial(ip, ihl)));
      memcpy(ip + 10, &sum, 2);
    }
  }
  struct eth_addr mac;
  uint32_t host_dst = ntohl(dst);
  if (broadcast(dst)) {
    memset(mac.addr, 0xff, 6);
  } else if ((host_dst >> 28) == 0xe) {
    // IPv4 multicast: 01:00:5e followed by the group's low 23 bits.
    mac.addr[0] = 0x01;
    mac.addr[1] = 0x00;
    mac.addr[2] = 0x5e;
    mac.addr[3] = uint8_t((host_dst >> 16) & 0x7f);
    mac.addr[4] = uint8_t(host_dst >> 8);
    mac.addr[5] = uint8_t(host_dst);
  } else {
    uint32_t hop;
    if (!next_hop(dst, &hop)) return ERR_RTE;
    if (!neighbours_.lookup(hop, mac.addr, clock_ms_)) {
      hold(p, hop);
      neighbours_.resolve(hop, clock_ms_);
      return ERR_OK;
    }
  }
  return ethernet_output(&nif_, p, reinterpret_cast<const struct eth_addr*>(nif_.hwaddr), &mac,
                         ETHTYPE_IP);
}

err_t LinkNetif::linkoutput(struct pbuf* p) {
  // A packet lwIP built in one of our transmit frames goes as it is.
  if (!p->next && (p->flags & PBUF_FLAG_IS_CUSTOM) &&
      reinterpret_cast<struct pbuf_custom*>(p)->custom_free_function == tx_pbuf_free) {
    auto* t = reinterpret_cast<TxPbuf*>(p);
    auto* at = static_cast<uint8_t*>(p->payload);
    if (!t->sent && at >= t->start) {
      const TxChecksum csum = finish_tcp_checksum(at, p->tot_len);
      if (!link_->tx_send(t->token + uint64_t(at - t->start), p->tot_len, csum)) {
        ++counters_->tx_link_full;
        return ERR_MEM;
      }
      if (csum.start) ++counters_->tx_checksum_offload;
      t->sent = true;
      ++counters_->tx_frames;
      ++counters_->tx_zero_copy;
      if (tx_tap_ || tx_watch_) tap_tx(at, p->tot_len);
      return ERR_OK;
    }
  }
  // A TCP segment whose data was read into one of our transmit frames
  // (alloc_tcp_data_pbuf): the headers go in front of the data, and the
  // frame is sent from where it lies and kept for a retransmission. A frame
  // whose last send has not completed (a retransmission that quick) is
  // copied, as is a segment lwIP has chained more data to.
  if (struct pbuf* d = p->next; d && !d->next && p->len <= kSegmentHeadroom &&
                                (d->flags & PBUF_FLAG_IS_CUSTOM) &&
                                reinterpret_cast<struct pbuf_custom*>(d)->custom_free_function ==
                                    tcp_data_free) {
    auto* t = reinterpret_cast<TxPbuf*>(d);
    auto* at = static_cast<uint8_t*>(d->payload) - p->len;
    if (at >= t->start && !link_->tx_kept_busy(t->token)) {
      memcpy(at, p->payload, p->len);
      const TxChecksum csum = finish_tcp_checksum(at, p->tot_len);
      if (!link_->tx_send_kept(t->token + uint64_t(at - t->start), p->tot_len, csum)) {
        ++counters_->tx_link_full;
        return ERR_MEM;
      }
      if (csum.start) ++counters_->tx_checksum_offload;
      ++counters_->tx_frames;
      ++counters_->tx_zero_copy;
      counters_->tx_zero_copy_bytes += d->len;
      if (tx_tap_ || tx_watch_) tap_tx(at, p->tot_len);
      return ERR_OK;
    }
  }
  uint64_t token;
  uint32_t room;
  uint8_t* frame = link_->tx_frame(&token, &room);
  if (!frame) {
    ++counters_->tx_no_frame;
    return ERR_MEM;
  }
  tx_in_hand_ = token;  // (recover_frames_in_hand)
  if (p->tot_len > room) {
    tx_in_hand_ = kNoFrame;
    link_->release(token);
    return ERR_BUF;
  }
  if (!p->next) {
    memcpy(frame, p->payload, p->len);
  } else {
    pbuf_copy_partial(p, frame, p->tot_len, 0);
  }
  counters_->tx_copy_bytes += p->tot_len;
  const TxChecksum csum = finish_tcp_checksum(frame, p->tot_len);
  tx_in_hand_ = kNoFrame;  // (before the ring has it: a death between leaks it, never frees it twice)
  if (!link_->tx_send(token, p->tot_len, csum)) {
    link_->release(token);
    ++counters_->tx_link_full;
    return ERR_MEM;
  }
  if (csum.start) ++counters_->tx_checksum_offload;
  ++counters_->tx_frames;
  if (tx_tap_ || tx_watch_) tap_tx(frame, p->tot_len);
  return ERR_OK;
}

// The checksum is left to the link where it can complete it (AF_XDP copy
// mode: the kernel's skb, CHECKSUM_PARTIAL): no pass over the payload here,
// and a veth peer's kernel trusts it without one either. Elsewhere it is
// computed over the frame just written (still in cache), once per
// transmission: lwIP's checksum on copy (one sum per segment, kept for
// retransmissions) would be wasted wherever the link completes it.
TxChecksum LinkNetif::finish_tcp_checksum(uint8_t* frame, uint32_t len) {
  if (len < 14 + 20 + 20 || ((frame[12] << 8) | frame[13]) != kEthIp) return {};
  uint8_t* ip = frame + 14;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  const uint32_t tot = (uint32_t(ip[2]) << 8) | ip[3];
  if (ip[9] != IPPROTO_TCP || ihl < 20 || tot < ihl + 20 || 14 + tot > len) return {};
  // (lwIP never cuts a TCP segment into IP fragments: its MSS fits the MTU.
  // Were it to, no fragment holds the whole segment to sum: left alone,
  // rather than a later fragment's payload overwritten at the field.)
  if ((ip[6] & 0x3f) || ip[7]) return {};
  uint32_t saddr, daddr;
  memcpy(&saddr, ip + 12, 4);
  memcpy(&daddr, ip + 16, 4);
  uint8_t* tcp = ip + ihl;
  const uint64_t pseudo = csum_pseudo(saddr, daddr, IPPROTO_TCP, uint16_t(tot - ihl));
  if (link_->tx_checksum_offload()) {
    const uint16_t partial = csum_fold(pseudo);
    memcpy(tcp + 16, &partial, 2);
    return TxChecksum{uint16_t(14 + ihl), 16};
  }
  tcp[16] = tcp[17] = 0;
  const uint16_t sum = uint16_t(~csum_fold(csum_partial(tcp, tot - ihl, pseudo)));
  memcpy(tcp + 16, &sum, 2);
  return {};
}

void LinkNetif::tap_tx(const uint8_t* frame, uint32_t len) {
  timespec now;
  read_clock(&now);
  if (tx_tap_) tx_tap_(tx_tap_ctx_, frame, len, now);
  if (tx_watch_) tx_watch_(tx_watch_ctx_, frame, len, now);
}

// ---- neighbour resolution ----

void LinkNetif::hold(struct pbuf* p, uint32_t hop) {
  if (held_.size() >= kMaxHeld) {
    pbuf_free(held_.front().p);
    held_.erase(held_.begin());
    ++counters_->held_dropped;
  }
  // A packet that points into memory its sender will reuse must be copied;
  // one we can keep a reference to is kept as is.
  struct pbuf* q = p;
  if (PBUF_NEEDS_COPY(p)) {
    q = pbuf_clone(PBUF_LINK, PBUF_RAM, p);
    if (!q) {
      ++counters_->held_dropped;
      return;
    }
  } else {
    pbuf_ref(q);
  }
  Held h{hop, q, clock_ms_};
  if (tx_tap_ && tx_held_) {
    h.tap = tx_tap_;
    h.tap_ctx = tx_tap_ctx_;
    h.cookie = tx_held_(tx_tap_ctx_);
  }
  held_.push_back(h);
  ++counters_->held;
}

void LinkNetif::send_held() {
  size_t kept = 0;
  for (size_t i = 0; i < held_.size(); ++i) {
    struct eth_addr mac;
    Held h = held_[i];
    if (neighbours_.lookup(h.hop, mac.addr, clock_ms_)) {
      // A packet held while a tap watched its send: the tap sees it leave
      // now (transmit stamps of a datagram that waited for ARP).
      const TxTap tap = tx_tap_;
      void* const tap_ctx = tx_tap_ctx_;
      tx_tap_ = h.tap;
      tx_tap_ctx_ = h.tap_ctx;
      flushing_held_ = true;
      held_cookie_ = h.cookie;
      ethernet_output(&nif_, h.p, reinterpret_cast<const struct eth_addr*>(nif_.hwaddr), &mac,
                      ETHTYPE_IP);
      tx_tap_ = tap;
      tx_tap_ctx_ = tap_ctx;
      flushing_held_ = false;
      pbuf_free(h.p);
    } else {
      held_[kept++] = h;
    }
  }
  held_.resize(kept);
}

void LinkNetif::kernel_events() {
  if (!kernel_ifindex_) return;
  struct Ctx {
    LinkNetif* self;
  } ctx{this};
  events_.drain(
      [](const nlmsghdr* m, void* c) {
        auto* self = static_cast<Ctx*>(c)->self;
        if (m->nlmsg_type == RTM_NEWNEIGH || m->nlmsg_type == RTM_DELNEIGH) {
          self->neighbours_.apply(m);
        } else if (m->nlmsg_type == RTM_NEWROUTE || m->nlmsg_type == RTM_DELROUTE) {
          self->route_cache_.clear();
        }
      },
      &ctx);
  if (neighbours_.take_changed() && !held_.empty()) send_held();
}

void LinkNetif::periodic(uint64_t now_ms) {
  clock_ms_ = now_ms;
  if (!held_.empty()) {
    send_held();
    size_t kept = 0;
    for (Held& h : held_) {
      if (now_ms - h.since_ms > kHoldMs) {
        pbuf_free(h.p);
        ++counters_->held_dropped;
      } else {
        held_[kept++] = h;
      }
    }
    held_.resize(kept);
  }
  if (now_ms - last_refresh_ms_ >= kRefreshMs) {
    last_refresh_ms_ = now_ms;
    neighbours_.refresh_used(now_ms, kRefreshMs);
  }
}

}  // namespace xdpload::stack
