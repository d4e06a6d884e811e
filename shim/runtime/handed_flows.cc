// Connections handed to the kernel with their state on a port the stack
// keeps (shim/socket/tcp_handover.cc) are listed as the kernel's in the
// steering map. An entry may go only once the kernel's socket is gone: a
// frame of a live one reaching lwIP would be answered with a reset. The
// progress thread asks the kernel (sock_diag, one exact lookup each) about
// once a second and unlists the ended ones, so that a server that hands
// every connection over (inetd's shape) does not fill the map.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>

#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"

namespace xdpload::shim {

namespace {

// 1: the kernel has a TCP socket with these addresses and ports (any
// state, TIME-WAIT included); 0: none; -1: cannot tell.
int kernel_tcp_socket_exists(int nl, const HandedFlow& f) {
  struct {
    nlmsghdr nh;
    inet_diag_req_v2 r;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = AF_INET;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = ~0u;
  req.r.id.idiag_sport = htons(f.local_port);
  req.r.id.idiag_dport = htons(f.remote_port);
  req.r.id.idiag_src[0] = f.local_ip;
  req.r.id.idiag_dst[0] = f.remote_ip;
  req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (libc::send(nl, &req, sizeof req, 0) != ssize_t(sizeof req)) return -1;
  alignas(nlmsghdr) char buf[1024];
  ssize_t n = libc::recv(nl, buf, sizeof buf, 0);
  if (n < ssize_t(sizeof(nlmsghdr))) return -1;
  auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && size_t(n) >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    // (The lookup falls back to a listener on the port: not the connection.)
    auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    return m->id.idiag_dport == htons(f.remote_port) ? 1 : 0;
  }
  if (h->nlmsg_type == NLMSG_ERROR && size_t(n) >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
    auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return e->error == -ENOENT ? 0 : -1;
  }
  return -1;
}

}  // namespace

void Runtime::sweep_handed_flows() {
  auto& flows = sh_->handed_flows;
  if (flows.empty() || !stack_) return;
  int nl = libc::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return;
  timeval tv{0, 200000};  // (an answer is immediate; never hold the lock long)
  libc::setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (size_t i = flows.size(); i-- > 0;) {
    const HandedFlow f = flows[i];
    if (kernel_tcp_socket_exists(nl, f) != 0) continue;
    stack_->remove_flow(IPPROTO_TCP, htons(f.local_port), f.remote_ip, htons(f.remote_port));
    XLOG(kLogDecision, "tcp port %u: the connection from %s:%u handed to the kernel has ended; unlisted",
         unsigned(f.local_port), inet_ntoa(in_addr{f.remote_ip}), unsigned(f.remote_port));
    flows[i] = flows.back();
    flows.pop_back();
  }
  libc::close(nl);
}

}  // namespace xdpload::shim
