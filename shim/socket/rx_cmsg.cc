#include "shim/socket/rx_cmsg.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "shim/clock/tsc_clock.h"
#include "shim/socket/cmsg_writer.h"
#include "shim/intercept/libc.h"

namespace xdpload::shim {

namespace {

// The option names by layout, whatever glibc's SO_TIMESTAMP maps to: the
// kernel answers in the layout of the name that was set.
constexpr int kTimestampOld = 29, kTimestampNsOld = 35, kTimestampingOld = 37;
constexpr int kTimestampNew = 63, kTimestampNsNew = 64, kTimestampingNew = 65;
// Newer than the headers of some distributions (Linux 6.12).
constexpr uint32_t kOptRxFilter = 1u << 17;
#ifndef SCM_TIMESTAMPING_PKTINFO
#define SCM_TIMESTAMPING_PKTINFO 58
#endif

int int_value(const void* v, socklen_t len) {
  int x = 0;
  if (v && len >= sizeof(int)) memcpy(&x, v, sizeof x);
  else if (v && len > 0) x = *static_cast<const unsigned char*>(v);
  return x;
}

struct Pair64 {
  int64_t sec, frac;
};

timespec now_realtime() {
  timespec ts;
  if (!served_clock().now(CLOCK_REALTIME, &ts)) libc::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// SO_TIMESTAMP or SO_TIMESTAMPNS, in the layout of the name that was set.
void put_so_timestamp(CmsgWriter& w, const RxCmsgOptions& o, timespec stamp) {
  if (!o.rcvtstampns) {
    Pair64 tv{stamp.tv_sec, stamp.tv_nsec / 1000};
    w.put(SOL_SOCKET, o.tstamp_new ? kTimestampNew : kTimestampOld, &tv, sizeof tv);
  } else {
    Pair64 ts{stamp.tv_sec, stamp.tv_nsec};
    w.put(SOL_SOCKET, o.tstamp_new ? kTimestampNsNew : kTimestampNsOld, &ts, sizeof ts);
  }
}

}  // namespace

bool RxCmsgOptions::wants_stamps() const {
  return rcvtstamp || sock_timestamp || (tsflags & SOF_TIMESTAMPING_RX_SOFTWARE);
}

bool RxCmsgOptions::wants_hw_stamps() const { return tsflags & SOF_TIMESTAMPING_RAW_HARDWARE; }

void note_read_stamp(const RxCmsgOptions& o, const RxMeta& m, int64_t* sk_stamp_ns) {
  const int64_t kt = int64_t(m.stamp.tv_sec) * 1000000000 + m.stamp.tv_nsec;
  const uint32_t f = o.tsflags;
  const bool cmsg_path =
      o.rcvtstamp || o.rxq_ovfl || (f & (SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RAW_HARDWARE));
  if (cmsg_path) {
    // The stamp went into a message instead, or is kept.
    const bool hw = m.hw_stamp.tv_sec || m.hw_stamp.tv_nsec;
    const bool in_message = o.rcvtstamp || (f & SOF_TIMESTAMPING_RX_SOFTWARE) ||
                            (kt && (f & SOF_TIMESTAMPING_SOFTWARE)) ||
                            (hw && (f & SOF_TIMESTAMPING_RAW_HARDWARE));
    if (!in_message) *sk_stamp_ns = kt;
  } else if (o.sock_timestamp) {
    *sk_stamp_ns = kt;
  } else if (*sk_stamp_ns == kNoStampYet) {
    *sk_stamp_ns = 0;
  }
}

int get_stamp(RxCmsgOptions* o, int64_t* sk_stamp_ns, bool usec, int64_t out[2]) {
  o->sock_timestamp = true;
  if (*sk_stamp_ns == kNoStampYet) return -ENOENT;
  if (*sk_stamp_ns == 0) {
    timespec t = now_realtime();
    *sk_stamp_ns = int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
  }
  out[0] = *sk_stamp_ns / 1000000000;
  out[1] = *sk_stamp_ns % 1000000000;
  if (usec) out[1] /= 1000;
  return 0;
}

bool RxCmsgOptions::any() const {
  return rcvtstamp || (tsflags & (SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RAW_HARDWARE)) ||
         rxq_ovfl || pktinfo || recvttl || recvtos || origdstaddr || ipv6_pktinfo;
}

bool RxCmsgOptions::apply(int level, int name, const void* value, socklen_t len) {
  const bool on = int_value(value, len) != 0;
  if (level == SOL_SOCKET) {
    switch (name) {
      // sock_set_timestamp(): on sets RCVTSTAMP, NS per the name, NEW per
      // the name; off clears both RCVTSTAMP and RCVTSTAMPNS.
      case kTimestampOld:
      case kTimestampNsOld:
      case kTimestampNew:
      case kTimestampNsNew:
        if (on) {
          rcvtstamp = true;
          sock_timestamp = true;
          rcvtstampns = name == kTimestampNsOld || name == kTimestampNsNew;
          tstamp_new = name == kTimestampNew || name == kTimestampNsNew;
        } else {
          rcvtstamp = rcvtstampns = false;
        }
        return true;
      case kTimestampingOld:
      case kTimestampingNew:
        // An int, or struct so_timestamping {flags, bind_phc}: flags first.
        tsflags = uint32_t(int_value(value, len));
        tstamp_new = name == kTimestampingNew;
        return true;
      case SO_RXQ_OVFL: rxq_ovfl = on; return true;
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_PKTINFO: pktinfo = on; return true;
      case IP_RECVTTL: recvttl = on; return true;
      case IP_RECVTOS: recvtos = on; return true;
      case IP_RECVORIGDSTADDR: origdstaddr = on; return true;
    }
  }
  // (Only an AF_INET6 socket takes it: the kernel judged first.)
  if (level == IPPROTO_IPV6 && name == IPV6_RECVPKTINFO) {
    ipv6_pktinfo = on;
    return true;
  }
  return false;
}

void put_timestamp_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, timespec stamp, bool error_queue,
                         const uint8_t* opt_stats, size_t opt_stats_len, const RxHwStamp* hw) {
  const bool stamped = stamp.tv_sec != 0 || stamp.tv_nsec != 0;
  if (o.rcvtstamp) {
    // A datagram that arrived before stamps were wanted: Linux stamps it
    // now ("race between timestamp enabling and packet receiving").
    if (!stamped) stamp = now_realtime();
    put_so_timestamp(w, o, stamp);
  }
  // SO_TIMESTAMPING: the software stamp in ts[0] when reporting is asked
  // for and there is one (RX_FILTER: only if this socket generates, or for
  // the error queue); the NIC's in ts[2] likewise, preceded by
  // SCM_TIMESTAMPING_PKTINFO under OPT_PKTINFO (a received datagram's
  // interface and length); nothing when neither is there.
  const uint32_t f = o.tsflags;
  Pair64 tss[3] = {};
  bool empty = true;
  if ((f & SOF_TIMESTAMPING_SOFTWARE) &&
      ((f & SOF_TIMESTAMPING_RX_SOFTWARE) || error_queue || !(f & kOptRxFilter)) && stamped) {
    tss[0] = {stamp.tv_sec, stamp.tv_nsec};
    empty = false;
  }
  if (hw && (hw->stamp.tv_sec || hw->stamp.tv_nsec) && (f & SOF_TIMESTAMPING_RAW_HARDWARE) &&
      ((f & SOF_TIMESTAMPING_RX_HARDWARE) || error_queue || !(f & kOptRxFilter))) {
    tss[2] = {hw->stamp.tv_sec, hw->stamp.tv_nsec};
    empty = false;
    if ((f & SOF_TIMESTAMPING_OPT_PKTINFO) && !error_queue) {
      scm_ts_pktinfo info{};
      info.if_index = uint32_t(hw->ifindex);
      info.pkt_length = hw->frame_len;
      w.put(SOL_SOCKET, SCM_TIMESTAMPING_PKTINFO, &info, sizeof info);
    }
  }
  if (!empty) {
    w.put(SOL_SOCKET, o.tstamp_new ? kTimestampingNew : kTimestampingOld, tss, sizeof tss);
    if (opt_stats_len) w.put(SOL_SOCKET, 54 /* SCM_TIMESTAMPING_OPT_STATS */, opt_stats, opt_stats_len);
  }
}

void put_tcp_timestamp_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, timespec sw, timespec hw) {
  // tcp_recv_timestamp(): each stamp the last segment read has, as asked.
  const uint32_t f = o.tsflags;
  Pair64 tss[3] = {};
  bool has_timestamping = false;
  if (sw.tv_sec || sw.tv_nsec) {
    if (o.rcvtstamp) put_so_timestamp(w, o, sw);
    if ((f & SOF_TIMESTAMPING_SOFTWARE) &&
        ((f & SOF_TIMESTAMPING_RX_SOFTWARE) || !(f & kOptRxFilter))) {
      tss[0] = {sw.tv_sec, sw.tv_nsec};
      has_timestamping = true;
    }
  }
  if ((hw.tv_sec || hw.tv_nsec) && (f & SOF_TIMESTAMPING_RAW_HARDWARE) &&
      ((f & SOF_TIMESTAMPING_RX_HARDWARE) || !(f & kOptRxFilter))) {
    tss[2] = {hw.tv_sec, hw.tv_nsec};
    has_timestamping = true;
  }
  if (has_timestamping)
    w.put(SOL_SOCKET, o.tstamp_new ? kTimestampingNew : kTimestampingOld, tss, sizeof tss);
}

void put_ip_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, const in_pktinfo& info, const RxMeta& m) {
  // ip_cmsg_recv_offset(): in the order of its flag bits.
  if (o.pktinfo) w.put(IPPROTO_IP, IP_PKTINFO, &info, sizeof info);
  if (o.recvttl) {
    int ttl = m.ttl;
    w.put(IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  }
  if (o.recvtos) w.put(IPPROTO_IP, IP_TOS, &m.tos, 1);
  if (o.origdstaddr) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(m.dst_port);
    sin.sin_addr.s_addr = m.dst_ip;
    w.put(IPPROTO_IP, IP_ORIGDSTADDR, &sin, sizeof sin);
  }
}

void put_rx_cmsgs(msghdr* msg, const RxCmsgOptions& o, const RxMeta& m, const RxInterface& iface) {
  CmsgWriter w(msg);
  // ---- sock_recv_cmsgs(): timestamps, then the drop count ----
  const RxHwStamp hw{m.hw_stamp, iface.ifindex, m.frame_len};
  put_timestamp_cmsgs(w, o, m.stamp, false, nullptr, 0, &hw);
  if (o.rxq_ovfl && m.drops) w.put(SOL_SOCKET, SO_RXQ_OVFL, &m.drops, sizeof m.drops);
  // ---- an AF_INET6 socket's ip6_datagram_recv_common_ctl(): for an IPv4
  // datagram, IPV6_PKTINFO with the destination v4-mapped ----
  if (o.ipv6_pktinfo) {
    in6_pktinfo info6{};
    info6.ipi6_addr.s6_addr[10] = info6.ipi6_addr.s6_addr[11] = 0xff;
    memcpy(&info6.ipi6_addr.s6_addr[12], &m.dst_ip, 4);
    info6.ipi6_ifindex = unsigned(iface.ifindex);
    w.put(IPPROTO_IPV6, IPV6_PKTINFO, &info6, sizeof info6);
  }
  // ---- ip_cmsg_recv_offset() ----
  in_pktinfo info{};
  info.ipi_ifindex = iface.ifindex;
  // The address a reply would come from: the destination itself, unless
  // it was a broadcast or a multicast group (then the interface's).
  uint32_t host = ntohl(m.dst_ip);
  bool group = (host >> 28) == 0xe || host == 0xffffffffu;
  info.ipi_spec_dst.s_addr = group ? iface.local_ip : m.dst_ip;
  info.ipi_addr.s_addr = m.dst_ip;
  put_ip_cmsgs(w, o, info, m);
  w.finish();
}

}  // namespace xdpload::shim
