// Control messages on received datagrams, built as Linux builds them for a
// UDP recvmsg: receive timestamps (SO_TIMESTAMP, SO_TIMESTAMPNS,
// SO_TIMESTAMPING, in the old and the _NEW layouts), SO_RXQ_OVFL, then the
// IP ones (IP_PKTINFO, IP_TTL, IP_TOS, IP_ORIGDSTADDR), in the kernel's
// order, with its truncation rule (put_cmsg: what does not fit is cut and
// MSG_CTRUNC is set) and msg_controllen set to the bytes used.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <ctime>

namespace xdpload::shim {

// What a socket asked for: the flags the kernel keeps for the same calls
// (every setsockopt reaches the backing kernel socket too, which judges it).
struct RxCmsgOptions {
  bool rcvtstamp = false;    // SOCK_RCVTSTAMP: SO_TIMESTAMP or SO_TIMESTAMPNS on
  bool rcvtstampns = false;  // SOCK_RCVTSTAMPNS: nanoseconds (SO_TIMESTAMPNS)
  bool tstamp_new = false;   // SOCK_TSTAMP_NEW: the _NEW layouts (set by the _NEW names)
  uint32_t tsflags = 0;      // SO_TIMESTAMPING's flags
  bool rxq_ovfl = false;     // SO_RXQ_OVFL
  bool pktinfo = false, recvttl = false, recvtos = false, origdstaddr = false;
  bool ipv6_pktinfo = false;  // IPV6_RECVPKTINFO (an AF_INET6 socket)
  // SOCK_TIMESTAMP: the socket keeps the last datagram's stamp for
  // SIOCGSTAMP (set by that ioctl and by SO_TIMESTAMP*, never cleared).
  bool sock_timestamp = false;

  // Receive timestamps are taken for this socket (Linux: the socket enables
  // the global timestamping of received packets).
  bool wants_stamps() const;
  // Reports hardware receive stamps (SOF_TIMESTAMPING_RAW_HARDWARE; the
  // NIC generates them when someone configured it, SIOCSHWTSTAMP).
  bool wants_hw_stamps() const;
  bool any() const;
  // An option the kernel has just accepted: its effect on the flags. False
  // for an option that is not one of these.
  bool apply(int level, int name, const void* value, socklen_t len);
};

// What the stack knew of one datagram when it arrived.
struct RxMeta {
  timespec stamp{};       // software receive time (REALTIME); 0: none was taken
  timespec hw_stamp{};    // the NIC's receive stamp; 0: none
  uint32_t frame_len = 0;  // the packet's length from its Ethernet header on
  uint32_t dst_ip = 0;    // network order, from the IP header
  uint16_t dst_port = 0;  // host order
  uint8_t ttl = 0;
  uint8_t tos = 0;
  uint32_t drops = 0;  // the socket's datagrams dropped so far, when this one was queued
};

struct RxInterface {
  int ifindex = 0;         // the kernel's index of the accelerated interface
  uint32_t local_ip = 0;   // its address (network order), for broadcast and multicast
};

// The stamp SIOCGSTAMP answers with (Linux's sk_stamp): -1 s before any
// datagram was read, 0 when one was read without stamps being kept.
constexpr int64_t kNoStampYet = -1000000000;
// Updates it for a datagram being read (sock_recv_cmsgs()' rules).
void note_read_stamp(const RxCmsgOptions& o, const RxMeta& m, int64_t* sk_stamp_ns);
// SIOCGSTAMP/SIOCGSTAMPNS and their _NEW forms: fills *out (seconds and
// micro- or nanoseconds), or returns -ENOENT; enables stamping.
int get_stamp(RxCmsgOptions* o, int64_t* sk_stamp_ns, bool usec, int64_t out[2]);

// Writes the control messages for one datagram into msg.
void put_rx_cmsgs(msghdr* msg, const RxCmsgOptions& o, const RxMeta& m, const RxInterface& iface);

class CmsgWriter;
// The IP level's messages alone (ip_cmsg_recv_offset()): IP_PKTINFO as
// given, IP_TTL, IP_TOS and IP_ORIGDSTADDR from m, those the socket asked for.
void put_ip_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, const in_pktinfo& info, const RxMeta& m);
// The timestamp messages alone (sock_recv_timestamp()), for a datagram or,
// error_queue, for an entry of the error queue (a transmit timestamp).
// opt_stats: a transmit stamp's OPT_STATS attributes, put after the
// SO_TIMESTAMPING message when that one is put (SCM_TIMESTAMPING_OPT_STATS).
// hw: a received datagram's hardware stamp, with what
// SCM_TIMESTAMPING_PKTINFO reports beside it.
struct RxHwStamp {
  timespec stamp{};  // {0, 0}: none
  int ifindex = 0;
  uint32_t frame_len = 0;
};
void put_timestamp_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, timespec stamp, bool error_queue,
                         const uint8_t* opt_stats = nullptr, size_t opt_stats_len = 0,
                         const RxHwStamp* hw = nullptr);
// A TCP read's (tcp_recv_timestamp()): the last segment's software and
// hardware stamps, each as the socket asked.
void put_tcp_timestamp_cmsgs(CmsgWriter& w, const RxCmsgOptions& o, timespec sw, timespec hw);

}  // namespace xdpload::shim
