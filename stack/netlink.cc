#include "stack/netlink.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rings/private_fd.h"

namespace xdpload::stack {

Netlink::~Netlink() {
  rings::close_private_fd(fd_);
}

int Netlink::open(uint32_t groups, ErrorText* why) {
  fd_ = rings::to_private_fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (fd_ < 0) return why->set(errno, "cannot open a netlink socket: %m");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return why->set(errno, "cannot bind a netlink socket: %m");
  // Replies to dumps can be large; events can come in bursts.
  int size = 1 << 20;
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return 0;
}

int Netlink::request(nlmsghdr* req, Each each, void* ctx) {
  req->nlmsg_seq = ++seq_;
  req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    return -errno;
  // A dump ends with NLMSG_DONE, anything else with its ACK. NLM_F_DUMP is
  // two bits that other requests reuse (NLM_F_REPLACE is NLM_F_ROOT): only a
  // GET with both bits is a dump.
  bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP && (req->nlmsg_type & 3) == 2;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // Non-blocking socket: the kernel answers at once for the requests
        // we make; a second without an answer means it never will.
        pollfd pfd{fd_, POLLIN, 0};
        if (poll(&pfd, 1, 1000) <= 0) return -ETIMEDOUT;
        continue;
      }
      return -errno;
    }
    int len = int(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, len); m = NLMSG_NEXT(m, len)) {
      if (m->nlmsg_seq != req->nlmsg_seq) continue;
      if (m->nlmsg_type == NLMSG_DONE) return 0;
      if (m->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(m));
        // error 0 is the ACK; a dump ends with DONE instead.
        if (e->error != 0 || !dump) return e->error;
        continue;
      }
      each(m, ctx);
    }
  }
}

int Netlink::drain(Each each, void* ctx) {
  alignas(nlmsghdr) char buf[32768];
  int events = 0;
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
      // ENOBUFS: events were lost; the caller's periodic refresh recovers.
      return events;
    }
    int len = int(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, len); m = NLMSG_NEXT(m, len)) {
      each(m, ctx);
      ++events;
    }
  }
}

bool nl_add_attr(nlmsghdr* msg, size_t cap, uint16_t type, const void* data, size_t len) {
  size_t at = NLMSG_ALIGN(msg->nlmsg_len);
  size_t need = RTA_SPACE(len);
  if (at + need > cap) return false;
  auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(msg) + at);
  a->rta_type = type;
  a->rta_len = uint16_t(RTA_LENGTH(len));
  memcpy(RTA_DATA(a), data, len);
  msg->nlmsg_len = uint32_t(at + need);
  return true;
}

}  // namespace xdpload::stack
