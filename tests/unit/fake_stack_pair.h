// FakeStackPair: two Stacks in one process joined back to back by FakeLinks
// (tests/unit/fake_link.h), 10.9.0.1 and 10.9.0.2 on a /24, each with the
// other as a static neighbour. For unit tests and the stack's benchmark; no
// kernel involved. Open and use it with the CoreLock held.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <memory>

#include "rings/error_text.h"
#include "stack/stack.h"
#include "tests/unit/fake_link.h"

namespace xdpload::testing {

struct FakeStackPair {
  FakeLink* link_a = nullptr;
  FakeLink* link_b = nullptr;
  std::unique_ptr<stack::Stack> a, b;
  uint32_t ip_a = inet_addr("10.9.0.1"), ip_b = inet_addr("10.9.0.2");

  // 0, or -1 with the reason in *why.
  int open(ErrorText* why, uint32_t frames = 4096) {
    auto la = std::make_unique<FakeLink>(frames);
    auto lb = std::make_unique<FakeLink>(frames);
    la->connect(lb.get());
    lb->connect(la.get());
    link_a = la.get();
    link_b = lb.get();
    stack::NetifAddress na, nb;
    na.addr = ip_a;
    nb.addr = ip_b;
    na.netmask = nb.netmask = inet_addr("255.255.255.0");
    const uint8_t mac_a[6] = {2, 0, 0, 0, 0, 1}, mac_b[6] = {2, 0, 0, 0, 0, 2};
    memcpy(na.mac, mac_a, 6);
    memcpy(nb.mac, mac_b, 6);
    if (stack::Stack::open_on(std::move(la), na, &a, why) != 0 ||
        stack::Stack::open_on(std::move(lb), nb, &b, why) != 0)
      return -1;
    a->driver().neighbours().set_static(ip_b, mac_b);
    b->driver().neighbours().set_static(ip_a, mac_a);
    return 0;
  }

  // One poll of each stack: frames either sent are delivered.
  void poll() {
    a->poll();
    b->poll();
  }
};

}  // namespace xdpload::testing
