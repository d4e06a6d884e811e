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

bool TcpTxStamps::frame_sent(uint32_t seq, uint32_t n, const uint8_t* frame, uint32_t frame_len,
                             const uint8_t* payload, const timespec& stamp, uint32_t tsflags,
                             size_t limit) {
  const bool tsonly = tsflags & SOF_TIMESTAMPING_OPT_TSONLY;
  bool queued = false;
  for (Mark& m : marks_) {
    if (m.last - seq >= n) continue;  // not in this frame
    m.sent = true;
    if (m.record & SOF_TIMESTAMPING_TX_ACK) m.data.assign(payload, payload + n);
    // The scheduler's stamp comes before the driver's, as on Linux.
    if (m.record & SOF_TIMESTAMPING_TX_SCHED) {
      queue.add(SCM_TSTAMP_SCHED, key(m.last, tsflags), stamp, frame, frame_len, tsonly, true, limit);
      queued = true;
    }
    if (m.record & SOF_TIMESTAMPING_TX_SOFTWARE) {
      queue.add(SCM_TSTAMP_SND, key(m.last, tsflags), stamp, frame, frame_len, tsonly, true, limit);
      queued = true;
    }
  }
  return queued;
}

bool TcpTxStamps::acked(uint32_t una, const timespec& now, uint32_t tsflags, size_t limit) {
  const bool tsonly = tsflags & SOF_TIMESTAMPING_OPT_TSONLY;
  bool queued = false;
  while (!marks_.empty() && seq_lt(marks_.front().last, una)) {
    Mark& m = marks_.front();
    if (m.record & SOF_TIMESTAMPING_TX_ACK) {
      queue.add(SCM_TSTAMP_ACK, key(m.last, tsflags), now, m.data.data(), uint32_t(m.data.size()),
                tsonly, false, limit);
      queued = true;
    }
    marks_.pop_front();
  }
  return queued;
}

}  // namespace xdpload::shim
