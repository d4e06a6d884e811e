// Transmit timestamps of an accelerated UDP socket (SO_TIMESTAMPING with
// SOF_TIMESTAMPING_TX_SOFTWARE and/or TX_SCHED), on its error queue as Linux
// puts them: per datagram sent, an entry with the time its (first) frame
// was handed to the transmit ring, the frame itself looped back (Ethernet
// header first; nothing with OPT_TSONLY), and, on recvmsg(MSG_ERRQUEUE),
// the timestamp messages then an IP_RECVERR with ee_errno ENOMSG, origin
// SO_EE_ORIGIN_TIMESTAMPING, ee_info SCM_TSTAMP_SND (or _SCHED) and ee_data
// the datagram's OPT_ID key; with OPT_CMSG, the frame's source as the
// offender and the IP messages the socket asked for (IP_PKTINFO and the
// like) of that frame. The queue shares the receive buffer's limit.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <ctime>

#include "family/arena.h"
#include "shim/socket/rx_cmsg.h"

namespace xdpload::shim {

class TxStamps {
 public:
  // Timestamping flags this socket honours (others keep it with the kernel).
  static bool served_flags(uint32_t tsflags);
  // Transmit stamps are asked for.
  static bool wanted(uint32_t tsflags);

  // SO_TIMESTAMPING accepted: OPT_ID newly on restarts the keys at 0.
  void flags_changed(uint32_t old_flags, uint32_t new_flags);
  // A datagram is about to be sent: the next frame handed to the ring is
  // its first. After the send, done().
  void expect(uint32_t tsflags) {
    flags_ = tsflags;
    armed_ = true;
  }
  void done() { armed_ = false; }
  // The driver's tap: the frame handed to the ring, and when.
  void frame_sent(const uint8_t* frame, uint32_t len, const timespec& stamp, size_t limit);
  // The datagram's frame waits for its neighbour: its stamps' flags and
  // OPT_ID key (taken now, at the send, as Linux's) go into a cookie the
  // driver keeps with it and gives back when the frame finally leaves.
  uint64_t hold();
  void held_frame_sent(uint64_t cookie, const uint8_t* frame, uint32_t len, const timespec& stamp,
                       size_t limit);
  // Queues one entry: info (SCM_TSTAMP_SND, _SCHED, _ACK), its OPT_ID key,
  // the bytes looped back (none with tsonly): a frame the link sent
  // (is_frame), or a segment's data; dropped, as Linux drops it, when the
  // queue would reach `limit` bytes.
  void add(uint32_t info, uint32_t key, const timespec& stamp, const uint8_t* data, uint32_t len,
           bool tsonly, bool is_frame, size_t limit);
  // An OPT_TSONLY entry whose bytes are OPT_STATS attributes (TCP): read
  // as the entry's data and as an SCM_TIMESTAMPING_OPT_STATS message.
  void add_stats(uint32_t info, uint32_t key, const timespec& stamp, const uint8_t* stats,
                 uint32_t len, size_t limit);

  bool pending() const { return !queue_.empty(); }
  // recvmsg(MSG_ERRQUEUE): the oldest entry into msg; -EAGAIN when none.
  // ifindex: the interface's (IP_PKTINFO with OPT_CMSG); v6: an AF_INET6
  // socket (IPV6_RECVERR).
  ssize_t take(msghdr* msg, const RxCmsgOptions& o, int ifindex, bool v6);
  void clear();

 private:
  struct Entry {
    timespec stamp;
    uint32_t info;  // SCM_TSTAMP_SND, SCM_TSTAMP_SCHED or SCM_TSTAMP_ACK
    uint32_t key;   // OPT_ID
    bool is_frame;  // the bytes are a frame the link sent (Linux: the skb has a device)
    bool opt_stats = false;  // the bytes are OPT_STATS attributes
    family::vector<uint8_t> frame;
  };
  // SCHED and SND entries for a datagram's first frame.
  void stamp_frame(uint32_t flags, uint32_t key, const uint8_t* frame, uint32_t len,
                   const timespec& stamp, size_t limit);
  family::deque<Entry> queue_;
  size_t bytes_ = 0;
  uint32_t key_ = 0;  // sk_tskey: the next datagram's OPT_ID key
  uint32_t flags_ = 0;
  bool armed_ = false;
};

}  // namespace xdpload::shim
