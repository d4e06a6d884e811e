// The statistics segment: what a running xdpload process publishes for
// xdpload-stat, in System V shared memory (shim/stats/stat_shm.h).
//
// The port, netif and shim counters are live (their owners write them in
// place, each a plain word written by one thread under the CoreLock). The
// progress thread refreshes the rest about once a second: the socket table,
// lwIP's and the kernel's figures, and a copy of the live counters taken in
// the same moment (`*_at_refresh`). A reader shows the copies, so that every
// figure it prints is of one instant and they agree with each other (frames
// received = TCP + UDP inputs; steered = received + dropped + in the rings);
// the live counters read beside figures a second old did not. A reader that
// may write the segment (its owner, or root) asks for a fresh refresh by
// raising `refresh_asked` and waits until `refresh_done` reaches it. A
// reader copies under `seq`, retrying while it is odd or changed under it.
// The kernel removes it with the last process of the family, however that
// one ends.
#pragma once

#include <cstdint>

#include "rings/port_counters.h"
#include "shim/stats/shim_counters.h"
#include "stack/netif_counters.h"
#include "stack/tcp_events.h"

namespace xdpload::stats {

constexpr char kMagic[8] = {'X', 'D', 'P', 'L', 'S', 'T', 'A', 'T'};
constexpr uint32_t kVersion = 14;  // 14: PortCounters::stale_tx_kicks
constexpr uint32_t kMaxSockets = 4096;

struct SocketRow {
  uint8_t proto;        // IPPROTO_TCP or IPPROTO_UDP
  uint8_t state;        // Linux TCP_* state numbers; TCP_CLOSE (7) for unconnected UDP
  uint8_t accelerated;  // 1: on the stack
  uint8_t pad;
  int32_t fd;
  uint32_t local_ip, remote_ip;  // network order
  uint16_t local_port, remote_port;
  uint32_t rx_queue;  // bytes waiting for the program
  uint32_t tx_queue;  // bytes sent and not yet acknowledged
  char cc[8];         // congestion control of a TCP connection on the stack, else ""
};

struct Segment {
  char magic[8];
  uint32_t version;
  int32_t pid;
  uint64_t started_unix_ns;
  uint64_t refreshed_unix_ns;
  char command[64];
  char iface[16];
  char mode[32];  // "driver/copy", "skb/copy"...
  uint32_t interface_queues;  // receive queues the interface has
  uint32_t frames;
  // The queues served: port.nqueues of them, port.queue[i] counts queue_id[i].
  uint8_t queue_id[rings::kMaxQueues];
  rings::PortCounters port;
  stack::NetifCounters netif;
  shim::ShimCounters shim;
  // lwIP's MIB-2 counters and the steering program's, refreshed.
  uint64_t tcp_active_opens, tcp_passive_opens, tcp_in_segs, tcp_out_segs, tcp_retrans_segs;
  uint64_t udp_in_datagrams, udp_out_datagrams;
  // The stack's TCP events beyond MIB-2, refreshed.
  stack::TcpEvents tcp;
  uint64_t steer_redirected, steer_passed, steer_no_socket;
  // The live counters as they were at the refresh (read under `seq`).
  rings::PortCounters port_at_refresh;
  stack::NetifCounters netif_at_refresh;
  shim::ShimCounters shim_at_refresh;
  // Refresh requests: raised by a reader, answered by the progress thread
  // (refresh_done = the request it served).
  uint32_t refresh_asked;
  uint32_t refresh_done;
  uint32_t seq;            // odd while the socket table is rewritten
  uint32_t nsockets;       // rows in use
  uint32_t total_sockets;  // all accelerated sockets (rows hold the first kMaxSockets)
  uint32_t pad;
  SocketRow sockets[kMaxSockets];
};

}  // namespace xdpload::stats
