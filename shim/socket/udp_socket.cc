#include "shim/socket/udp_socket.h"

#include <linux/net_tstamp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "rings/stage_trace.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/sockaddr_util.h"
#include "shim/socket/user_memory.h"
#include "shim/stats/stat_segment.h"

extern "C" {
#include "lwip/igmp.h"
#include "lwip/ip.h"
#include "lwip/prot/ip4.h"
#include "lwip/stats.h"
#include "lwip/udp.h"
}

namespace xdpload::shim {

UdpSocket::~UdpSocket() {
  for (Datagram& d : queue) pbuf_free(d.data);
}

void UdpSocket::on_recv(void* arg, udp_pcb*, pbuf* data, const void* addr, uint16_t port) {
  auto* s = static_cast<UdpSocket*>(arg);
  Runtime& rt = Runtime::get();
  // The receive buffer bounds what waits, as SO_RCVBUF does on Linux.
  if (s->queued_bytes + data->tot_len > size_t(s->opt.rcvbuf)) {
    ++rt.counters().udp_rx_dropped;
    ++s->drops;
    pbuf_free(data);
    return;
  }
  // What the control messages need, while the IP header is at hand.
  RxMeta meta;
  const ip_hdr* ih = ip4_current_header();
  meta.stamp = rt.stack()->driver().rx_stamp();
  meta.hw_stamp = rt.stack()->driver().rx_hw_stamp();
  // SCM_TIMESTAMPING_PKTINFO's length: from the Ethernet header to the end
  // of the UDP datagram (what the skb holds from its MAC header once IP and
  // UDP trimmed it; a NIC's padding is not counted).
  meta.frame_len = 14 + IPH_HL_BYTES(ih) + 8 + data->tot_len;
  meta.dst_ip = ip4_addr_get_u32(ip4_current_dest_addr());
  meta.dst_port = s->local.port;
  meta.ttl = IPH_TTL(ih);
  meta.tos = IPH_TOS(ih);
  meta.drops = s->rx_cmsg.rxq_ovfl ? s->drops : 0;  // as Linux: read when queued, if asked then
  // A datagram that has to wait behind others is copied out of its frame,
  // as the kernel's copybreak would: a slow reader would otherwise hold a
  // whole UMEM frame per datagram (4 KB for 64 bytes), and the fill rings
  // run dry, dropping datagrams at the NIC, long before its receive buffer
  // is full. One arriving to an empty queue is usually read at once, so a
  // reader that keeps up copies nothing more than before.
  if (!s->queue.empty() || rt.frames_short()) {
    if (pbuf* copy = pbuf_clone(PBUF_RAW, PBUF_RAM, data)) {
      pbuf_free(data);
      data = copy;
      ++rt.counters().rx_copies;
    }
  }
  const auto* from = static_cast<const ip4_addr_t*>(addr);
  s->queue.push_back(Datagram{data, SockAddr{ip4_addr_get_u32(from), port}, meta});
  s->queued_bytes += data->tot_len;
  s->set_queued_count();
  s->notify();
  trace::mark(trace::kRecvQueued);
}

bool UdpSocket::destination_via_stack(const SockAddr& to) {
  const uint64_t key = uint64_t(to.ip) << 32 | uint64_t(to.port) << 16 | 1;
  const uint64_t now = stack::now_ms();
  const uint64_t last = __atomic_load_n(&last_destination, __ATOMIC_RELAXED);
  if ((last & ~uint64_t(2)) == key &&
      now < __atomic_load_n(&last_destination_until_ms, __ATOMIC_RELAXED))
    return last & 2;
  const bool via = Runtime::get().accelerate_destination(to.ip, to.port, Role::UdpSender);
  __atomic_store_n(&last_destination, key | (via ? 2 : 0), __ATOMIC_RELAXED);
  __atomic_store_n(&last_destination_until_ms, now + Runtime::kRouteRecheckMs, __ATOMIC_RELAXED);
  return via;
}

int UdpSocket::bind_pcb() {
  pcb = udp_new();
  if (!pcb) return -ENOBUFS;
  ip_set_option(pcb, SOF_REUSEADDR);
  // A SO_REUSEPORT group's member: its unicast datagrams are shared among
  // the group by a hash (lwIP patch 0019), as Linux does.
  if (opt.reuseport) ip_set_option(pcb, SOF_REUSEPORT);
  ip4_addr_t ip;
  ip.addr = local.ip;
  if (udp_bind(pcb, &ip, local.port) != ERR_OK) {
    udp_remove(pcb);
    pcb = nullptr;
    return -EADDRINUSE;
  }
  if (int rc = Runtime::get().port_acquire(PortKey{IPPROTO_UDP, local.port}, fd); rc < 0) {
    udp_remove(pcb);
    pcb = nullptr;
    return rc;
  }
  udp_recv(pcb, reinterpret_cast<udp_recv_fn>(on_recv), this);
  apply_option(0, 0);
  return 0;
}

int UdpSocket::open() {
  if (int rc = bind_pcb(); rc < 0) return rc;
  Runtime& rt = Runtime::get();
  accelerated = true;
  rt.track(this);
  count_stamp_user(true);
  ++rt.counters().accelerated_udp;
  return 0;
}

void UdpSocket::apply_option(int, int) {
  if (!pcb) return;
  if (opt.broadcast) ip_set_option(pcb, SOF_BROADCAST);
  else ip_reset_option(pcb, SOF_BROADCAST);
  pcb->tos = u8_t(opt.tos);
  if (opt.ttl) pcb->ttl = u8_t(opt.ttl);
  udp_set_multicast_ttl(pcb, u8_t(opt.mcast_ttl));
}

bool UdpSocket::set_rx_option(int level, int name, const void* value, socklen_t len) {
  const uint32_t old_flags = rx_cmsg.tsflags;
  if (!Socket::set_rx_option(level, name, value, len)) return false;
  tx_stamps.flags_changed(old_flags, rx_cmsg.tsflags);
  return true;
}

int UdpSocket::get_stamp(bool usec, int64_t out[2]) {
  int rc = shim::get_stamp(&rx_cmsg, &sk_stamp_ns, usec, out);
  if (accelerated) count_stamp_user(true);
  return rc;
}

int UdpSocket::connect(const SockAddr& to) {
  ip4_addr_t ip;
  ip.addr = to.ip;
  if (udp_connect(pcb, &ip, to.port) != ERR_OK) return -ENETUNREACH;
  remote = to;
  connected = true;
  return 0;
}

int UdpSocket::disconnect(const SockAddr& now) {
  if (pcb) udp_disconnect(pcb);
  remote = SockAddr{};
  connected = false;
  if (pcb && now.port != local.port) {
    udp_remove(pcb);
    pcb = nullptr;
    Runtime::get().port_release(PortKey{IPPROTO_UDP, local.port});
  }
  local = now;
  return 0;
}

int UdpSocket::shutdown(int how, int fd_now) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return -EINVAL;
  // The kernel twin too (through the caller's descriptor: the one the
  // socket was made with may be closed by now): what it holds (datagrams
  // from local senders, errors) then reads as the stack's does.
  libc::shutdown(fd_now, how);
  if (how != SHUT_WR) shut_rd = true;
  if (how != SHUT_RD) shut_wr = true;
  notify();
  return connected ? 0 : -ENOTCONN;
}

uint32_t UdpSocket::events() {
  uint32_t m = POLLOUT | POLLWRNORM;
  if (!queue.empty()) m |= POLLIN | POLLRDNORM;
  if (shut_rd) m |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (shut_rd && shut_wr) m |= POLLHUP;
  if (zc.pending || tx_stamps.pending() || kept_error) m |= POLLERR;
  return m;
}

void UdpSocket::stat_row(stats::SocketRow* row) const {
  *row = stats::SocketRow{};
  row->proto = IPPROTO_UDP;
  row->state = connected ? 1 /* TCP_ESTABLISHED */ : 7 /* TCP_CLOSE: "UNCONN" */;
  row->accelerated = 1;
  row->fd = descriptors.empty() ? -1 : descriptors.front().fd;
  row->local_ip = local.ip;
  row->local_port = local.port;
  row->remote_ip = remote.ip;
  row->remote_port = remote.port;
  row->rx_queue = uint32_t(queued_bytes);
}

int UdpSocket::next_datagram_bytes() const {
  return queue.empty() ? 0 : int(queue.front().data->tot_len);
}

void UdpSocket::on_frame_sent(void* ctx, const uint8_t* frame, uint32_t len, const timespec& stamp) {
  auto* s = static_cast<UdpSocket*>(ctx);
  // The error queue counts against the receive buffer, as on Linux.
  size_t room = size_t(s->opt.rcvbuf) > s->queued_bytes ? size_t(s->opt.rcvbuf) - s->queued_bytes : 0;
  stack::LinkNetif& driver = Runtime::get().stack()->driver();
  if (driver.flushing_held()) {
    // A datagram that waited for its neighbour leaves now.
    s->tx_stamps.held_frame_sent(driver.held_cookie(), frame, len, stamp, room);
    if (s->tx_stamps.pending()) s->notify();
    return;
  }
  s->tx_stamps.frame_sent(frame, len, stamp, room);
}

uint64_t UdpSocket::on_frame_held(void* ctx) { return static_cast<UdpSocket*>(ctx)->tx_stamps.hold(); }

int UdpSocket::parse_send_control(const msghdr* msg, SendControl* out) {
  if (!msg->msg_control || msg->msg_controllen < sizeof(cmsghdr)) return 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(msg)); c;
       c = CMSG_NXTHDR(const_cast<msghdr*>(msg), c)) {
    if (c->cmsg_len < sizeof(cmsghdr) || c->cmsg_len > msg->msg_controllen) return -EINVAL;
    const size_t data = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == SOL_SOCKET && (c->cmsg_type == 37 || c->cmsg_type == 65)) {
      uint32_t f;
      if (c->cmsg_len != CMSG_LEN(sizeof f)) return -EINVAL;
      memcpy(&f, CMSG_DATA(c), sizeof f);
      if (f & ~uint32_t(SOF_TIMESTAMPING_TX_RECORD_MASK)) return -EINVAL;
      out->tsflags = f;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      int v;
      if (data != sizeof v) return -EINVAL;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      if (v < 1 || v > 255) return -EINVAL;
      out->ttl = v;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      if (c->cmsg_len != CMSG_LEN(sizeof info)) return -EINVAL;
      memcpy(&info, CMSG_DATA(c), sizeof info);
      out->pktinfo_ifindex = info.ipi_ifindex;
      out->pktinfo_source = info.ipi_spec_dst.s_addr;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
      int v;
      if (data == sizeof v) memcpy(&v, CMSG_DATA(c), sizeof v);
      else if (data == 1) v = *CMSG_DATA(c);
      else return -EINVAL;
      if (v < 0 || v > 255) return -EINVAL;
      out->tos = v;
    }
  }
  return 0;
}

bool UdpSocket::send_direct(const iovec* iov, int iovcnt, size_t len, const SockAddr* to,
                            const SendControl* ctl) {
  // A socket bound to an address that is not the interface's gets lwIP's
  // error.
  stack::LinkNetif& driver = Runtime::get().stack()->driver();
  const uint32_t iface = driver.address().addr;
  const uint32_t local_ip = ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip));
  if (pcb->local_port == 0 || (pcb->flags & UDP_FLAGS_UDPLITE) ||
      (local_ip != 0 && local_ip != iface))
    return false;
  stack::LinkNetif::UdpHeaderFields h;
  h.src_ip = iface;
  h.src_port = pcb->local_port;
  if (to) {
    h.dst_ip = to->ip;
    h.dst_port = to->port;
  } else {
    h.dst_ip = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
    h.dst_port = pcb->remote_port;
  }
  if (h.dst_ip == 0 || h.dst_ip == iface) return false;
  h.ttl = ctl && ctl->ttl >= 0 ? u8_t(ctl->ttl) : pcb->ttl;
  h.tos = ctl && ctl->tos >= 0 ? u8_t(ctl->tos) : pcb->tos;
  h.checksum = (pcb->flags & UDP_FLAGS_NOCHKSUM) == 0;
  h.dont_fragment = dont_fragment();
  return driver.send_udp(h, iov, iovcnt, len);
}

bool UdpSocket::dont_fragment() const {
  // Linux's __ip_make_skb: DF always under DO and PROBE; under WANT (the
  // default) when the datagram fits the path MTU. The stack has no path
  // MTU discovery (the ICMP "fragmentation needed" reaches the kernel
  // twin): under WANT it sends without DF, as lwIP does, so that a router
  // with a smaller MTU fragments the datagram rather than drops it.
  return opt.pmtudisc == IP_PMTUDISC_DO || opt.pmtudisc == IP_PMTUDISC_PROBE;
}

bool UdpSocket::too_long(size_t len) const {
  // What fits in one IPv4 datagram: 65535 - 20 (IP) - 8 (UDP).
  if (len > 65507) return true;
  // Don't-fragment (IP_PMTUDISC_DO, _PROBE, _INTERFACE): a datagram larger
  // than the interface's MTU is refused, as Linux refuses it (the stack
  // would fragment it); the others go with DF (dont_fragment).
  return (opt.pmtudisc == IP_PMTUDISC_DO || opt.pmtudisc == IP_PMTUDISC_PROBE ||
          opt.pmtudisc == IP_PMTUDISC_INTERFACE) &&
         len + 28 > Runtime::get().iface().mtu;
}

bool UdpSocket::kernel_judges(size_t len) const {
  if (too_long(len)) return true;
  const size_t mtu = Runtime::get().iface().mtu;
  if (len + 28 <= mtu) return false;  // one frame: allocated whatever the buffer
  // __ip_append_data refuses a fragment once the fragments' memory passes
  // twice sk_sndbuf (opt.sndbuf: the value as getsockopt reads it). A
  // fragment's truesize is below a power of two above its frame plus
  // skb_shared_info, plus the sk_buff: an upper bound, so that every
  // datagram Linux would refuse goes to the kernel (and some it would
  // accept, which it then sends).
  const size_t per_fragment = (mtu - 20) & ~size_t(7);
  const size_t fragments = (len + 8 + per_fragment - 1) / per_fragment;
  size_t block = 1;
  while (block < mtu + 400) block <<= 1;
  return fragments * (block + 512) > 2 * size_t(opt.sndbuf);
}

ssize_t UdpSocket::send(const iovec* iov, int iovcnt, size_t len, const SockAddr* to,
                        const SendControl* ctl) {
  if (too_long(len)) return -EMSGSIZE;
  // Shut for writing: where Linux's allocation of the datagram fails.
  if (shut_wr) return -EPIPE;
  // The datagram is copied whole, or not sent (udp_sendmsg: EFAULT).
  for (int i = 0; i < iovcnt; ++i)
    if (readable_prefix(iov[i].iov_base, iov[i].iov_len) < iov[i].iov_len) return -EFAULT;
  // This datagram's own record flags, if the call gave them.
  uint32_t tsflags = rx_cmsg.tsflags;
  if (ctl && ctl->tsflags >= 0)
    tsflags = (tsflags & ~uint32_t(SOF_TIMESTAMPING_TX_RECORD_MASK)) | uint32_t(ctl->tsflags);
  const bool stamps = TxStamps::wanted(tsflags);
  // Transmit stamps are taken where lwIP hands the frame to the driver.
  if (!stamps && send_direct(iov, iovcnt, len, to, ctl)) {
    Runtime::get().sent_datagram();
    return ssize_t(len);
  }
  // Built in a transmit frame when it fits one (no copy after the one from
  // the caller's buffer, no allocation), else in an ordinary pbuf.
  pbuf* p = Runtime::get().stack()->driver().alloc_tx_pbuf(u16_t(len));
  if (!p) p = pbuf_alloc(PBUF_TRANSPORT, u16_t(len), PBUF_RAM);
  if (!p) return -ENOBUFS;
  size_t off = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (!iov[i].iov_len) continue;  // (its base may be NULL: memcpy must not see it)
    pbuf_take_at(p, iov[i].iov_base, u16_t(iov[i].iov_len), u16_t(off));
    off += iov[i].iov_len;
  }
  // This datagram's own TTL and TOS, if the call gave them.
  const u8_t saved_ttl = pcb->ttl, saved_tos = pcb->tos;
  if (ctl) {
    if (ctl->ttl >= 0) pcb->ttl = u8_t(ctl->ttl);
    if (ctl->tos >= 0) pcb->tos = u8_t(ctl->tos);
  }
  // Transmit stamps: the driver shows us the frame it hands to the ring.
  stack::LinkNetif& driver = Runtime::get().stack()->driver();
  if (stamps) {
    tx_stamps.expect(tsflags);
    driver.set_tx_tap(on_frame_sent, this, on_frame_held);
  }
  err_t err;
  driver.set_dont_fragment(dont_fragment());
  if (to) {
    ip4_addr_t ip;
    ip.addr = to->ip;
    err = udp_sendto(pcb, p, &ip, to->port);
  } else {
    err = udp_send(pcb, p);
  }
  driver.set_dont_fragment(false);
  if (stamps) {
    driver.set_tx_tap(nullptr, nullptr);
    tx_stamps.done();
    if (tx_stamps.pending()) notify();
  }
  pcb->ttl = saved_ttl;
  pcb->tos = saved_tos;
  pbuf_free(p);
  trace::mark(trace::kSendBuilt);
  Runtime::get().sent_datagram();
  switch (err) {
    case ERR_OK: return ssize_t(len);
    case ERR_RTE: return -ENETUNREACH;
    case ERR_VAL: return -EACCES;  // broadcast without SO_BROADCAST
    case ERR_MEM: return -ENOBUFS;
    default: return -EIO;
  }
}

ssize_t UdpSocket::recv_from_stack(const iovec* iov, int iovcnt, int flags, sockaddr* from,
                                   socklen_t* fromlen, int* msg_flags, msghdr* msg) {
  if (queue.empty()) return -EAGAIN;
  Datagram d = queue.front();
  if (msg) {
    msg->msg_flags = 0;
    if (rx_cmsg.any()) {
      Runtime& rt = Runtime::get();
      put_rx_cmsgs(msg, rx_cmsg, d.meta, RxInterface{rt.iface().ifindex, rt.iface().addr});
    } else {
      msg->msg_controllen = 0;
    }
  }
  size_t off = 0;
  bool faulted = false;
  for (int i = 0; i < iovcnt && off < d.data->tot_len && !faulted; ++i) {
    size_t n = std::min(iov[i].iov_len, size_t(d.data->tot_len - off));
    faulted = pbuf_to_user(d.data, iov[i].iov_base, n, off) < n;
    off += n;
  }
  size_t full = d.data->tot_len;
  auto take_front = [&] {
    queue.pop_front();
    queued_bytes -= full;
    set_queued_count();
    pbuf_free(d.data);
  };
  if (faulted) {
    // udp_recvmsg: a copy that faults drops the datagram (counted as an
    // input error), unless it was only peeked at.
    if (!(flags & MSG_PEEK)) {
      take_front();
      UDP_STATS_INC(udp.err);
    }
    return -EFAULT;
  }
  if (msg_flags) *msg_flags = (msg ? msg->msg_flags : 0) | (off < full ? MSG_TRUNC : 0);
  // (The address goes to the program last, as move_addr_to_user does: a
  // place it cannot be written is EFAULT, the datagram read.)
  const bool from_written = !(from && fromlen) || write_sockaddr(d.from, from, fromlen, v6);
  if (!(flags & MSG_PEEK)) {
    note_read_stamp(rx_cmsg, d.meta, &sk_stamp_ns);
    take_front();
  }
  if (!from_written) return -EFAULT;
  return ssize_t((flags & MSG_TRUNC) ? full : off);
}

pbuf* UdpSocket::take_datagram(int max_pieces, int* pieces, SockAddr* from) {
  *pieces = 0;
  if (queue.empty()) return nullptr;
  Datagram d = queue.front();
  *pieces = int(pbuf_clen(d.data));
  if (*pieces > max_pieces) return nullptr;
  *from = d.from;
  note_read_stamp(rx_cmsg, d.meta, &sk_stamp_ns);
  queue.pop_front();
  queued_bytes -= d.data->tot_len;
  set_queued_count();
  return d.data;
}

int UdpSocket::join_group(uint32_t group, uint32_t iface_addr, bool join) {
  (void)iface_addr;
  if (!pcb) return 0;
  Runtime& rt = Runtime::get();
  ip4_addr_t g;
  g.addr = group;
  err_t e = join ? igmp_joingroup_netif(rt.stack()->nif(), &g)
                 : igmp_leavegroup_netif(rt.stack()->nif(), &g);
  if (e != ERR_OK) return -EADDRNOTAVAIL;
  groups += join ? 1 : (groups > 0 ? -1 : 0);
  return 0;
}

void UdpSocket::release() {
  count_stamp_user(false);
  // Datagrams still waiting for their neighbour leave without stamps.
  if (Runtime::get().stack()) Runtime::get().stack()->driver().forget_tap_ctx(this);
  if (pcb) {
    udp_remove(pcb);
    pcb = nullptr;
    Runtime::get().port_release(PortKey{IPPROTO_UDP, local.port});
  }
  for (Datagram& d : queue) pbuf_free(d.data);
  queue.clear();
  queued_bytes = 0;
  set_queued_count();
  tx_stamps.clear();
}

}  // namespace xdpload::shim
