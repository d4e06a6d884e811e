// Rules: which sockets xdpload accelerates, from the file XDPLOAD_RULES
// names (conf/rules.example). In the spirit of libvma.conf: one rule per
// line, the first that matches decides, no match means "accelerate when the
// route goes through the interface".
//
//   # action    role          address[/prefix][:port[-port]]
//   kernel      tcp_server    *:22
//   kernel      udp_receiver  *:5000-5099
//   accelerate  tcp_client    10.211.0.0/16:*
//
// action: accelerate | kernel (also "use xdpload|vma" and "use os|kernel",
// libvma's spelling). role: tcp_server (the listening address, at listen),
// tcp_client (the destination, at connect), udp_receiver (the bound
// address, at bind), udp_sender (the destination, at connect/sendto), or
// any. A socket bound to the wildcard address is matched as bound to the
// interface's address, and by "*". A rule can keep a socket on the kernel;
// "accelerate" cannot send over the interface what the kernel routes
// elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rings/error_text.h"

namespace xdpload::shim {

enum class Role : uint8_t { TcpServer, TcpClient, UdpReceiver, UdpSender, Any };
const char* role_name(Role r);

struct Rule {
  bool accelerate = true;
  Role role = Role::Any;
  uint32_t net = 0, mask = 0;  // host order; mask 0: any address
  uint16_t port_lo = 0, port_hi = 65535;
  int line = 0;
};

class Rules {
 public:
  enum class Verdict { NoMatch, Accelerate, Kernel };

  // Parses rule text; on error, -EINVAL and "file:line: reason" in `why`.
  int parse(const std::string& text, const char* name, ErrorText* why);
  // Reads and parses a file.
  int load(const char* path, ErrorText* why);

  // ip in network order, port in host order. `line` (optional) gets the
  // number of the deciding rule.
  Verdict match(Role role, uint32_t ip, uint16_t port, int* line = nullptr) const;
  size_t size() const { return rules_.size(); }

 private:
  std::vector<Rule> rules_;
};

}  // namespace xdpload::shim
