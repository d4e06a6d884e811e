// Shared between the XDP program (steer.bpf.c) and user space (steering.cc):
// the layout of the steering maps.
#ifndef XDPLOAD_STEER_MAPS_H
#define XDPLOAD_STEER_MAPS_H

#include <linux/types.h>

#define STEER_MAX_PORTS 65536
#define STEER_MAX_QUEUES 64

// Key of `steer_ports`: a local port of ours. Port in network byte order.
struct steer_key {
  __u8 proto;  // IPPROTO_TCP or IPPROTO_UDP
  __u8 pad;
  __u16 port;
};

// Indices of the per-cpu `steer_stats` counters.
enum steer_stat {
  STEER_STAT_REDIRECTED = 0,  // frames redirected to the socket
  STEER_STAT_PASSED = 1,      // frames left to the kernel
  STEER_STAT_NO_SOCKET = 2,   // ours, but no socket bound on that queue
  STEER_STAT_COUNT = 3,
};

// Indices of `steer_conf`.
enum steer_conf {
  STEER_CONF_MTU = 0,  // interface MTU: longer UDP goes to the kernel
  STEER_CONF_COUNT = 1,
};

#endif
