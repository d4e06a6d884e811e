// KernelRoutes: asks the kernel's routing table how a destination is reached
// (RTM_GETROUTE), as `ip route get` does. The stack uses it for next hops, the
// shim to decide whether a destination is on the accelerated interface.
#pragma once

#include <cstdint>

#include "stack/netlink.h"

namespace xdpload::stack {

struct Route {
  int oif = 0;            // outgoing interface
  uint32_t gateway = 0;   // next hop, network order; 0: on-link
  uint32_t prefsrc = 0;   // preferred source address
  uint8_t type = 0;       // RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST...
};

class KernelRoutes {
 public:
  int open(ErrorText* why) { return nl_.open(0, why); }
  // dst in network order. -ENETUNREACH etc. as the kernel answers.
  int lookup(uint32_t dst, Route* out);

 private:
  Netlink nl_;
};

}  // namespace xdpload::stack
