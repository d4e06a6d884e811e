#include "stack/interface_info.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace xdpload::stack {

int read_interface_info(const std::string& name, InterfaceInfo* out, ErrorText* why) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return why->set(EINVAL, "bad interface name '%s'", name.c_str());
  out->name = name;
  out->ifindex = int(if_nametoindex(name.c_str()));
  if (!out->ifindex) return why->set(ENODEV, "interface '%s' does not exist", name.c_str());

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return why->set(errno, "socket: %m");
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name.c_str());
  int rc = 0;
  if (ioctl(s, SIOCGIFADDR, &ifr) != 0) {
    rc = why->set(EADDRNOTAVAIL, "interface '%s' has no IPv4 address", name.c_str());
  } else {
    out->addr = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr;
    if (ioctl(s, SIOCGIFNETMASK, &ifr) == 0)
      out->netmask = reinterpret_cast<sockaddr_in*>(&ifr.ifr_netmask)->sin_addr.s_addr;
    if (ioctl(s, SIOCGIFMTU, &ifr) == 0) out->mtu = uint32_t(ifr.ifr_mtu);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0) memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifr.ifr_data = reinterpret_cast<char*>(&info);
    if (ioctl(s, SIOCETHTOOL, &ifr) == 0) out->driver = info.driver;
  }
  close(s);
  return rc;
}

}  // namespace xdpload::stack
