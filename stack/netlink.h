// Netlink: a NETLINK_ROUTE socket, for asking the kernel about routes,
// neighbours and addresses, or for hearing about their changes.
//
// Requests and events use separate sockets (one Netlink each): a socket
// subscribed to groups would interleave events with replies.
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstddef>
#include <cstdint>

#include "rings/error_text.h"

namespace xdpload::stack {

class Netlink {
 public:
  Netlink() = default;
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  // groups: RTMGRP_* bits to hear events from (0 for a request socket).
  int open(uint32_t groups, ErrorText* why);
  int fd() const { return fd_; }

  // Sends `req` (nlmsg_seq is filled in) and calls `each(msg, ctx)` for every
  // reply message. Returns 0, or -errno from the kernel's error reply.
  using Each = void (*)(const nlmsghdr* msg, void* ctx);
  int request(nlmsghdr* req, Each each, void* ctx);

  // Reads events that are waiting, without blocking; returns how many.
  int drain(Each each, void* ctx);

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

// Appends attribute `type` with `len` bytes to the message in a buffer of
// `cap` bytes. False if it does not fit.
bool nl_add_attr(nlmsghdr* msg, size_t cap, uint16_t type, const void* data, size_t len);

// Calls `fn(attr)` for every attribute in [first, first+len).
template <typename Fn>
void nl_for_each_attr(const rtattr* first, int len, Fn fn) {
  for (const rtattr* a = first; RTA_OK(a, len); a = RTA_NEXT(a, len)) fn(a);
}

}  // namespace xdpload::stack
