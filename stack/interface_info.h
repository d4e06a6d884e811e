// InterfaceInfo: what the kernel says about an interface, read once when a
// Stack starts: index, address, netmask, MTU, MAC, and whether its driver is
// veth (whose frames from a local kernel sender carry partial checksums).
#pragma once

#include <cstdint>
#include <string>

#include "rings/error_text.h"

namespace xdpload::stack {

struct InterfaceInfo {
  std::string name;
  int ifindex = 0;
  uint32_t addr = 0;     // network order
  uint32_t netmask = 0;  // network order
  uint32_t mtu = 1500;
  uint8_t mac[6] = {};
  std::string driver;    // "veth", "mlx5_core"...

  // A link without a wire: no frame can be corrupted in flight, and local
  // senders leave checksums partial.
  bool virtual_link() const { return driver == "veth"; }
};

int read_interface_info(const std::string& name, InterfaceInfo* out, ErrorText* why);

}  // namespace xdpload::stack
