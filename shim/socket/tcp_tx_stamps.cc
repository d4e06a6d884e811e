#include "shim/socket/tcp_tx_stamps.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

namespace xdpload::shim {

namespace {
bool seq_lt(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
}  // namespace

void TcpTxStamps::record(uint32_t last, uint32_t record, bool same_segment) {
  record &= SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK;
  if (!record) return;
  if (same_segment && !marks_.empty() && !marks_.back().sent) {
    marks_.back().last = last;
    marks_.back().record |= record;
    return;
  }
  Mark m;
  m.last = last;
  m.record = record;
  marks_.push_back(std::move(m));
}

bool TcpTxStamps::last_unsent(uint32_t* last) const {
  if (marks_.empty() || marks_.back().sent) return false;
  *last = marks_.back().last;
  return true;
}

namespace {
bool wants_stats(uint32_t tsflags) {
  return (tsflags & SOF_TIMESTAMPING_OPT_STATS) && (tsflags & SOF_TIMESTAMPING_OPT_TSONLY);
}
}  // namespace

bool TcpTxStamps::frame_sent(uint32_t seq, uint32_t n, const uint8_t* frame, uint32_t frame_len,
                             const uint8_t* payload, const timespec& stamp, uint64_t mono_ns,
                             uint32_t tsflags, size_t limit, StatsFn stats, void* ctx) {
  const bool tsonly = tsflags & SOF_TIMESTAMPING_OPT_TSONLY;
  uint8_t attrs[kMaxOptStats];
  size_t attrs_len = 0;
  bool queued = false;
  for (Mark& m : marks_) {
    if (m.last - seq >= n) continue;  // not in this frame
    m.sent = true;
    m.sent_mono_ns = mono_ns;
    // (The acknowledgement's entry loops the data back, but not with TSONLY.)
    if ((m.record & SOF_TIMESTAMPING_TX_ACK) && !tsonly) m.data.assign(payload, payload + n);
    if (!(m.record & (SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE))) continue;
    if (wants_stats(tsflags) && !attrs_len) attrs_len = stats(ctx, mono_ns, -1, attrs);
    // The scheduler's stamp comes before the driver's, as on Linux.
    for (uint32_t info : {uint32_t(SCM_TSTAMP_SCHED), uint32_t(SCM_TSTAMP_SND)}) {
      if (!(m.record & (info == SCM_TSTAMP_SCHED ? SOF_TIMESTAMPING_TX_SCHED : SOF_TIMESTAMPING_TX_SOFTWARE)))
        continue;
      if (attrs_len) queue.add_stats(info, key(m.last, tsflags), stamp, attrs, uint32_t(attrs_len), limit);
      else queue.add(info, key(m.last, tsflags), stamp, frame, frame_len, tsonly, true, limit);
      queued = true;
    }
  }
  return queued;
}

bool TcpTxStamps::acked(uint32_t una, const timespec& now, int ack_ttl, uint32_t tsflags,
                        size_t limit, StatsFn stats, void* ctx) {
  const bool tsonly = tsflags & SOF_TIMESTAMPING_OPT_TSONLY;
  bool queued = false;
  while (!marks_.empty() && seq_lt(marks_.front().last, una)) {
    Mark& m = marks_.front();
    if (m.record & SOF_TIMESTAMPING_TX_ACK) {
      if (wants_stats(tsflags)) {
        uint8_t attrs[kMaxOptStats];
        size_t len = stats(ctx, m.sent_mono_ns, ack_ttl, attrs);
        queue.add_stats(SCM_TSTAMP_ACK, key(m.last, tsflags), now, attrs, uint32_t(len), limit);
      } else {
        queue.add(SCM_TSTAMP_ACK, key(m.last, tsflags), now, m.data.data(), uint32_t(m.data.size()),
                  tsonly, false, limit);
      }
      queued = true;
    }
    marks_.pop_front();
  }
  return queued;
}

}  // namespace xdpload::shim
