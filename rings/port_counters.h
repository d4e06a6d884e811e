// PortCounters: what happened on one AF_XDP port. Plain words written by the
// one thread that holds the port, so that they can live in a shared-memory
// segment that xdpload-stat reads from another process.
#pragma once

#include <cstdint>

namespace xdpload::rings {

// Receive queues one port can serve (the steering program's socket map has
// as many entries).
constexpr uint32_t kMaxQueues = 64;

// One receive queue of the port: its AF_XDP socket and what the steering
// program saw arrive on it.
struct QueueCounters {
  uint64_t rx_frames = 0;  // descriptors taken off this queue's rx ring
  uint64_t tx_frames = 0;  // descriptors put on its tx ring (a transmit queue of some process)
  // Read from the kernel (XDP_STATISTICS of this queue's socket) and from
  // the steering program's per-queue counts when stats are refreshed.
  uint64_t rx_dropped = 0;
  uint64_t rx_ring_full = 0;
  uint64_t rx_fill_ring_empty = 0;
  uint64_t steer_redirected = 0;  // frames of our ports the XDP program redirected here
};

struct PortCounters {
  uint64_t rx_frames = 0;     // descriptors taken off the rx rings
  uint64_t rx_bytes = 0;      // their lengths
  uint64_t tx_frames = 0;     // descriptors put on the tx ring
  uint64_t tx_bytes = 0;      // their lengths
  uint64_t tx_ring_full = 0;  // a frame could not be queued: no tx slot
  uint64_t tx_no_frame = 0;   // a frame could not be queued: no free UMEM frame
  uint64_t kicks = 0;         // sendto() calls that made the kernel transmit
  uint64_t kick_errors = 0;   // such calls that failed other than EAGAIN/EBUSY
  // Of the kicks, those made just after the stack's lock was released
  // (XskPort::kick_after_release; counted atomically, outside the lock).
  uint64_t kicks_after_release = 0;
  // Kicks of a tx ring whose frames had waited a tenth of a second
  // (XskPort::kick_stale_rings: left by a process killed before its kick).
  uint64_t stale_tx_kicks = 0;
  uint64_t fill_wakeups = 0;  // wake-ups the kernel asked for on a fill ring
  uint64_t bad_frees = 0;     // frames given back twice or from outside the UMEM
  // Read from the kernel (XDP_STATISTICS, summed over the queues' sockets)
  // when stats are refreshed.
  uint64_t rx_dropped = 0;          // dropped by the kernel for other reasons
  uint64_t rx_ring_full = 0;        // dropped: an rx ring was full
  uint64_t rx_fill_ring_empty = 0;  // the kernel found no frame in a fill ring
  uint64_t rx_invalid_descs = 0;
  uint64_t tx_invalid_descs = 0;
  // Per receive queue, in the order of XskPort::queue_id(i).
  uint32_t nqueues = 0;
  uint32_t pad = 0;
  QueueCounters queue[kMaxQueues];
};

}  // namespace xdpload::rings
