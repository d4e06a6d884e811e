// NetifCounters: what the lwIP netif driver saw, frame by frame. Plain words,
// so that they can live in the shared-memory segment xdpload-stat reads.
#pragma once

#include <cstdint>

namespace xdpload::stack {

struct NetifCounters {
  uint64_t rx_frames = 0;            // packets handed to lwIP
  uint64_t rx_multi_frame = 0;       // of which spanned several frames (GRO/GSO super-packets)
  uint64_t rx_not_ipv4 = 0;          // dropped: not IPv4 (the XDP program should not send those)
  uint64_t rx_not_ours = 0;          // dropped: unicast to another MAC (promiscuous NIC)
  uint64_t rx_malformed = 0;         // dropped: truncated or inconsistent headers
  uint64_t rx_bad_checksum = 0;      // dropped: TCP/UDP checksum wrong
  uint64_t rx_partial_checksum = 0;  // accepted with a partial checksum
  uint64_t tx_frames = 0;            // frames handed to the link
  uint64_t tx_copy_bytes = 0;        // bytes copied into transmit frames
  uint64_t tx_zero_copy = 0;         // frames built in place (lwIP, UDP fast path): no second copy
  uint64_t tx_zero_copy_bytes = 0;   // TCP payload bytes sent from the frame they were read or written into
                                     // (send()'s whole segments, sendfile, zero-copy sends)
  uint64_t tx_udp_direct = 0;        // of which UDP datagrams the fast path built (send_udp)
  uint64_t tx_no_frame = 0;          // lwIP output refused: no free transmit frame
  uint64_t tx_link_full = 0;         // lwIP output refused: link queue full
  uint64_t held = 0;                 // packets held for neighbour resolution
  uint64_t held_dropped = 0;         // held packets dropped (queue full or timed out)
  uint64_t route_lookups = 0;        // next hops asked from the kernel
  uint64_t rx_handed_over = 0;       // dropped: a connection's, handed to the kernel meanwhile
  uint64_t tx_checksum_offload = 0;  // TCP segments whose checksum the link completed
};

}  // namespace xdpload::stack
