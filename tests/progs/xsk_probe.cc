// xsk_probe: opens an XskPort with the given settings, reports what it got or
// why it could not, and closes it. Used by the bad-input tests.
//
//   xsk_probe --iface X [--queue Q] [--frames N] [--frame-size S]
//             [--ring R] [--mode auto|driver|skb]
// Prints "ok <mode>" and exits 0, or "error <errno name>: <reason>" and exits 1.
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rings/xsk_port.h"

using namespace xdpload;
using namespace xdpload::rings;

int main(int argc, char** argv) {
  PortConfig pc;
  static option longs[] = {{"iface", 1, 0, 'i'}, {"queue", 1, 0, 'q'},      {"frames", 1, 0, 'f'},
                           {"ring", 1, 0, 'r'},  {"frame-size", 1, 0, 's'}, {"mode", 1, 0, 'm'},
                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
    switch (c) {
      case 'i': pc.iface = optarg; break;
      case 'q': pc.queues.push_back(uint32_t(strtoul(optarg, nullptr, 0))); break;
      case 'f': pc.umem.frame_count = uint32_t(strtoul(optarg, nullptr, 0)); break;
      case 's': pc.umem.frame_size = uint32_t(strtoul(optarg, nullptr, 0)); break;
      case 'r': pc.ring_size = uint32_t(strtoul(optarg, nullptr, 0)); break;
      case 'm':
        pc.mode = !strcmp(optarg, "driver") ? XdpMode::Driver
                  : !strcmp(optarg, "skb")  ? XdpMode::Skb
                                            : XdpMode::Auto;
        break;
      default: return 2;
    }
  }
  std::unique_ptr<XskPort> port;
  ErrorText why;
  int rc = XskPort::open(pc, &port, &why);
  if (rc < 0) {
    printf("error %s: %s\n", strerrorname_np(-rc), why.c_str());
    return 1;
  }
  printf("ok %s queues %s of %u\n", port->mode_string().c_str(), port->queue_list().c_str(),
         port->interface_queues());
  return 0;
}
