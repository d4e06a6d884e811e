// Transmit timestamps of an accelerated TCP connection, as Linux gives them
// (SO_TIMESTAMPING with SOF_TIMESTAMPING_TX_SCHED, TX_SOFTWARE, TX_ACK):
// a send that asks for them marks the last byte it wrote (tcp_tx_timestamp:
// the tail of the write queue; a later write into the same unsent segment
// moves the mark to its own last byte). Each time a frame carrying the
// marked byte is handed to the transmit ring, the scheduler's and the
// driver's stamps are queued with the frame (retransmissions too, as
// Linux's clones of the segment are); when the byte is acknowledged, the
// acknowledgement's stamp with the segment's data alone (tcp_ack_tstamp).
// The OPT_ID key is the byte's offset from snd_una (or, with OPT_ID_TCP,
// write_seq) when OPT_ID was set. Entries go to the socket's error queue
// (TxStamps), read with MSG_ERRQUEUE.
#pragma once

#include <linux/net_tstamp.h>

#include <cstdint>
#include <ctime>

#include "family/arena.h"
#include "shim/socket/tcp_opt_stats.h"
#include "shim/socket/tx_stamps.h"

namespace xdpload::shim {

class TcpTxStamps {
 public:
  // OPT_STATS (with OPT_TSONLY): writes the connection's attributes for a
  // segment that left at edt_ns (CLOCK_MONOTONIC), an acknowledgement's
  // TTL or -1, into out (kMaxOptStats bytes); returns their length.
  using StatsFn = size_t (*)(void* ctx, uint64_t edt_ns, int ack_ttl, uint8_t* out);

  // A write asked for `record` (SOF_TIMESTAMPING_TX_RECORD_MASK bits); its
  // last byte is `last`. same_segment: the previous mark is still unsent,
  // in the segment this write extended (Linux's one tail skb): moved.
  void record(uint32_t last, uint32_t record, bool same_segment);
  // The last mark, if it has not left yet (for the same-segment rule).
  bool last_unsent(uint32_t* last) const;
  // A frame carrying bytes [seq, seq + n) was handed to the ring at `stamp`;
  // payload points at them inside frame. tsflags: the socket's flags now.
  // Returns true when entries were queued.
  bool frame_sent(uint32_t seq, uint32_t n, const uint8_t* frame, uint32_t frame_len,
                  const uint8_t* payload, const timespec& stamp, uint64_t mono_ns, uint32_t tsflags,
                  size_t limit, StatsFn stats, void* ctx);
  // Bytes before `una` are acknowledged (at `now`) by a segment with IP TTL
  // ack_ttl.
  bool acked(uint32_t una, const timespec& now, int ack_ttl, uint32_t tsflags, size_t limit,
             StatsFn stats, void* ctx);
  // OPT_ID was switched on: keys count from `base`.
  void set_key_base(uint32_t base) { key_base_ = base; }
  // Marks wait for their frames or acknowledgements.
  bool watching() const { return !marks_.empty(); }
  // The connection is gone (or disconnected): no more stamps for it.
  void forget_marks() { marks_.clear(); }

  TxStamps queue;  // the error queue's stamps

 private:
  uint32_t key(uint32_t last, uint32_t tsflags) const {
    return (tsflags & SOF_TIMESTAMPING_OPT_ID) ? last - key_base_ : 0;
  }
  struct Mark {
    uint32_t last;    // sequence number of the marked byte
    uint32_t record;  // which stamps
    bool sent = false;
    uint64_t sent_mono_ns = 0;     // when a frame carried it last (OPT_STATS' EDT)
    family::vector<uint8_t> data;  // the segment that carried it last (for TX_ACK)
  };
  family::deque<Mark> marks_;
  uint32_t key_base_ = 0;  // Linux's sk_tskey for TCP
};

}  // namespace xdpload::shim
