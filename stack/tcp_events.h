// TcpEvents: how TCP repaired losses and reused ports, all connections
// together (the counters our lwIP patches add: stack/lwip/patches). Plain
// words, so that they can live in the shared-memory segment xdpload-stat
// reads.
#pragma once

#include <cstdint>

namespace xdpload::stack {

struct TcpEvents {
  uint64_t recoveries = 0;       // fast recoveries (duplicate ACKs or SACK)
  uint64_t rexmit_recovery = 0;  // segments sent again in them
  uint64_t rexmit_rto = 0;       // retransmission timeouts
  uint64_t tlp_probes = 0;       // tail loss probes sent
  uint64_t rack_lost = 0;        // segments found lost by time (RACK)
  uint64_t lost_rexmit = 0;      // ...of which retransmissions lost again
  uint64_t dsacks = 0;           // D-SACKs received: segments the peer got twice
  uint64_t undone = 0;           // recoveries undone: their retransmissions were needless
  uint64_t rto_undone = 0;       // timeouts undone: timestamps showed the originals arrived
  uint64_t paws_dropped = 0;     // segments dropped as old duplicates (PAWS)
  uint64_t sack_blocks = 0;      // SACK blocks received that told something
  uint64_t tw_syn_accepted = 0;  // SYNs that reopened a connection in TIME-WAIT
  uint64_t tw_overflow = 0;      // connections that skipped TIME-WAIT (over the limit)
};

}  // namespace xdpload::stack
