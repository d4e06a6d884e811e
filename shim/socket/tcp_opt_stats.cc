#include "shim/socket/tcp_opt_stats.h"

#include <linux/tcp.h>

#include <cstring>

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

namespace xdpload::shim {

namespace {

// TCP_NLA_* of Linux's uapi/linux/tcp.h (newer than this system's headers
// for the last few).
enum : uint16_t {
  kBusy = 1, kRwndLimited, kSndbufLimited, kDataSegsOut, kTotalRetrans, kPacingRate,
  kDeliveryRate, kSndCwnd, kReordering, kMinRtt, kRecurRetrans, kDeliveryRateAppLmt,
  kSndqSize, kCaState, kSndSsthresh, kDelivered, kDeliveredCe, kBytesSent, kBytesRetrans,
  kDsackDups, kReordSeen, kSrtt, kTimeoutRehash, kBytesNotsent, kEdt, kTtl, kRehash,
};

class Attrs {
 public:
  explicit Attrs(uint8_t* out) : out_(out) {}
  // One netlink attribute: length (header included) and type, the value,
  // padding to four bytes (nla_put; 64-bit values need no pad attribute
  // on this architecture).
  template <typename T>
  void put(uint16_t type, T value) {
    const uint16_t len = uint16_t(4 + sizeof value);
    memcpy(out_ + at_, &len, 2);
    memcpy(out_ + at_ + 2, &type, 2);
    memcpy(out_ + at_ + 4, &value, sizeof value);
    const size_t padded = (len + 3u) & ~3u;
    memset(out_ + at_ + len, 0, padded - len);
    at_ += padded;
  }
  size_t size() const { return at_; }

 private:
  uint8_t* out_;
  size_t at_ = 0;
};

}  // namespace

size_t build_tcp_opt_stats(const tcp_pcb* pcb, uint64_t edt_ns, int ack_ttl, uint8_t* out) {
  Attrs a(out);
  const uint32_t mss = pcb->mss ? pcb->mss : 536;
  const uint32_t cwnd = uint32_t(pcb->cwnd / mss);
  // lwIP's ssthresh starts as the send buffer (no loss seen): Linux's
  // TCP_INFINITE_SSTHRESH then.
  const uint64_t ss = pcb->ssthresh / mss;
  const uint32_t ssthresh = ss >= 0x7fffffffu || pcb->ssthresh >= TCP_SND_BUF ? 0x7fffffffu : uint32_t(ss);
  // tcp_update_pacing_rate(): twice the window per round trip in slow
  // start, 1.2 times after it.
  // SRTT is the timeout estimator's, Linux's tp->srtt_us (8 times it: lwIP
  // patch 0016).
  uint64_t pacing = ~0ull;
  if (pcb->srtt8_us) {
    const uint64_t ratio = cwnd < ssthresh / 2 ? 200 : 120;
    pacing = uint64_t(mss) * cwnd * ratio * 10000 * 8 / pcb->srtt8_us;
  }
  a.put<uint64_t>(kBusy, 0);
  a.put<uint64_t>(kRwndLimited, 0);
  a.put<uint64_t>(kSndbufLimited, 0);
  a.put<uint64_t>(kDataSegsOut, pcb->data_segs_out);
  a.put<uint64_t>(kTotalRetrans, pcb->total_retrans);
  a.put<uint64_t>(kPacingRate, pacing);
  a.put<uint64_t>(kDeliveryRate, 0);
  a.put<uint32_t>(kSndCwnd, cwnd);
  a.put<uint32_t>(kReordering, pcb->reordering ? pcb->reordering : 3);  // DupThresh (patch 0012)
  a.put<uint32_t>(kMinRtt, pcb->min_rtt_us ? pcb->min_rtt_us : ~0u);
  a.put<uint8_t>(kRecurRetrans, pcb->nrtx);
  a.put<uint8_t>(kDeliveryRateAppLmt, pcb->unsent == nullptr);
  a.put<uint32_t>(kSndSsthresh, ssthresh);
  a.put<uint32_t>(kDelivered, pcb->delivered);
  a.put<uint32_t>(kDeliveredCe, 0);
  a.put<uint32_t>(kSndqSize, pcb->snd_lbb - pcb->lastack);
  a.put<uint8_t>(kCaState, (pcb->flags & TF_INFR) ? TCP_CA_Recovery : TCP_CA_Open);
  a.put<uint64_t>(kBytesSent, pcb->bytes_sent);
  a.put<uint64_t>(kBytesRetrans, pcb->bytes_retrans);
  a.put<uint32_t>(kDsackDups, pcb->dsack_dups);
  a.put<uint32_t>(kReordSeen, pcb->reord_seen);  // (Linux counts the events; here 0 or 1)
  a.put<uint32_t>(kSrtt, pcb->srtt8_us >> 3);
  a.put<uint16_t>(kTimeoutRehash, 0);
  a.put<uint32_t>(kBytesNotsent, pcb->snd_lbb - pcb->snd_nxt);
  a.put<uint64_t>(kEdt, edt_ns);
  if (ack_ttl >= 0) a.put<uint8_t>(kTtl, uint8_t(ack_ttl));
  a.put<uint32_t>(kRehash, 0);
  return a.size();
}

}  // namespace xdpload::shim
