// libFuzzer harness: the XDPLOAD_RULES parser over arbitrary text. Whatever
// the input, parse() returns 0 or -EINVAL with a reason, never crashes, and
// a parsed rule set answers every question.
#include <arpa/inet.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shim/runtime/rules.h"

using namespace xdpload;
using namespace xdpload::shim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  Rules rules;
  ErrorText why;
  int rc = rules.parse(text, "fuzz.rules", &why);
  if (rc != 0) {
    // A refusal says why, within its buffer.
    if (rc != -EINVAL || why.empty() || !memchr(why.text, 0, sizeof why.text)) abort();
    return 0;
  }
  const Role roles[] = {Role::TcpServer, Role::TcpClient, Role::UdpReceiver, Role::UdpSender};
  const uint32_t ips[] = {0, htonl(0x0ad30001), 0xffffffffu, htonl(0x7f000001)};
  const uint16_t ports[] = {0, 1, 53, 8080, 65535};
  for (Role r : roles)
    for (uint32_t ip : ips)
      for (uint16_t port : ports) {
        int line = -1;
        Rules::Verdict v = rules.match(r, ip, port, &line);
        if (v != Rules::Verdict::NoMatch && (line < 1 || size_t(line) > size + 1)) abort();
      }
  return 0;
}
