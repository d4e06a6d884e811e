// Socket addresses between the program's sockaddr and our SockAddr, and the
// options an accepted connection inherits.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/intercept/libc.h"
#include "shim/socket/socket.h"
#include "shim/socket/user_memory.h"

namespace xdpload::shim {

// An IPv4 address as the program gave it: AF_INET, or for an AF_INET6
// socket (`v6`) a v4-mapped address (::ffff:a.b.c.d) or the wildcard (::).
// A real IPv6 address is -EAFNOSUPPORT: that socket stays with the kernel.
inline int read_sockaddr(const sockaddr* sa, socklen_t len, SockAddr* out, bool v6 = false) {
  // As the kernel takes an address from a program (move_addr_to_kernel).
  if (len > sizeof(sockaddr_storage)) return -EINVAL;
  if (!sa && len) return -EFAULT;
  if (len && readable_prefix(sa, len) < len) return -EFAULT;
  if (!sa || len < sizeof(sa_family_t)) return -EINVAL;
  if (sa->sa_family == AF_INET) {
    if (len < sizeof(sockaddr_in)) return -EINVAL;
    sockaddr_in in;
    memcpy(&in, sa, sizeof in);
    out->ip = in.sin_addr.s_addr;
    out->port = ntohs(in.sin_port);
    return 0;
  }
  if (sa->sa_family == AF_INET6 && v6) {
    if (len < sizeof(sockaddr_in6)) return -EINVAL;
    sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof in6);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      memcpy(&out->ip, &in6.sin6_addr.s6_addr[12], 4);
    } else if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
      out->ip = INADDR_ANY;
    } else {
      return -EAFNOSUPPORT;
    }
    out->port = ntohs(in6.sin6_port);
    return 0;
  }
  return -EAFNOSUPPORT;
}

// Writes like the kernel: as much as fits, *len set to the full size; an
// AF_INET6 socket gets the v4-mapped form.
// The program's address buffer and its length can be read and written
// (move_addr_to_user's EFAULT otherwise).
inline bool sockaddr_writable(sockaddr* sa, socklen_t* len, bool v6) {
  if (writable_prefix(len, sizeof *len) < sizeof *len) return false;
  const size_t n = std::min<size_t>(*len, v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  return writable_prefix(sa, n) == n;
}

// False (nothing written) when the program's memory cannot take it: the
// caller's EFAULT.
inline bool write_sockaddr(const SockAddr& a, sockaddr* sa, socklen_t* len, bool v6 = false) {
  if (!sa || !len) return true;
  if (!sockaddr_writable(sa, len, v6)) return false;
  if (v6) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a.port);
    if (a.ip != INADDR_ANY) {
      in6.sin6_addr.s6_addr[10] = 0xff;
      in6.sin6_addr.s6_addr[11] = 0xff;
      memcpy(&in6.sin6_addr.s6_addr[12], &a.ip, 4);
    }
    memcpy(sa, &in6, std::min<socklen_t>(*len, sizeof in6));
    *len = sizeof in6;
    return true;
  }
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(a.port);
  in.sin_addr.s_addr = a.ip;
  memcpy(sa, &in, std::min<socklen_t>(*len, sizeof in));
  *len = sizeof in;
  return true;
}

// The socket's address for binding the kernel socket to ip:port.
inline socklen_t make_sockaddr(const SockAddr& a, bool v6, sockaddr_storage* out) {
  socklen_t len = sizeof *out;
  write_sockaddr(a, reinterpret_cast<sockaddr*>(out), &len, v6);
  return len;
}

// Options an accepted connection inherits from its listener, set on the
// stand-in kernel socket so that getsockopt() answers as on Linux.
void copy_options_to_kernel(int fd, const SocketOptions& o);

// The kernel socket's local address (the twin's); false when it is a real
// IPv6 one.
inline bool kernel_local(int fd, SockAddr* out) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (libc::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return read_sockaddr(reinterpret_cast<sockaddr*>(&ss), len, out, true) == 0;
}

}  // namespace xdpload::shim
