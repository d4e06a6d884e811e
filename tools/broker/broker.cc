#include "tools/broker/broker.h"

#include <arpa/inet.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <initializer_list>

extern "C" {
#include "rings/steer_maps.h"
}

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

namespace xdpload::broker {

namespace bp = rings::broker;

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

}  // namespace

void say(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "xdpload daemon: %s\n", line);
}

namespace {

// A program that connected and has not said Hello within this long is
// dropped; so are connections beyond kMaxPending waiting to say it.
constexpr uint64_t kHelloDeadlineNs = 2'000'000'000;
constexpr size_t kMaxPending = 64;
// Frames of a program that went away are taken back this long after its
// sockets left the XDP map: a frame the kernel was redirecting to it in
// that instant is on its rx ring by then, and counted.
constexpr uint64_t kReclaimDelayNs = 20'000'000;
// ... and at most this long for the kernel to finish sending its frames.
constexpr uint64_t kInFlightWaitNs = 5'000'000'000;

const char* proto_name(uint8_t p) { return p == IPPROTO_TCP ? "tcp" : "udp"; }

uint32_t interface_address(const char* ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  uint32_t a = 0;
  if (ioctl(s, SIOCGIFADDR, &ifr) == 0)
    a = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr;
  close(s);
  return a;
}

// Maps one of an AF_XDP socket's rings read-only: the broker reads the rx
// rings of the sockets it made for a program (which frames the kernel gave
// it) and the consumer index of its tx ring (how far the kernel has sent).
bool map_ring_read_only(int fd, bool tx, uint32_t size, Broker::ReadOnlyRing* r) {
  xdp_mmap_offsets off{};
  socklen_t olen = sizeof off;
  if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &olen) != 0) return false;
  const xdp_ring_offset& o = tx ? off.tx : off.rx;
  r->len = o.desc + size_t(size) * sizeof(xdp_desc);
  void* p = mmap(nullptr, r->len, PROT_READ, MAP_SHARED, fd, tx ? XDP_PGOFF_TX_RING : XDP_PGOFF_RX_RING);
  if (p == MAP_FAILED) return false;
  auto* b = static_cast<uint8_t*>(p);
  r->map = p;
  r->producer = reinterpret_cast<const uint32_t*>(b + o.producer);
  r->consumer = reinterpret_cast<const uint32_t*>(b + o.consumer);
  r->desc = reinterpret_cast<const xdp_desc*>(b + o.desc);
  return true;
}

}  // namespace

void Broker::closer_loop() {
  std::unique_lock<std::mutex> g(closing_mutex_);
  for (;;) {
    closing_cv_.wait(g, [this] { return stop_closer_ || !closing_.empty(); });
    if (closing_.empty() && stop_closer_) return;
    std::vector<Closing> batch(closing_.begin(), closing_.end());
    closing_.clear();
    g.unlock();
    // The rings' mappings first: they hold the socket.
    for (const Closing& c : batch)
      if (c.map) munmap(c.map, c.len);
    for (const Closing& c : batch)
      if (c.fd >= 0) close(c.fd);
    g.lock();
  }
}

Broker::~Broker() {
  for (auto& p : programs_)
    if (p) drop_program(*p);
  if (closer_.joinable()) {
    {
      std::lock_guard<std::mutex> g(closing_mutex_);
      stop_closer_ = true;
      closing_cv_.notify_one();
    }
    closer_.join();
  }
  for (auto& p : pending_) close(p->conn);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (kick_fd_ >= 0) close(kick_fd_);
  port_.reset();  // the XDP link goes with it
  if (!config_.status_path.empty()) unlink(config_.status_path.c_str());
}

bool Broker::start(std::string* why) {
  if (!config_.policy_path.empty()) {
    std::string err;
    if (!policy_.load(config_.policy_path.c_str(), &err)) {
      *why = "policy " + config_.policy_path + " " + err;
      return false;
    }
  }
  if (config_.quota > config_.frames / 2) {
    *why = "the quota must be 1.." + std::to_string(config_.frames / 2) + " frames (half the UMEM)";
    return false;
  }
  if (!open_port(why)) return false;
  if (config_.quota == 0) {
    uint32_t lent = fill_target_ * port_->queue_count();
    config_.quota = std::max<uint32_t>(256, (port_->frame_count() - lent) / 4);
  }
  closer_ = std::thread([this] { closer_loop(); });
  kick_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (kick_fd_ < 0 || listen_fd_ < 0) {
    *why = std::string("cannot make the broker's descriptors: ") + strerror(errno);
    return false;
  }
  sockaddr_un sa;
  socklen_t len = bp::broker_address(config_.iface.c_str(), &sa);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    *why = errno == EADDRINUSE ? "a broker already serves " + config_.iface + " in this network namespace"
                               : std::string("cannot bind the broker's socket: ") + strerror(errno);
    return false;
  }
  if (listen(listen_fd_, 64) != 0) {
    *why = std::string("cannot listen: ") + strerror(errno);
    return false;
  }
  ifaddr_ = interface_address(config_.iface.c_str());
  say("serving %s: queue%s %s, XDP %s%s, %u frames of %u bytes, quota %u, policy %s (%zu rule%s)",
      config_.iface.c_str(), port_->queue_count() == 1 ? "" : "s", port_->queue_list().c_str(),
      port_->mode_string().c_str(), port_->rx_meta_key() ? " with hardware receive stamps" : "",
      port_->frame_count(), port_->umem().frame_size(),
      config_.quota, config_.policy_path.empty() ? "built in (root only)" : config_.policy_path.c_str(),
      policy_.size(), policy_.size() == 1 ? "" : "s");
  return true;
}

bool Broker::open_port(std::string* why) {
  rings::PortConfig pc;
  pc.iface = config_.iface;
  pc.queues = config_.queues;
  pc.umem.frame_count = config_.frames;
  pc.umem.frame_size = config_.frame_size;
  pc.ring_size = config_.ring_size;
  pc.mode = config_.mode;
  pc.hw_stamps = config_.hw_stamps;
  pc.broker_owner = true;
  ErrorText err;
  if (rings::XskPort::open(pc, &port_, &err) < 0) {
    *why = err.c_str();
    return false;
  }
  if (!port_->degraded().empty()) say("%s", port_->degraded().c_str());
  if (*port_->steering().hw_stamp_refusal())
    say("no hardware receive stamps: %s", port_->steering().hw_stamp_refusal());
  frame_shift_ = port_->umem().frame_shift();
  fill_target_ = port_->fill_target();
  const uint32_t n = port_->frame_count();
  owner_.assign(n, kFree);
  free_.clear();
  for (uint32_t i = n; i-- > 0;) free_.push_back(i);
  refill();
  return true;
}

// ---- programs ----

Peer Broker::peer_of(int conn, pid_t* pid) const {
  Peer peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer.uid = cred.uid;
    *pid = cred.pid;
    peer.groups.push_back(cred.gid);
  } else {
    peer.uid = uid_t(-1);
  }
  gid_t groups[256];
  len = sizeof groups;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
    for (size_t i = 0; i < len / sizeof(gid_t); ++i) peer.groups.push_back(groups[i]);
  return peer;
}

void Broker::accept_program() {
  // Everything waiting, so that a flood of connections cannot keep the
  // backlog full for the programs behind it.
  for (int i = 0; i < 1024; ++i) {
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) return;
    if (pending_.size() >= kMaxPending) {
      // A flood of connections that say nothing: the newest go at once.
      ++counters_.bad_messages;
      close(conn);
      continue;
    }
    auto p = std::make_unique<Program>();
    p->conn = conn;
    p->connected_ns = now_ns();
    pending_.push_back(std::move(p));
  }
}

void Broker::reply(Program& p, int status, const char* fmt, ...) {
  bp::Reply r;
  r.h.seq = p.request_seq;
  r.status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.text, sizeof r.text, fmt, ap);
  va_end(ap);
  send(p.conn, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Broker::serve_message(Program& p) {
  alignas(8) char buf[512];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n = recvmsg(p.conn, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  // Descriptors that came along: at most one is used (a claim's proof).
  int fds[4];
  int nfds = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = int((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (nfds < 4) fds[nfds++] = fd;
      else close(fd);
    }
  }
  auto close_fds = [&] {
    for (int i = 0; i < nfds; ++i) close(fds[i]);
    nfds = 0;
  };
  if (n <= 0) {
    close_fds();
    program_gone(p, n == 0 ? "closed its connection" : "connection failed");
    return;
  }
  // The answer repeats the request's number (0 for one too short to have
  // a header).
  p.request_seq = 0;
  if (size_t(n) >= sizeof(bp::Header))
    memcpy(&p.request_seq, buf + offsetof(bp::Header, seq), sizeof p.request_seq);
  auto malformed = [&](const char* what) {
    ++counters_.bad_messages;
    say("program %s (pid %d): %s (%zd bytes): refused", p.name.empty() ? "?" : p.name.c_str(),
        int(p.pid), what, n);
    reply(p, EPROTO, "malformed message: %s", what);
  };
  if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || size_t(n) < sizeof(bp::Header)) {
    close_fds();
    malformed("truncated or oversized message");
    return;
  }
  bp::Header h;
  memcpy(&h, buf, sizeof h);
  if (h.magic != bp::kMagic || h.version != bp::kVersion) {
    close_fds();
    malformed("not an xdpload broker message of this version");
    return;
  }
  bp::Hello hello;
  bp::PortMsg port;
  bp::FlowMsg flow_msg;
  bp::HandoverMsg handover_msg;
  if (size_t(n) == sizeof handover_msg) memcpy(&handover_msg, buf, sizeof handover_msg);
  if (size_t(n) == sizeof hello) memcpy(&hello, buf, sizeof hello);
  if (size_t(n) == sizeof port) memcpy(&port, buf, sizeof port);
  if (size_t(n) == sizeof flow_msg) memcpy(&flow_msg, buf, sizeof flow_msg);
  switch (bp::Op(h.op)) {
    case bp::Op::Hello:
      close_fds();
      if (size_t(n) != sizeof(bp::Hello)) return malformed("Hello of the wrong size");
      if (p.welcomed) return malformed("a second Hello");
      welcome(p, hello);
      return;
    case bp::Op::Claim:
      if (size_t(n) != sizeof(bp::PortMsg)) {
        close_fds();
        return malformed("Claim of the wrong size");
      }
      claim(p, port, nfds == 1 ? fds[0] : -1);
      close_fds();
      return;
    case bp::Op::Release:
      close_fds();
      if (size_t(n) != sizeof(bp::PortMsg)) return malformed("Release of the wrong size");
      release(p, port);
      return;
    case bp::Op::Share:
    case bp::Op::Flow:
      close_fds();
      if (size_t(n) != sizeof(bp::FlowMsg)) return malformed("Share or Flow of the wrong size");
      if (bp::Op(h.op) == bp::Op::Share) share(p, flow_msg);
      else flow(p, flow_msg);
      return;
    case bp::Op::Handover:
      if (size_t(n) != sizeof(bp::HandoverMsg)) {
        close_fds();
        return malformed("Handover of the wrong size");
      }
      handover(p, handover_msg, nfds == 1 ? fds[0] : -1);
      close_fds();
      return;
    default:
      close_fds();
      malformed("unknown operation");
  }
}

void Broker::welcome(Program& p, const bp::Hello& hello) {
  Peer peer = peer_of(p.conn, &p.pid);
  p.uid = peer.uid;
  p.gid = peer.groups.empty() ? gid_t(-1) : peer.groups.front();
  p.name.assign(hello.program, strnlen(hello.program, sizeof hello.program));
  for (char& c : p.name)
    if (c < 32 || c > 126) c = '?';
  p.welcomed = true;  // one Hello per connection, whatever the answer

  bp::Welcome w;
  w.h.seq = p.request_seq;
  auto refuse = [&](int status, const std::string& text) {
    ++counters_.programs_refused;
    w.status = status;
    snprintf(w.text, sizeof w.text, "%s", text.c_str());
    send(p.conn, &w, sizeof w, MSG_NOSIGNAL | MSG_DONTWAIT);
    say("program %s (pid %d, uid %u) refused: %s", p.name.c_str(), int(p.pid), unsigned(p.uid),
        text.c_str());
  };
  Decision d = policy_.admits(peer);
  if (!d.allow) {
    refuse(EACCES, d.rule ? "uid " + std::to_string(peer.uid) + " is denied by policy line " +
                                std::to_string(d.rule->line) + " (" + d.rule->text + ")"
                          : "uid " + std::to_string(peer.uid) + " is not in the broker's policy");
    return;
  }
  uint32_t slot = 0;
  // A slot is taken from the welcome on (the program moves into
  // programs_ only after this pass over the connections) until its frames
  // are back.
  for (uint32_t s = 1; s < kMaxSlots && !slot; ++s)
    if (!slot_taken_[s]) slot = s;
  if (!slot) {
    refuse(EAGAIN, "the broker serves " + std::to_string(kMaxSlots - 1) + " programs at most");
    return;
  }
  uint32_t need = std::min<uint32_t>(config_.quota / 4, 512);
  if (free_.size() < need) {
    refuse(ENOBUFS, "the broker has no frames to spare (" + std::to_string(free_.size()) + " free)");
    return;
  }
  p.slot = slot;
  slot_taken_[slot] = true;
  std::string why;
  if (!make_sockets(p, &why)) {
    refuse(ENOMEM, why);
    drop_program(p);  // what make_sockets() made, and the slot
    return;
  }

  w.slot = slot;
  w.frame_count = port_->frame_count();
  w.frame_size = port_->umem().frame_size();
  w.headroom = rings::XskPort::kUserHeadroom;
  w.umem_bytes = port_->umem().mapped_bytes();
  w.control_bytes = p.control_bytes;
  w.ring_size = config_.ring_size;
  w.nqueues = port_->queue_count();
  w.interface_queues = port_->interface_queues();
  w.flags = (port_->zero_copy() ? bp::kZeroCopy : 0) | (port_->multi_buffer() ? bp::kMultiBuffer : 0) |
            (port_->xdp_mode() == rings::XdpMode::Driver ? bp::kDriverMode : 0) |
            (port_->tx_checksum_offload() ? bp::kTxChecksum : 0);
  w.quota = config_.quota;
  w.fill_target = fill_target_;
  w.rx_meta_key = port_->rx_meta_key();
  for (uint32_t i = 0; i < w.nqueues; ++i) w.queue_ids[i] = port_->queue_id(i);

  // First frames to send with, before the program asks.
  for (uint32_t i = 0; i < need; ++i) {
    uint32_t f = free_.back();
    free_.pop_back();
    owner_[f] = uint8_t(slot);
    ++p.held;
    p.control->to_program.push(uint64_t(f) << frame_shift_);
  }

  int fds[bp::kWelcomeFixedFds + rings::kMaxQueues];
  int nfds = 0;
  fds[nfds++] = port_->umem().fd();
  fds[nfds++] = p.control_fd;
  fds[nfds++] = kick_fd_;
  for (uint32_t i = 0; i < w.nqueues; ++i) fds[nfds++] = p.socks[i].fd;
  iovec iov{&w, sizeof w};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)];
  m.msg_control = control;
  m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  if (sendmsg(p.conn, &m, MSG_NOSIGNAL | MSG_DONTWAIT) != ssize_t(sizeof w)) {
    say("program %s (pid %d): cannot send its welcome: %s", p.name.c_str(), int(p.pid),
        strerror(errno));
    program_gone(p, "did not take its welcome");
    return;
  }
  ++counters_.programs_served;
  set_kick_every();
  say("program %s (pid %d, uid %u) served in slot %u", p.name.c_str(), int(p.pid),
      unsigned(p.uid), slot);
}

bool Broker::make_sockets(Program& p, std::string* why) {
  // The control segment.
  p.control_bytes = (sizeof(bp::Control) + 4095) & ~size_t(4095);
  p.control_fd = memfd_create("xdpload-program", MFD_CLOEXEC);
  if (p.control_fd < 0 || ftruncate(p.control_fd, off_t(p.control_bytes)) != 0) {
    *why = std::string("cannot make a control segment: ") + strerror(errno);
    return false;
  }
  void* ctl = mmap(nullptr, p.control_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, p.control_fd, 0);
  if (ctl == MAP_FAILED) {
    *why = std::string("cannot map a control segment: ") + strerror(errno);
    return false;
  }
  p.control = static_cast<bp::Control*>(ctl);
  p.control->magic = bp::kMagic;
  p.control->version = bp::kVersion;

  // One socket per queue, sharing the queue's fill and completion rings
  // (the broker's socket's): an rx ring each, the first one a tx ring too.
  for (uint32_t i = 0; i < port_->queue_count(); ++i) {
    ProgramSocket& s = p.socks[i];
    s.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    uint32_t size = config_.ring_size;
    bool ok = s.fd >= 0 && setsockopt(s.fd, SOL_XDP, XDP_RX_RING, &size, sizeof size) == 0 &&
              (i != 0 || setsockopt(s.fd, SOL_XDP, XDP_TX_RING, &size, sizeof size) == 0);
    if (ok) {
      sockaddr_xdp sa{};
      sa.sxdp_family = AF_XDP;
      sa.sxdp_ifindex = uint32_t(port_->ifindex());
      sa.sxdp_queue_id = port_->queue_id(i);
      sa.sxdp_flags = XDP_SHARED_UMEM;
      sa.sxdp_shared_umem_fd = uint32_t(port_->queue_fd(i));
      ok = bind(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
           map_ring_read_only(s.fd, /*tx=*/false, size, &s.rx) &&
           (i != 0 || map_ring_read_only(s.fd, /*tx=*/true, size, &s.tx));
    }
    if (!ok) {
      *why = std::string("cannot make an AF_XDP socket for queue ") +
             std::to_string(port_->queue_id(i)) + ": " + strerror(errno);
      return false;
    }
    s.audited = __atomic_load_n(s.rx.producer, __ATOMIC_ACQUIRE);
    ErrorText err;
    if (port_->steering().add_socket(p.slot, port_->queue_id(i), s.fd, &err) < 0) {
      *why = err.c_str();
      return false;
    }
  }
  return true;
}

void Broker::claim(Program& p, const bp::PortMsg& m, int fd) {
  ++counters_.claims;
  auto refuse = [&](int status, const char* fmt, auto... args) {
    ++counters_.claims_refused;
    char text[200];
    snprintf(text, sizeof text, fmt, args...);
    say("program %s (pid %d): %s port %u refused: %s", p.name.c_str(), int(p.pid),
        proto_name(m.proto), m.port, text);
    reply(p, status, "%s", text);
  };
  if (!p.welcomed || !p.slot) return refuse(EPROTO, "%s", "no Hello before the claim");
  if ((m.proto != IPPROTO_TCP && m.proto != IPPROTO_UDP) || m.port == 0)
    return refuse(EINVAL, "%s", "not a TCP or UDP port");
  // The proof: the program's kernel socket bound to that port.
  if (fd < 0) return refuse(EPERM, "%s", "no socket came with the claim");
  int domain = 0, protocol = 0;
  socklen_t len = sizeof domain;
  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  len = sizeof protocol;
  getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len);
  sockaddr_storage ss{};
  len = sizeof ss;
  uint16_t bound_port = 0;
  uint32_t bound_ip = 0;
  bool v6 = false;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      bound_port = ntohs(sin->sin_port);
      bound_ip = sin->sin_addr.s_addr;
    } else if (ss.ss_family == AF_INET6) {
      bound_port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
      v6 = true;
    }
  }
  if ((domain != AF_INET && domain != AF_INET6) || protocol != m.proto || bound_port != m.port)
    return refuse(EPERM, "the socket sent does not hold %s port %u", proto_name(m.proto), m.port);
  if (!v6 && bound_ip != INADDR_ANY && bound_ip != ifaddr_ && !IN_MULTICAST(ntohl(bound_ip)))
    return refuse(EPERM, "%s", "the socket sent is bound to another interface's address");
  Peer peer = peer_of(p.conn, &p.pid);
  Decision d = policy_.decide(peer, m.port);
  if (!d.allow) {
    if (d.rule)
      return refuse(EACCES, "denied by policy line %d (%s)", d.rule->line, d.rule->text.c_str());
    return refuse(EACCES, "no policy rule lets uid %u accelerate port %u", unsigned(peer.uid),
                  m.port);
  }
  uint32_t bit = steer_bit(m.proto, m.port);
  uint8_t holder = port_->steering().slot(m.proto, m.port);
  if (port_->steering().steered(m.proto, m.port) && holder != p.slot) {
    Program* other = find(holder);
    return refuse(EADDRINUSE, "already accelerated for %s (pid %d)",
                  other ? other->name.c_str() : "another program", other ? int(other->pid) : 0);
  }
  if (holder != p.slot || !port_->steering().steered(m.proto, m.port)) {
    port_->steering().set_slot(m.proto, m.port, uint8_t(p.slot));
    port_->steering().steer(m.proto, m.port);
    p.ports.push_back(bit);
  }
  reply(p, 0, "ok");
}

void Broker::share(Program& p, const bp::FlowMsg& m) {
  if (m.proto != IPPROTO_TCP && m.proto != IPPROTO_UDP)
    return reply(p, EINVAL, "%s", "not a TCP or UDP port");
  const uint32_t bit = steer_bit(m.proto, m.port);
  if (std::find(p.ports.begin(), p.ports.end(), bit) == p.ports.end())
    return reply(p, ENOENT, "%s port %u is not this program's", proto_name(m.proto), m.port);
  if (!m.on) {
    unshare(p, m.proto, m.port);
    return reply(p, 0, "ok");
  }
  if (std::find(p.shared.begin(), p.shared.end(), bit) == p.shared.end()) p.shared.push_back(bit);
  port_->steering().share_port(m.proto, m.port, true);
  say("program %s (pid %d): %s port %u shared with the kernel, its own flows steered",
      p.name.c_str(), int(p.pid), proto_name(m.proto), m.port);
  reply(p, 0, "ok");
}

void Broker::flow(Program& p, const bp::FlowMsg& m) {
  if (m.proto != IPPROTO_TCP && m.proto != IPPROTO_UDP)
    return reply(p, EINVAL, "%s", "not a TCP or UDP port");
  if (m.on != 0 && m.on != STEER_FLOW_STACK && m.on != STEER_FLOW_KERNEL)
    return reply(p, EINVAL, "%s", "a flow is the stack's or the kernel's");
  const uint32_t bit = steer_bit(m.proto, m.port);
  if (std::find(p.ports.begin(), p.ports.end(), bit) == p.ports.end())
    return reply(p, ENOENT, "%s port %u is not this program's", proto_name(m.proto), m.port);
  const Program::Flow f{m.proto, m.port, m.remote_ip, m.remote_port};
  auto it = std::find(p.flows.begin(), p.flows.end(), f);
  if (!m.on) {
    if (it == p.flows.end()) return reply(p, ENOENT, "%s", "no such flow of this program");
    port_->steering().remove_flow(m.proto, htons(m.port), m.remote_ip, htons(m.remote_port));
    p.flows.erase(it);
    --flows_listed_;
    return reply(p, 0, "ok");
  }
  // Each program's flows are bounded, and all of them together: the map is
  // the interface's.
  if (it == p.flows.end() && p.flows.size() >= kMaxFlowsPerProgram)
    return reply(p, ENOSPC, "this program has %zu flows listed already", p.flows.size());
  if (it == p.flows.end() && flows_listed_ >= kMaxFlows)
    return reply(p, ENOSPC, "%zu flows are listed for the interface already", flows_listed_);
  if (int rc = port_->steering().add_flow(m.proto, htons(m.port), m.remote_ip, htons(m.remote_port),
                                          m.on);
      rc < 0)
    return reply(p, -rc, "the flow map: %s", strerror(-rc));
  if (it == p.flows.end()) {
    p.flows.push_back(f);
    ++flows_listed_;
  }
  reply(p, 0, "ok");
}

void Broker::unshare(Program& p, uint8_t proto, uint16_t port) {
  const uint32_t bit = steer_bit(proto, port);
  auto s = std::find(p.shared.begin(), p.shared.end(), bit);
  if (s != p.shared.end()) {
    port_->steering().share_port(proto, port, false);
    p.shared.erase(s);
  }
  for (size_t i = p.flows.size(); i-- > 0;) {
    const Program::Flow& f = p.flows[i];
    if (f.proto != proto || f.port != port) continue;
    port_->steering().remove_flow(proto, htons(port), f.remote_ip, htons(f.remote_port));
    p.flows.erase(p.flows.begin() + long(i));
    --flows_listed_;
  }
}

void Broker::release(Program& p, const bp::PortMsg& m) {
  uint32_t bit = steer_bit(m.proto, m.port);
  for (size_t i = 0; i < p.ports.size(); ++i) {
    if (p.ports[i] != bit) continue;
    // Unsteered first: the port's frames all go to the kernel at once,
    // none to the program while its flows are taken out one by one.
    port_->steering().unsteer(m.proto, m.port);
    port_->steering().set_slot(m.proto, m.port, 0);
    unshare(p, m.proto, m.port);
    // (Its connections being built for the kernel on the port go with it.)
    if (m.proto == IPPROTO_TCP)
      for (size_t j = p.handovers.size(); j-- > 0;)
        if (p.handovers[j].state.local_port == m.port) {
          close(p.handovers[j].fd);
          p.handovers.erase(p.handovers.begin() + long(j));
        }
    p.ports.erase(p.ports.begin() + long(i));
    reply(p, 0, "ok");
    return;
  }
  reply(p, ENOENT, "%s port %u is not this program's", proto_name(m.proto), m.port);
}

void Broker::program_gone(Program& p, const char* how) {
  if (p.dying_at_ns) return;
  // No new frame for it: its ports and sockets leave the XDP maps now; its
  // frames come back once the kernel cannot be delivering to it any more.
  for (uint32_t bit : p.ports) {
    uint8_t proto = bit >= 65536 ? IPPROTO_UDP : IPPROTO_TCP;
    uint16_t port = uint16_t(bit & 0xffff);
    port_->steering().unsteer(proto, port);  // (first: see release())
    port_->steering().set_slot(proto, port, 0);
    unshare(p, proto, port);
  }
  if (p.slot)
    for (uint32_t i = 0; i < port_->queue_count(); ++i)
      port_->steering().remove_socket(p.slot, port_->queue_id(i));
  if (p.slot)
    say("program %s (pid %d) %s: %zu port%s unsteered", p.name.c_str(), int(p.pid), how,
        p.ports.size(), p.ports.size() == 1 ? "" : "s");
  p.ports.clear();
  end_handovers(p);
  p.dying_at_ns = now_ns() + kReclaimDelayNs;
  set_kick_every();
}

void Broker::reclaim(Program& p) {
  // The last look at its rx rings, then every frame it holds is free again.
  audit(p);
  uint32_t back = 0;
  for (uint32_t f = 0; f < owner_.size(); ++f) {
    if (owner_[f] != p.slot) continue;
    owner_[f] = kFree;
    free_.push_back(f);
    ++back;
  }
  counters_.frames_reclaimed += back;
  if (p.slot)
    say("program %s (pid %d): took back %u frame%s", p.name.c_str(), int(p.pid), back,
        back == 1 ? "" : "s");
  p.held = 0;
  p.to_give.clear();
}

void Broker::drop_program(Program& p) {
  if (p.slot && !p.dying_at_ns) program_gone(p, "dropped");
  if (p.slot) reclaim(p);
  if (p.paused) port_->steering().set_paused(p.slot, false);
  p.paused = false;
  // Closing an AF_XDP socket waits for an RCU grace period (tens of
  // milliseconds here): done by the closer thread, so that the loop goes on
  // refilling the fill rings meanwhile (it ran one dry once, inline).
  std::vector<Closing> work;
  for (ProgramSocket& s : p.socks) {
    for (ReadOnlyRing* r : {&s.rx, &s.tx})
      if (r->map) work.push_back(Closing{-1, r->map, r->len});
    if (s.fd >= 0) work.push_back(Closing{s.fd, nullptr, 0});
    s = ProgramSocket();
  }
  if (!work.empty()) {
    std::lock_guard<std::mutex> g(closing_mutex_);
    for (const Closing& c : work) closing_.push_back(c);
    closing_cv_.notify_one();
  }
  if (p.control) munmap(p.control, p.control_bytes);
  if (p.control_fd >= 0) close(p.control_fd);
  if (p.conn >= 0) close(p.conn);
  p.control = nullptr;
  p.control_fd = p.conn = -1;
  if (p.slot) slot_taken_[p.slot] = false;
  p.slot = 0;
}

// ---- frames ----

void Broker::audit(Program& p) {
  const uint32_t size = config_.ring_size;
  for (uint32_t i = 0; i < port_->queue_count(); ++i) {
    ProgramSocket& s = p.socks[i];
    if (!s.rx.producer) continue;
    uint32_t prod = __atomic_load_n(s.rx.producer, __ATOMIC_ACQUIRE);
    if (prod - s.audited > size) {
      // The program consumed and the kernel refilled slots before we read
      // them: those frames are the program's too, unseen.
      uint32_t lost = prod - s.audited - size;
      p.lost_rx += lost;
      counters_.unaudited_rx += lost;
      s.audited = prod - size;
    }
    for (; s.audited != prod; ++s.audited) {
      uint64_t addr = s.rx.desc[s.audited & (size - 1)].addr;
      uint32_t f = frame_index(addr);
      if (f >= owner_.size()) continue;
      if (owner_[f] == kInFill) {
        owner_[f] = uint8_t(p.slot);
        ++p.held;
      }
    }
  }
}

void Broker::take_back(Program& p) {
  bp::FrameQueue& q = p.control->to_broker;
  // How many first, then the audit: a frame the program gives back was on
  // its rx ring before it was in this queue, so the audit sees it.
  uint32_t n = q.waiting();
  audit(p);
  if (n == UINT32_MAX) {
    ++counters_.bad_messages;
    say("program %s (pid %d) corrupted its control segment: dropped", p.name.c_str(), int(p.pid));
    program_gone(p, "was dropped");
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t addr = q.at(i);
    uint32_t f = frame_index(addr);
    bool ok = f < owner_.size() && owner_[f] == p.slot;
    if (!ok && f < owner_.size() && owner_[f] == kInFill && p.lost_rx) {
      --p.lost_rx;  // one of the unseen ones
      ++p.held;
      ok = true;
    }
    if (!ok) {
      ++p.refused_returns;
      ++counters_.refused_returns;
      if (p.refused_returns == 1)
        say("program %s (pid %d) gave back frame 0x%llx it does not hold: refused (counted "
            "from now on)", p.name.c_str(), int(p.pid), (unsigned long long)addr);
      continue;
    }
    owner_[f] = kFree;
    free_.push_back(f);
    --p.held;
  }
  if (n) q.consume(n);
}

void Broker::give(Program& p, uint64_t addr) {
  if (!p.to_give.empty() || !p.control->to_program.push(addr)) p.to_give.push_back(addr);
}

void Broker::flush_gives(Program& p) {
  size_t i = 0;
  while (i < p.to_give.size() && p.control->to_program.push(p.to_give[i])) ++i;
  p.to_give.erase(p.to_give.begin(), p.to_give.begin() + long(i));
}

void Broker::reap_completions() {
  for (uint32_t qi = 0; qi < port_->queue_count(); ++qi) {
    rings::CompletionRing& cq = port_->completion_ring(qi);
    uint32_t idx;
    uint32_t n = cq.peek(cq.size(), &idx);
    if (!port_->zero_copy()) {
      // Copy mode: the programs took their sent frames back themselves (see
      // the header); the entries only make room for more sends.
      counters_.copy_completions += n;
      if (n) cq.release(n);
      continue;
    }
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t addr = cq.at(idx + i);
      uint32_t f = frame_index(addr);
      Program* p = f < owner_.size() ? find(owner_[f]) : nullptr;
      if (!p) {
        ++counters_.stray_completions;
        continue;
      }
      ++p->completed;
      if (p->dying_at_ns) continue;  // a dying program's frames come back with reclaim()
      give(*p, uint64_t(f) << frame_shift_);
    }
    if (n) cq.release(n);
  }
}

void Broker::refill() {
  fill_ran_low_ = false;
  for (uint32_t qi = 0; qi < port_->queue_count() && !free_.empty(); ++qi) {
    rings::FillRing& fq = port_->fill_ring(qi);
    uint32_t lent = fq.outstanding();
    if (lent >= fill_target_) continue;
    if (lent < fill_target_ / 2) fill_ran_low_ = true;
    if (lent < fill_target_ / 8) ++counters_.fill_nearly_empty;
    uint32_t want = fill_target_ - lent;
    if (want > free_.size()) want = uint32_t(free_.size());
    uint32_t room = fq.free_slots(want);
    if (room < want) want = room;
    uint32_t idx;
    if (!want || !fq.reserve(want, &idx)) continue;
    for (uint32_t j = 0; j < want; ++j) {
      uint32_t f = free_.back();
      free_.pop_back();
      owner_[f] = kInFill;
      fq.at(idx + j) = uint64_t(f) << frame_shift_;
    }
    fq.submit();
    if (fq.needs_wakeup()) recvfrom(port_->queue_fd(qi), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
}

void Broker::drain_own_rx() {
  // Nothing is steered to the broker's own sockets; a frame that arrives
  // there anyway goes straight back.
  for (uint32_t qi = 0; qi < port_->queue_count(); ++qi) {
    rings::RxRing& rx = port_->rx_ring(qi);
    uint32_t idx;
    uint32_t n = rx.peek(rx.size(), &idx);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t f = frame_index(rx.at(idx + i).addr);
      if (f < owner_.size() && owner_[f] == kInFill) {
        owner_[f] = kFree;
        free_.push_back(f);
      }
    }
    if (n) rx.release(n);
  }
}

void Broker::service() {
  uint64_t now = now_ns();
  for (auto& slot : programs_) {
    if (!slot) continue;
    Program& p = *slot;
    if (p.dying_at_ns) {
      // Zero-copy: the driver may still be reading frames it took from the
      // program's tx ring until their completions come. (Copy mode: the
      // data of every frame taken is already copied.)
      const uint32_t* cons = p.socks[0].tx.consumer;
      uint32_t in_flight = cons && port_->zero_copy()
                               ? __atomic_load_n(cons, __ATOMIC_ACQUIRE) - p.completed
                               : 0;
      if (in_flight && in_flight < (1u << 30) && now < p.dying_at_ns + kInFlightWaitNs) continue;
      if (in_flight && in_flight < (1u << 30))
        say("program %s (pid %d): %u frames still not sent back by the kernel after %llu s: "
            "taken back anyway", p.name.c_str(), int(p.pid), in_flight,
            (unsigned long long)(kInFlightWaitNs / 1000000000));
      if (now >= p.dying_at_ns) {
        drop_program(p);
        slot.reset();
      }
      continue;
    }
    take_back(p);
    if (!p.paused && p.held > config_.quota) {
      p.paused = true;
      ++counters_.pauses;
      port_->steering().set_paused(p.slot, true);
      say("program %s (pid %d) holds %u frames, over its quota of %u: its frames are dropped "
          "until it gives some back", p.name.c_str(), int(p.pid), p.held, config_.quota);
    } else if (p.paused && p.held <= config_.quota / 4 * 3) {
      p.paused = false;
      port_->steering().set_paused(p.slot, false);
      say("program %s (pid %d) is back under its quota (%u frames)", p.name.c_str(), int(p.pid),
          p.held);
    }
  }
  reap_completions();
  drain_own_rx();
  refill();
  for (auto& slot : programs_) {
    if (!slot || slot->dying_at_ns) continue;
    Program& p = *slot;
    flush_gives(p);
    if (!__atomic_load_n(&p.control->wants_frames, __ATOMIC_ACQUIRE)) continue;
    if (p.held >= config_.quota) {
      if (!p.told_over_quota)
        say("program %s (pid %d) holds %u frames, its quota: no more to send with until it "
            "gives some back", p.name.c_str(), int(p.pid), p.held);
      p.told_over_quota = true;
      continue;
    }
    p.told_over_quota = false;
    uint32_t grant = std::min<uint32_t>(config_.quota / 4, config_.quota - p.held);
    // Never the fill rings' last frames: receiving matters more.
    while (grant-- && free_.size() > fill_target_) {
      uint32_t f = free_.back();
      free_.pop_back();
      owner_[f] = uint8_t(p.slot);
      ++p.held;
      give(p, uint64_t(f) << frame_shift_);
    }
    __atomic_store_n(&p.control->wants_frames, 0, __ATOMIC_RELEASE);
  }
}

void Broker::set_kick_every() {
  uint32_t live = 0;
  for (auto& p : programs_)
    if (p && !p->dying_at_ns) ++live;
  for (auto& p : pending_)
    if (p->slot && !p->dying_at_ns) ++live;
  uint32_t every = std::max<uint32_t>(16, fill_target_ / (2 * std::max<uint32_t>(live, 1)));
  auto tell = [&](Program& p) {
    if (p.control) __atomic_store_n(&p.control->kick_every, every, __ATOMIC_RELAXED);
  };
  for (auto& p : programs_)
    if (p) tell(*p);
  for (auto& p : pending_) tell(*p);
}

Broker::FrameCensus Broker::census() const {
  FrameCensus c;
  c.total = uint32_t(owner_.size());
  for (uint8_t o : owner_) {
    if (o == kFree) ++c.free;
    else if (o == kInFill) ++c.fill;
    else ++c.held;
  }
  return c;
}

void Broker::write_status() {
  if (config_.status_path.empty()) return;
  std::string tmp = config_.status_path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "we");
  if (!f) return;
  FrameCensus c = census();
  fprintf(f, "broker pid %d iface %s queues %s mode %s\n", int(getpid()), config_.iface.c_str(),
          port_->queue_list().c_str(), port_->mode_string().c_str());
  fprintf(f, "frames total %u free %u fill %u held %u\n", c.total, c.free, c.fill, c.held);
  fprintf(f,
          "counters programs_served %llu programs_refused %llu claims %llu claims_refused %llu "
          "bad_messages %llu refused_returns %llu stray_completions %llu unaudited_rx %llu "
          "frames_reclaimed %llu pauses %llu copy_completions %llu wakeups %llu kicks %llu "
          "fill_nearly_empty %llu longest_gap_us %llu\n",
          (unsigned long long)counters_.programs_served,
          (unsigned long long)counters_.programs_refused, (unsigned long long)counters_.claims,
          (unsigned long long)counters_.claims_refused, (unsigned long long)counters_.bad_messages,
          (unsigned long long)counters_.refused_returns,
          (unsigned long long)counters_.stray_completions,
          (unsigned long long)counters_.unaudited_rx,
          (unsigned long long)counters_.frames_reclaimed, (unsigned long long)counters_.pauses,
          (unsigned long long)counters_.copy_completions, (unsigned long long)counters_.wakeups,
          (unsigned long long)counters_.kicks, (unsigned long long)counters_.fill_nearly_empty,
          (unsigned long long)counters_.longest_gap_us);
  for (auto& slot : programs_) {
    if (!slot || slot->dying_at_ns) continue;
    const Program& p = *slot;
    fprintf(f,
            "program slot %u pid %d uid %u name %s held %u ports %zu refused_returns %llu "
            "paused %d\n",
            p.slot, int(p.pid), unsigned(p.uid), p.name.c_str(), p.held, p.ports.size(),
            (unsigned long long)p.refused_returns, p.paused ? 1 : 0);
  }
  fclose(f);
  rename(tmp.c_str(), config_.status_path.c_str());
}

void Broker::run(volatile sig_atomic_t* stop) {
  std::vector<pollfd> fds;
  std::vector<Program*> who;
  while (!*stop) {
    fds.clear();
    who.clear();
    fds.push_back(pollfd{listen_fd_, POLLIN, 0});
    who.push_back(nullptr);
    fds.push_back(pollfd{kick_fd_, POLLIN, 0});
    who.push_back(nullptr);
    for (auto& p : programs_)
      if (p && !p->dying_at_ns) {
        fds.push_back(pollfd{p->conn, POLLIN, 0});
        who.push_back(p.get());
      }
    for (auto& p : pending_) {
      fds.push_back(pollfd{p->conn, POLLIN, 0});
      who.push_back(p.get());
    }
    // Programs wake the broker when it has work (frames to refill with,
    // frames to grant); by itself it wakes for its deadlines only: a
    // program dying (its frames come back 20 ms on), the status file.
    // Every wake-up is a preemption on some program's core.
    // Frames are being received faster than the programs' wake-ups cover
    // (a fill ring was under half): look again in a millisecond.
    int timeout_ms = fill_ran_low_ ? 1 : 100;
    for (auto& p : programs_)
      if (p && p->dying_at_ns) timeout_ms = std::min(timeout_ms, 5);
    if (!pending_.empty()) timeout_ms = std::min(timeout_ms, 50);
    int n = poll(fds.data(), fds.size(), timeout_ms);
    ++counters_.wakeups;
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      if (fds[0].revents & POLLIN) accept_program();
      if (fds[1].revents & POLLIN) {
        ++counters_.kicks;
        uint64_t v;
        if (read(kick_fd_, &v, sizeof v) < 0) {
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        Program* p = who[i];
        serve_message(*p);
      }
    }
    // Pending connections: those that said Hello move to their slot, the
    // refused and the silent go.
    uint64_t now = now_ns();
    for (size_t i = 0; i < pending_.size();) {
      Program& p = *pending_[i];
      bool move = p.welcomed && p.slot && !p.dying_at_ns;
      bool drop = (p.welcomed && !move) || p.dying_at_ns ||
                  (!p.welcomed && now - p.connected_ns > kHelloDeadlineNs);
      if (move) {
        programs_[p.slot] = std::move(pending_[i]);
      } else if (drop) {
        if (!p.welcomed && !p.dying_at_ns) ++counters_.bad_messages;
        drop_program(p);
      } else {
        ++i;
        continue;
      }
      pending_.erase(pending_.begin() + long(i));
    }
    static uint64_t last_service_ns = now;
    counters_.longest_gap_us = std::max(counters_.longest_gap_us, (now - last_service_ns) / 1000);
    last_service_ns = now;
    service();
    if (now - last_status_ns_ > 200'000'000) {
      write_status();
      last_status_ns_ = now;
    }
  }
  FrameCensus c = census();
  say("stopping: %llu program%s served, %llu refused, %llu claims (%llu refused), %llu bad "
      "messages, %llu frames refused back, %llu reclaimed; frames %u free %u in fill %u held",
      (unsigned long long)counters_.programs_served,
      counters_.programs_served == 1 ? "" : "s", (unsigned long long)counters_.programs_refused,
      (unsigned long long)counters_.claims, (unsigned long long)counters_.claims_refused,
      (unsigned long long)counters_.bad_messages, (unsigned long long)counters_.refused_returns,
      (unsigned long long)counters_.frames_reclaimed, c.free, c.fill, c.held);
}

}  // namespace xdpload::broker
