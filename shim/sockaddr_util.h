// Socket addresses between the program's sockaddr and our SockAddr, and the
// options an accepted connection inherits.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/socket.h"

namespace xdpload::shim {

// An AF_INET address; -EINVAL/-EAFNOSUPPORT as the kernel would answer.
inline int read_sockaddr(const sockaddr* sa, socklen_t len, SockAddr* out) {
  if (!sa || len < sizeof(sockaddr_in)) return -EINVAL;
  sockaddr_in in;
  memcpy(&in, sa, sizeof in);
  if (in.sin_family != AF_INET) return -EAFNOSUPPORT;
  out->ip = in.sin_addr.s_addr;
  out->port = ntohs(in.sin_port);
  return 0;
}

// Writes like the kernel: as much as fits, *len set to the full size.
inline void write_sockaddr(const SockAddr& a, sockaddr* sa, socklen_t* len) {
  if (!sa || !len) return;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(a.port);
  in.sin_addr.s_addr = a.ip;
  memcpy(sa, &in, std::min<socklen_t>(*len, sizeof in));
  *len = sizeof in;
}

// Options an accepted connection inherits from its listener, set on the
// stand-in kernel socket so that getsockopt() answers as on Linux.
void copy_options_to_kernel(int fd, const SocketOptions& o);

}  // namespace xdpload::shim
