// PortCounters: what happened on one AF_XDP port. Plain words written by the
// one thread that holds the port, so that they can live in a shared-memory
// segment that xdpload-stat reads from another process.
#pragma once

#include <cstdint>

namespace xdpload::rings {

struct PortCounters {
  uint64_t rx_frames = 0;     // descriptors taken off the rx ring
  uint64_t rx_bytes = 0;      // their lengths
  uint64_t tx_frames = 0;     // descriptors put on the tx ring
  uint64_t tx_bytes = 0;      // their lengths
  uint64_t tx_ring_full = 0;  // a frame could not be queued: no tx slot
  uint64_t tx_no_frame = 0;   // a frame could not be queued: no free UMEM frame
  uint64_t kicks = 0;         // sendto() calls that made the kernel transmit
  uint64_t kick_errors = 0;   // such calls that failed other than EAGAIN/EBUSY
  uint64_t fill_wakeups = 0;  // wake-ups the kernel asked for on the fill ring
  uint64_t bad_frees = 0;     // frames given back twice or from outside the UMEM
  // Read from the kernel (XDP_STATISTICS) when stats are refreshed.
  uint64_t rx_dropped = 0;          // dropped by the kernel for other reasons
  uint64_t rx_ring_full = 0;        // dropped: our rx ring was full
  uint64_t rx_fill_ring_empty = 0;  // the kernel found no frame in the fill ring
  uint64_t rx_invalid_descs = 0;
  uint64_t tx_invalid_descs = 0;
};

}  // namespace xdpload::rings
