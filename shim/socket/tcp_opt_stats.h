// SO_TIMESTAMPING's OPT_STATS for a connection on the stack: the netlink
// attributes Linux's tcp_get_timestamping_opt_stats() puts in a transmit
// timestamp's error-queue entry (OPT_TSONLY), in its order and sizes, from
// what lwIP and lwIP patch 0010 keep per connection. What the stack does
// not measure reads as a connection that never met it: no busy or
// limited time (TCP_NLA_BUSY, RWND_LIMITED, SNDBUF_LIMITED), no delivery
// rate, no ECN marks, no rehash. Approximations: REORD_SEEN is 1 once the
// peer was seen to reorder (lwIP patch 0012; Linux counts the events);
// DELIVERY_RATE_APP_LMT is "nothing queued unsent"; CA_STATE is Recovery
// during fast recovery, else Open (never Loss after a timeout); DELIVERED
// counts what the whole acknowledgement freed (Linux counts up to the
// stamped segment, and SACKed ones as they are SACKed); segments of zero
// window probes are not counted as sent.
#pragma once

#include <cstddef>
#include <cstdint>

struct tcp_pcb;

namespace xdpload::shim {

constexpr size_t kMaxOptStats = 320;  // Linux 6.18 puts 256 bytes; room for a few more

// Writes the attributes into out (kMaxOptStats bytes) and returns their
// length. edt_ns: when the segment left (CLOCK_MONOTONIC, Linux's
// skb_mstamp_ns); ack_ttl: the acknowledgement's IP TTL for an ACK stamp
// (TCP_NLA_TTL), -1 for the others.
size_t build_tcp_opt_stats(const tcp_pcb* pcb, uint64_t edt_ns, int ack_ttl, uint8_t* out);

}  // namespace xdpload::shim
