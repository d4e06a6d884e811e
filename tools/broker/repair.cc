// TCP repair mode for a program without CAP_NET_ADMIN (Repair messages,
// rings/broker_protocol.h).
//
// A program hands a connection of its stack to the kernel by turning the
// kernel socket beside it into the connection (shim/socket/tcp_handover.cc).
// Only TCP_REPAIR itself needs the capability; once a socket is in repair
// mode its owner may set everything else. So the broker does what would
// let a program forge a connection, and no more:
// - on: repair mode, the queues' sequence numbers, the bind and the connect
//   (repair mode: no segment leaves), each checked: a TCP socket, not
//   connected, bound (or to be bound) to a TCP port the program holds
//   through the broker, at the interface's address. A port is held only
//   after the kernel judged the program's bind (Claim), so the connection
//   is one only that program could have made. The buffers are made large
//   enough for the queued data (forced sizes, bounded).
// - off: only for a socket put in repair mode here for this program (kept,
//   by inode): the kernel sends a window probe and the connection runs.
// A program that never asks `off` leaves a socket in repair mode: it sends
// nothing, and is closed here when the program goes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tools/broker/broker.h"

extern "C" {
#include "rings/steer_maps.h"
}

namespace xdpload::broker {

namespace bp = rings::broker;

namespace {

int tcp_opt(int fd, int name, int value) {
  return setsockopt(fd, IPPROTO_TCP, name, &value, sizeof value) == 0 ? 0 : errno;
}

// The socket's address as the kernel holds it: port (host order), IPv4
// address (network order; a v4-mapped IPv6 one too), false for neither.
bool address_of(int fd, bool peer, uint16_t* port, uint32_t* ip) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if ((peer ? getpeername : getsockname)(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return false;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    *port = ntohs(sin->sin_port);
    *ip = sin->sin_addr.s_addr;
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    *port = ntohs(sin6->sin6_port);
    const uint8_t* b = sin6->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t kAny[16] = {};
    if (memcmp(b, kMapped, 12) == 0) memcpy(ip, b + 12, 4);
    else if (memcmp(b, kAny, 16) == 0) *ip = 0;
    else return false;
    return true;
  }
  return false;
}

// ip:port (network order, host order) in the socket's own family.
socklen_t make_address(int domain, uint32_t ip, uint16_t port, sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  if (domain == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr.s6_addr[10] = sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(sin6->sin6_addr.s6_addr + 12, &ip, 4);
    return sizeof *sin6;
  }
  auto* sin = reinterpret_cast<sockaddr_in*>(ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = ip;
  return sizeof *sin;
}

uint64_t inode_of(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? uint64_t(st.st_ino) : 0;
}

// At least `want` bytes (bounded) for one of the socket's buffers.
void grow_buffer(int fd, int name, int force_name, uint32_t want) {
  if (!want) return;
  want = std::min(want, bp::kMaxRepairBuffer);
  int now = 0;
  socklen_t len = sizeof now;
  getsockopt(fd, SOL_SOCKET, name, &now, &len);
  const int v = int(want);
  if (now < v) setsockopt(fd, SOL_SOCKET, force_name, &v, sizeof v);
}

}  // namespace

void Broker::repair(Program& p, const bp::RepairMsg& m, int fd) {
  if (fd < 0) return reply(p, EBADF, "%s", "Repair comes with the connection's socket");
  int domain = 0, type = 0, protocol = 0;
  socklen_t len = sizeof domain;
  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  len = sizeof type;
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof protocol;
  getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len);
  if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM || protocol != IPPROTO_TCP)
    return reply(p, EINVAL, "%s", "not a TCP socket");
  const uint64_t ino = inode_of(fd);
  auto held = std::find_if(p.repairs.begin(), p.repairs.end(),
                           [&](const Program::RepairHold& r) { return r.ino == ino; });

  if (!m.on) {
    if (held == p.repairs.end())
      return reply(p, EPERM, "%s", "the socket was not put in repair mode for this program");
    int err = tcp_opt(fd, TCP_REPAIR, 0);
    close(held->fd);
    p.repairs.erase(held);
    return err ? reply(p, err, "TCP_REPAIR off: %s", strerror(err)) : reply(p, 0, "ok");
  }

  if (m.on != 1) return reply(p, EINVAL, "%s", "on is 0 or 1");
  if (held != p.repairs.end())
    return reply(p, EALREADY, "%s", "the socket is in repair mode already");
  if (p.repairs.size() >= bp::kMaxRepairHolds)
    return reply(p, ENOSPC, "%zu sockets of this program are in repair mode already",
                 p.repairs.size());
  const uint32_t bit = steer_bit(IPPROTO_TCP, m.local_port);
  if (std::find(p.ports.begin(), p.ports.end(), bit) == p.ports.end())
    return reply(p, EPERM, "tcp port %u is not this program's", unsigned(m.local_port));
  if (m.local_ip != ifaddr_)
    return reply(p, EPERM, "%s", "the connection's address is not the interface's");
  if (m.remote_port == 0 || m.remote_ip == 0 || m.remote_ip == INADDR_BROADCAST ||
      IN_MULTICAST(ntohl(m.remote_ip)))
    return reply(p, EINVAL, "%s", "not a peer a connection can have");
  uint16_t port = 0, peer_port = 0;
  uint32_t ip = 0, peer_ip = 0;
  if (address_of(fd, true, &peer_port, &peer_ip))
    return reply(p, EISCONN, "%s", "the socket is connected already");
  const bool bound = address_of(fd, false, &port, &ip) && port != 0;
  if (bound && (port != m.local_port || (ip != 0 && ip != m.local_ip)))
    return reply(p, EPERM, "%s", "the socket is bound to another address");

  if (int err = tcp_opt(fd, TCP_REPAIR, 1))
    return reply(p, err, "TCP_REPAIR: %s", strerror(err));
  // A failure from here leaves the socket as it came (repair mode sends no
  // segment: a disconnect is silent).
  bool connected = false;
  auto undo = [&](int err, const char* what) {
    if (connected) {
      static const sockaddr unspec = {AF_UNSPEC, {}};
      connect(fd, &unspec, sizeof unspec);
    }
    tcp_opt(fd, TCP_REPAIR, 0);
    reply(p, err, "%s: %s", what, strerror(err));
  };
  int err = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
  if (!err) err = tcp_opt(fd, TCP_QUEUE_SEQ, int(m.recv_seq));
  if (!err) err = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
  if (!err) err = tcp_opt(fd, TCP_QUEUE_SEQ, int(m.send_seq));
  if (!err) err = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
  if (err) return undo(err, "the queues' sequence numbers");
  sockaddr_storage ss;
  if (!bound) {
    // (An accepted connection's kernel socket was never bound; repair mode
    // binds over the listener's hold on the port.)
    socklen_t sl = make_address(domain, m.local_ip, m.local_port, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) return undo(errno, "bind");
  }
  socklen_t sl = make_address(domain, m.remote_ip, m.remote_port, &ss);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) return undo(errno, "connect");
  connected = true;
  // (Checked again as the kernel holds it now.)
  if (!address_of(fd, false, &port, &ip) || port != m.local_port || ip != m.local_ip)
    return undo(EPERM, "the connection's address");
  grow_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, m.sndbuf);
  grow_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, m.rcvbuf);
  int keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (keep < 0) return undo(errno, "keeping the socket");
  p.repairs.push_back(Program::RepairHold{ino, keep});
  reply(p, 0, "ok");
}

void Broker::end_repairs(Program& p) {
  // (Closing our copy does not close the program's socket, which is gone
  // with it anyway, or kept by another process: left in repair mode, it
  // sends nothing.)
  for (const Program::RepairHold& r : p.repairs) close(r.fd);
  p.repairs.clear();
}

}  // namespace xdpload::broker
