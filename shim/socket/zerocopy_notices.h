// MSG_ZEROCOPY completions of an accelerated socket, with Linux's contract
// (Documentation/networking/msg_zerocopy.rst): every send() with
// MSG_ZEROCOPY on a socket with SO_ZEROCOPY gets the next 32-bit id, and
// once its buffer may be reused a notification says so on the error queue:
// recvmsg(MSG_ERRQUEUE) returns 0 bytes and an IP_RECVERR (IPV6_RECVERR)
// message, ee_origin SO_EE_ORIGIN_ZEROCOPY, ids ee_info..ee_data, merged
// with the one still queued when they follow it; the socket polls POLLERR
// while one waits. The stack copies the data into its frames when it is
// sent, so the buffer is free at once and the code is
// SO_EE_CODE_ZEROCOPY_COPIED, as Linux says when it copied too. The
// kernel's own error-queue entries (ICMP errors) are on the socket's kernel
// twin; these are read first.
#pragma once

#include <sys/socket.h>

#include <cstdint>

namespace xdpload::shim {

struct ZeroCopyNotices {
  bool enabled = false;   // SO_ZEROCOPY
  uint32_t next_id = 0;   // the next MSG_ZEROCOPY send's id
  bool pending = false;   // a notification waits, for ids lo..hi
  uint32_t lo = 0, hi = 0;

  // A send with MSG_ZEROCOPY put bytes on the stack.
  void sent();
  // recvmsg(MSG_ERRQUEUE): the waiting notification into msg (v6: the IPv6
  // layout); false when none waits.
  bool take(msghdr* msg, bool v6);
};

}  // namespace xdpload::shim
