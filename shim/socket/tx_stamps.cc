#include "shim/socket/tx_stamps.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/socket/cmsg_writer.h"
#include "shim/socket/user_memory.h"

namespace xdpload::shim {

namespace {
constexpr uint32_t kTx = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_SCHED;
// Linux counts an error-queue entry's whole buffer against the receive
// buffer; a frame's worth of overhead stands for it here.
constexpr size_t kEntryOverhead = 512;
}  // namespace

bool TxStamps::served_flags(uint32_t f) {
  // Hardware transmit stamps and the older OPT_TX_SWHW pairing are not
  // served.
  return !(f & (SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_OPT_TX_SWHW));
}

bool TxStamps::wanted(uint32_t f) { return f & kTx; }

void TxStamps::flags_changed(uint32_t old_flags, uint32_t new_flags) {
  if ((new_flags & SOF_TIMESTAMPING_OPT_ID) && !(old_flags & SOF_TIMESTAMPING_OPT_ID)) key_ = 0;
}

void TxStamps::frame_sent(const uint8_t* frame, uint32_t len, const timespec& stamp, size_t limit) {
  if (!armed_) return;
  armed_ = false;  // a fragmented datagram: its first frame carries the stamps
  const uint32_t key = (flags_ & SOF_TIMESTAMPING_OPT_ID) ? key_++ : 0;
  stamp_frame(flags_, key, frame, len, stamp, limit);
}

uint64_t TxStamps::hold() {
  if (!armed_) return 0;
  armed_ = false;
  const uint32_t key = (flags_ & SOF_TIMESTAMPING_OPT_ID) ? key_++ : 0;
  return (uint64_t(flags_) << 32) | key;
}

void TxStamps::held_frame_sent(uint64_t cookie, const uint8_t* frame, uint32_t len,
                               const timespec& stamp, size_t limit) {
  if (cookie) stamp_frame(uint32_t(cookie >> 32), uint32_t(cookie), frame, len, stamp, limit);
}

void TxStamps::stamp_frame(uint32_t flags, uint32_t key, const uint8_t* frame, uint32_t len,
                           const timespec& stamp, size_t limit) {
  const bool tsonly = flags & SOF_TIMESTAMPING_OPT_TSONLY;
  // The scheduler's stamp comes before the driver's, as on Linux.
  if (flags & SOF_TIMESTAMPING_TX_SCHED) add(SCM_TSTAMP_SCHED, key, stamp, frame, len, tsonly, true, limit);
  if (flags & SOF_TIMESTAMPING_TX_SOFTWARE) add(SCM_TSTAMP_SND, key, stamp, frame, len, tsonly, true, limit);
}

void TxStamps::add(uint32_t info, uint32_t key, const timespec& stamp, const uint8_t* data, uint32_t len,
                   bool tsonly, bool is_frame, size_t limit) {
  size_t size = (tsonly ? 0 : len) + kEntryOverhead;
  if (bytes_ + size >= limit) return;  // the queue is full: dropped, as Linux drops it
  Entry e{stamp, info, key, is_frame && !tsonly, false, {}};
  if (!tsonly) e.frame.assign(data, data + len);
  queue_.push_back(std::move(e));
  bytes_ += size;
}

void TxStamps::add_stats(uint32_t info, uint32_t key, const timespec& stamp, const uint8_t* stats,
                         uint32_t len, size_t limit) {
  size_t size = len + kEntryOverhead;
  if (bytes_ + size >= limit) return;
  Entry e{stamp, info, key, false, true, {}};
  e.frame.assign(stats, stats + len);
  queue_.push_back(std::move(e));
  bytes_ += size;
}

ssize_t TxStamps::take(msghdr* msg, const RxCmsgOptions& o, int ifindex, bool v6) {
  if (queue_.empty()) return -EAGAIN;
  Entry e = std::move(queue_.front());
  queue_.pop_front();
  bytes_ -= e.frame.size() + kEntryOverhead;
  // The looped-back frame, cut to the buffers given.
  size_t off = 0;
  for (size_t i = 0; i < msg->msg_iovlen && off < e.frame.size(); ++i) {
    size_t n = std::min(msg->msg_iov[i].iov_len, e.frame.size() - off);
    // (ip_recv_error: an entry whose copy faults is taken all the same.)
    if (n && copy_to_user(msg->msg_iov[i].iov_base, e.frame.data() + off, n) < n) return -EFAULT;
    off += n;
  }
  msg->msg_flags = MSG_ERRQUEUE | (off < e.frame.size() ? MSG_TRUNC : 0);
  msg->msg_namelen = 0;  // no address for a timestamp (ip_recv_error)
  CmsgWriter w(msg);
  if (e.opt_stats) put_timestamp_cmsgs(w, o, e.stamp, true, e.frame.data(), e.frame.size());
  else put_timestamp_cmsgs(w, o, e.stamp, true);
  // An AF_INET6 socket's entries are ipv6_recv_error's: IPV6_RECVERR with a
  // sockaddr_in6 offender (the IPv4 source v4-mapped).
  struct {
    sock_extended_err ee;
    sockaddr_in offender;
  } err{};
  struct {
    sock_extended_err ee;
    sockaddr_in6 offender;
  } err6{};
  err.ee.ee_errno = ENOMSG;
  err.ee.ee_origin = SO_EE_ORIGIN_TIMESTAMPING;
  err.ee.ee_info = e.info;
  err.ee.ee_data = e.key;
  err6.ee = err.ee;
  // OPT_CMSG (ipv4_datagram_support_cmsg): an entry holding a frame the
  // link sent (not OPT_TSONLY's, not an acknowledgement's segment data)
  // names its source as the offender and gets the IP messages the socket
  // asked for, read from that frame; IP_PKTINFO's ifindex is the egress
  // device's.
  constexpr size_t kEth = 14;
  if ((o.tsflags & SOF_TIMESTAMPING_OPT_CMSG) && e.is_frame && e.frame.size() >= kEth + 20) {
    const uint8_t* ip = e.frame.data() + kEth;
    in_pktinfo info{};
    info.ipi_ifindex = ifindex;
    memcpy(&info.ipi_spec_dst, ip + 12, 4);
    memcpy(&info.ipi_addr, ip + 16, 4);
    err.offender.sin_family = AF_INET;
    err.offender.sin_addr = info.ipi_spec_dst;
    err6.offender.sin6_family = AF_INET6;
    err6.offender.sin6_addr.s6_addr[10] = err6.offender.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&err6.offender.sin6_addr.s6_addr[12], &info.ipi_spec_dst, 4);
    RxMeta m;
    m.dst_ip = info.ipi_addr.s_addr;
    m.ttl = ip[8];
    m.tos = ip[1];
    const size_t ihl = (ip[0] & 0xfu) * 4;
    if (e.frame.size() >= kEth + ihl + 4) m.dst_port = uint16_t((ip[ihl + 2] << 8) | ip[ihl + 3]);
    put_ip_cmsgs(w, o, info, m);
  }
  if (v6) w.put(IPPROTO_IPV6, IPV6_RECVERR, &err6, sizeof err6);
  else w.put(IPPROTO_IP, IP_RECVERR, &err, sizeof err);
  w.finish();
  return ssize_t(off);
}

void TxStamps::clear() {
  queue_.clear();
  bytes_ = 0;
}

}  // namespace xdpload::shim
