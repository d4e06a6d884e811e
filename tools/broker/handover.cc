// Connections a program without CAP_NET_ADMIN hands to the kernel (Handover
// messages, rings/broker_protocol.h says the steps).
//
// TCP_REPAIR needs the capability, and a socket in repair mode lets its
// holder bind over other users' ports (SK_FORCE_REUSE) and connect anywhere
// with sequence numbers of its choosing. So the program never holds one:
// the broker builds the connection in a socket of its own, from the state
// and bytes the program sends, checked to be a connection only that
// program could have had:
// - on a TCP port it holds through the broker (its Claim showed a socket
//   the kernel had bound there), which no other user's socket holds now
//   (sock_diag: the claim may be old, the program's hold let go since);
// - at the interface's address, to a unicast peer that is not this host;
// - with queued bytes and options within what a TCP stack can have.
// It passes the socket on only once repair mode has ended (Finish), when it
// is an ordinary connection. What it builds and is not finished goes, with
// its program, silently (a socket closed in repair mode sends nothing).
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "rings/broker_client.h"
#include "tools/broker/broker.h"

extern "C" {
#include "rings/steer_maps.h"
}

namespace xdpload::broker {

namespace bp = rings::broker;

namespace {

// TCP states sock_diag is asked for: all but TIME_WAIT and the requests of
// a listener (neither has an owner): bits 1-11, NEW_SYN_RECV (12) left out,
// and the sockets bound and not yet listening or connected (13,
// TCP_BOUND_INACTIVE: kernel 6.5; an older one does not list them).
constexpr uint32_t kOwnedStates = (0xffeu & ~(1u << 6 /* TIME_WAIT */)) | (1u << 13);

// Whether every TCP socket on `port` (local, either family) is owned by
// `uid`, sockets whose inode is in `ours` (the broker's own) aside, and at
// least one is. "" or the reason it is not.
std::string port_held_only_by(uid_t uid, uint16_t port, const std::vector<uint64_t>& ours) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return std::string("sock_diag: ") + strerror(errno);
  bool held = false;
  std::string refusal;
  for (uint8_t family : {uint8_t(AF_INET), uint8_t(AF_INET6)}) {
    // The kernel filters by source port (sport >= P and sport <= P, as
    // ss compiles it): the dump costs the port's sockets, not the host's.
    struct {
      nlmsghdr nh;
      inet_diag_req_v2 req;
      nlattr bc_attr;
      inet_diag_bc_op bc[4];
    } q{};
    q.nh.nlmsg_len = sizeof q;
    q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    q.req.sdiag_family = family;
    q.req.sdiag_protocol = IPPROTO_TCP;
    q.req.idiag_states = kOwnedStates;
    q.bc_attr.nla_len = uint16_t(sizeof q.bc_attr + sizeof q.bc);
    q.bc_attr.nla_type = INET_DIAG_REQ_BYTECODE;
    q.bc[0] = inet_diag_bc_op{INET_DIAG_BC_S_GE, 8, 20};  // (no: past the end, rejected)
    q.bc[1] = inet_diag_bc_op{0, 0, port};
    q.bc[2] = inet_diag_bc_op{INET_DIAG_BC_S_LE, 8, 12};
    q.bc[3] = inet_diag_bc_op{0, 0, port};
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(nl, &q, sizeof q, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
      refusal = std::string("sock_diag: ") + strerror(errno);
      break;
    }
    alignas(nlmsghdr) char buf[32768];
    bool done = false;
    while (!done) {
      ssize_t n = recv(nl, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        refusal = std::string("sock_diag: ") + (n < 0 ? strerror(errno) : "no answer");
        done = true;
        break;
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, size_t(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          refusal = "sock_diag: an error answer";
          done = true;
          break;
        }
        const auto* d = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        if (ntohs(d->id.idiag_sport) != port) continue;
        // (A connection closed by its program, ending: nobody's any more.)
        if (d->idiag_inode == 0) continue;
        if (std::find(ours.begin(), ours.end(), uint64_t(d->idiag_inode)) != ours.end()) continue;
        if (d->idiag_uid != uid) {
          if (refusal.empty())
            refusal = "uid " + std::to_string(d->idiag_uid) + " has a socket on tcp port " +
                      std::to_string(port);
        } else {
          held = true;
        }
      }
    }
    if (!refusal.empty()) break;
  }
  close(nl);
  if (refusal.empty() && !held)
    refusal = "the program holds no socket on tcp port " + std::to_string(port) + " any more";
  return refusal;
}

// A peer a connection of the interface can have: unicast, not this host.
bool real_peer(uint32_t ip_be, uint32_t ifaddr_be) {
  const uint32_t ip = ntohl(ip_be);
  const uint32_t top = ip >> 24;
  return ip != 0 && ip_be != ifaddr_be && ip != INADDR_BROADCAST && top != 0 && top != 127 &&
         top < 224;
}

uint64_t inode_of(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? uint64_t(st.st_ino) : 0;
}

// Reads [at, at + n) of the memfd into `out`.
bool read_bytes(int fd, off_t at, uint32_t n, std::vector<uint8_t>* out) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, out->data() + got, n - got, at + off_t(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += size_t(r);
  }
  return true;
}

}  // namespace

void Broker::reply_with_socket(Program& p, int status, const char* text, int fd) {
  bp::Reply r;
  r.h.seq = p.request_seq;
  r.status = status;
  snprintf(r.text, sizeof r.text, "%s", text);
  rings::send_with_fd(p.conn, &r, sizeof r, fd, MSG_DONTWAIT);
}

void Broker::handover(Program& p, const bp::HandoverMsg& m, int fd) {
  const rings::RepairState& st = m.state;
  auto it = std::find_if(p.handovers.begin(), p.handovers.end(), [&](const Program::Handover& h) {
    return h.state.local_port == st.local_port && h.state.remote_ip == st.remote_ip &&
           h.state.remote_port == st.remote_port;
  });
  if (m.step == bp::kHandoverFinish || m.step == bp::kHandoverDrop) {
    if (it == p.handovers.end())
      return reply(p, ENOENT, "%s", "no connection of this program is being handed over there");
    if (m.step == bp::kHandoverDrop) {
      close(it->fd);  // (in repair mode: silent)
      p.handovers.erase(it);
      return reply(p, 0, "ok");
    }
    ErrorText why;
    int rc = rings::repair_finish(it->fd, it->state, it->out.data(), it->undo, false, &why);
    reply_with_socket(p, -rc, rc < 0 ? why.c_str() : "ok", it->fd);
    say("program %s (pid %d): its connection on tcp port %u handed to the kernel", p.name.c_str(),
        int(p.pid), unsigned(st.local_port));
    close(it->fd);
    p.handovers.erase(it);
    return;
  }
  if (m.step != bp::kHandoverBuild) return reply(p, EINVAL, "%s", "a step is Build, Finish or Drop");
  if (it != p.handovers.end())
    return reply(p, EALREADY, "%s", "that connection is being handed over already");
  if (p.handovers.size() >= bp::kMaxHandovers)
    return reply(p, ENOSPC, "%zu connections of this program are being handed over already",
                 p.handovers.size());
  if (fd < 0) return reply(p, EBADF, "%s", "Build comes with a memfd of the connection's bytes");
  const uint32_t bit = steer_bit(IPPROTO_TCP, st.local_port);
  if (std::find(p.ports.begin(), p.ports.end(), bit) == p.ports.end())
    return reply(p, EPERM, "tcp port %u is not this program's", unsigned(st.local_port));
  if (st.local_ip != ifaddr_)
    return reply(p, EPERM, "%s", "the connection's address is not the interface's");
  if (!real_peer(st.remote_ip, ifaddr_) || st.remote_port == 0)
    return reply(p, EINVAL, "%s", "not a peer a connection of the interface can have");
  if (st.in_len > bp::kMaxHandoverBytes || st.out_len > bp::kMaxHandoverBytes ||
      st.in_flight > st.out_len || st.mss < 64 || st.v6 > 1 || (st.flags & ~0x1fu) ||
      st.snd_wscale > 14 || st.rcv_wscale > 14)
    return reply(p, EINVAL, "%s", "not a state a TCP connection can have");
  // The bytes first, from shared memory only (a memfd or tmpfs file, which
  // take seals): a file on a mount the user serves (FUSE) could hold the
  // broker's one loop in a read as long as it likes.
  struct stat mst;
  std::vector<uint8_t> in, out;
  if (fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &mst) != 0 || !S_ISREG(mst.st_mode) ||
      uint64_t(mst.st_size) < uint64_t(st.in_len) + st.out_len || !read_bytes(fd, 0, st.in_len, &in) ||
      !read_bytes(fd, off_t(st.in_len), st.out_len, &out))
    return reply(p, EINVAL, "%s", "a memfd holding the connection's bytes comes with Build");
  // (This program's own builds on the port aside: they are its.)
  std::vector<uint64_t> ours;
  for (const Program::Handover& h : p.handovers) ours.push_back(inode_of(h.fd));
  if (std::string no = port_held_only_by(p.uid, st.local_port, ours); !no.empty())
    return reply(p, EPERM, "%s", no.c_str());
  // The socket is the program's user's, as a socket it made itself would
  // be (its sk_uid, and the file's credentials that netfilter's owner match
  // reads: fsuid and fsgid, per thread, around socket()). Bound to ifaddr:P,
  // a port the program holds, it can then do nothing a socket of the
  // program's own could not. (Not bound to the device: the program's
  // socket was not, and sock_diag's exact lookups, which find when the
  // kernel's connection ends, would miss it. Its cgroup is the broker's:
  // charged there, and the broker's cgroup programs see it.)
  const uid_t uid_was = uid_t(setfsuid(p.uid));
  const gid_t gid_was = gid_t(setfsgid(p.gid));
  int s = socket(st.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int socket_errno = errno;
  setfsgid(gid_was);
  setfsuid(uid_was);
  if (s < 0) return reply(p, socket_errno, "socket: %s", strerror(socket_errno));
  const int off = 0;
  if (st.v6) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // (v4-mapped)
  Program::Handover h;
  h.state = st;
  ErrorText why;
  if (int rc = rings::repair_build(s, st, in.data(), out.data(), &h.undo, &why); rc < 0) {
    close(s);
    return reply(p, -rc, "%s", why.c_str());
  }
  // Once more now that the socket holds the port (repair mode binds over
  // anything): a socket another user made since the first look is not
  // bound over. (Closed in repair mode: silent.)
  ours.push_back(inode_of(s));
  if (std::string no = port_held_only_by(p.uid, st.local_port, ours); !no.empty()) {
    close(s);
    return reply(p, EPERM, "%s", no.c_str());
  }
  h.fd = s;
  h.out = std::move(out);
  p.handovers.push_back(std::move(h));
  reply(p, 0, "ok");
}

void Broker::end_handovers(Program& p) {
  for (const Program::Handover& h : p.handovers) close(h.fd);  // (in repair mode: silent)
  p.handovers.clear();
}

}  // namespace xdpload::broker
