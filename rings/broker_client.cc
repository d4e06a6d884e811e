#include "rings/broker_client.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <initializer_list>

#include "rings/private_fd.h"

namespace xdpload::rings {

namespace {

// A broker that does not answer within this long is treated as absent: the
// program must never hang on it.
constexpr int kReplyTimeoutMs = 2000;

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits for one datagram of exactly `len` bytes, with up to `max_fds`
// descriptors, until `deadline_ms` (CLOCK_MONOTONIC). Returns the number of
// descriptors received, or -errno.
int receive_one(int conn, void* buf, size_t len, int* fds, int max_fds, int64_t deadline_ms) {
  pollfd p{conn, POLLIN, 0};
  int r;
  do {
    int64_t left = deadline_ms - now_ms();
    r = left <= 0 ? 0 : poll(&p, 1, int(left));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return -ETIMEDOUT;
  if (r < 0) return -errno;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (broker::kWelcomeFixedFds + broker::kMaxQueues))];
  iovec iov{buf, len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  int got = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = int((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    const int* in = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (int i = 0; i < count; ++i) {
      if (got < max_fds) fds[got++] = in[i];
      else close(in[i]);
    }
  }
  if (n == 0) return -ECONNRESET;
  if (size_t(n) != len || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    for (int i = 0; i < got; ++i) close(fds[i]);
    return -EPROTO;
  }
  return got;
}

// The answer to request `seq` (a Welcome or Reply of `len` bytes, starting
// with its Header), within kReplyTimeoutMs. Answers to earlier requests,
// whose callers gave up on them, are read and dropped with what they
// brought: a late Finish's socket is closed here, not taken for another.
int receive(int conn, uint32_t seq, void* buf, size_t len, int* fds, int max_fds) {
  const int64_t deadline = now_ms() + kReplyTimeoutMs;
  for (;;) {
    int got = receive_one(conn, buf, len, fds, max_fds, deadline);
    if (got < 0) return got;
    broker::Header h;
    memcpy(&h, buf, sizeof h);
    if (h.magic != broker::kMagic || h.version != broker::kVersion || h.seq == seq) return got;
    for (int i = 0; i < got; ++i) close(fds[i]);
  }
}

}  // namespace

int send_with_fd(int conn, const void* buf, size_t len, int fd, int flags) {
  iovec iov{const_cast<void*>(buf), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do n = sendmsg(conn, &m, MSG_NOSIGNAL | flags);
  while (n < 0 && errno == EINTR);
  return n == ssize_t(len) ? 0 : (n < 0 ? -errno : -EPROTO);
}

namespace {

// Sends `msg` (with `fd`, if any; its header numbered `seq`) and waits for
// the broker's Reply.
int exchange(int conn, uint32_t seq, void* msg, size_t len, int fd, ErrorText* why) {
  static_cast<broker::Header*>(msg)->seq = seq;
  if (int rc = send_with_fd(conn, msg, len, fd); rc < 0)
    return why->set(-rc, "the broker is gone (%s)", strerror(-rc));
  broker::Reply reply;
  int fds[1];
  int got = receive(conn, seq, &reply, sizeof reply, fds, 0);
  if (got < 0) return why->set(-got, "no answer from the broker (%s)", strerror(-got));
  if (!broker::valid_header(reply.h, broker::Op::Reply))
    return why->set(EPROTO, "the broker answered with a malformed message");
  if (reply.status != 0) {
    reply.text[sizeof reply.text - 1] = 0;
    return why->set(reply.status, "%s", reply.text);
  }
  return 0;
}

// Writes all of data[0, n) at `at` of `fd`.
bool put_all(int fd, const uint8_t* data, size_t n, off_t at) {
  while (n) {
    ssize_t w = pwrite(fd, data, n, at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= size_t(w);
    at += w;
  }
  return true;
}

int request(int conn, uint32_t seq, broker::Op op, uint8_t proto, uint16_t port, int fd,
            ErrorText* why) {
  broker::PortMsg msg;
  msg.h.op = uint16_t(op);
  msg.proto = proto;
  msg.port = port;
  return exchange(conn, seq, &msg, sizeof msg, fd, why);
}

int flow_request(int conn, uint32_t seq, broker::Op op, uint8_t proto, uint16_t port, uint8_t on,
                 uint32_t remote_ip, uint16_t remote_port, ErrorText* why) {
  broker::FlowMsg msg;
  msg.h.op = uint16_t(op);
  msg.proto = proto;
  msg.on = on;
  msg.port = port;
  msg.remote_ip = remote_ip;
  msg.remote_port = remote_port;
  return exchange(conn, seq, &msg, sizeof msg, -1, why);
}

}  // namespace

int broker_handover(int conn, uint32_t seq, uint8_t step, const RepairState& state,
                    const uint8_t* in, const uint8_t* out, int* conn_fd, ErrorText* why) {
  if (conn_fd) *conn_fd = -1;
  broker::HandoverMsg msg;
  msg.h = broker::Header{broker::kMagic, broker::kVersion, uint16_t(broker::Op::Handover), seq};
  msg.step = step;
  msg.state = state;
  if (step == broker::kHandoverBuild) {
    int mfd = memfd_create("xdpload-handover", MFD_CLOEXEC);
    if (mfd < 0) return why->set(errno, "memfd_create: %s", strerror(errno));
    int rc = 0;
    if (!put_all(mfd, in, state.in_len, 0) || !put_all(mfd, out, state.out_len, off_t(state.in_len)))
      rc = why->set(errno ? errno : EIO, "writing the connection's bytes: %s", strerror(errno));
    if (rc == 0) rc = exchange(conn, seq, &msg, sizeof msg, mfd, why);
    close(mfd);
    return rc;
  }
  if (int rc = send_with_fd(conn, &msg, sizeof msg, -1); rc < 0)
    return why->set(-rc, "the broker is gone (%s)", strerror(-rc));
  broker::Reply reply;
  int fds[1] = {-1};
  int got = receive(conn, seq, &reply, sizeof reply, fds, 1);
  if (got < 0) return why->set(-got, "no answer from the broker (%s)", strerror(-got));
  if (!broker::valid_header(reply.h, broker::Op::Reply)) {
    if (got > 0) close(fds[0]);
    return why->set(EPROTO, "the broker answered with a malformed message");
  }
  if (got > 0) {
    if (conn_fd) *conn_fd = fds[0];
    else close(fds[0]);
  }
  if (reply.status != 0) {
    reply.text[sizeof reply.text - 1] = 0;
    return why->set(reply.status, "%s", reply.text);
  }
  return 0;
}

void BrokerGrant::close_unused() {
  for (int* fd : {&conn, &umem_fd, &control_fd, &kick_fd})
    if (*fd >= 0) close_private_fd(*fd), *fd = -1;
  for (int& fd : xsk_fds)
    if (fd >= 0) close_private_fd(fd), fd = -1;
}

int broker_connect(const char* iface, const char* program, BrokerGrant* g, ErrorText* why) {
  int conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (conn < 0) return why->set(errno, "cannot make a Unix socket: %m");
  sockaddr_un sa;
  socklen_t len = broker::broker_address(iface, &sa);
  if (connect(conn, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int err = errno;
    close(conn);
    if (err == ECONNREFUSED || err == ENOENT)
      return why->set(ENOENT, "no xdpload broker runs for %s", iface);
    return why->set(err, "cannot reach the xdpload broker of %s: %s", iface, strerror(err));
  }
  g->conn = to_private_fd(conn);
  broker::Hello hello;
  hello.h.seq = broker::kHelloSeq;
  snprintf(hello.program, sizeof hello.program, "%s", program);
  if (int rc = send_with_fd(g->conn, &hello, sizeof hello, -1); rc < 0) {
    g->close_unused();
    return why->set(-rc, "the xdpload broker of %s hung up (%s)", iface, strerror(-rc));
  }
  int fds[broker::kWelcomeFixedFds + broker::kMaxQueues];
  int got = receive(g->conn, broker::kHelloSeq, &g->welcome, sizeof g->welcome, fds,
                    broker::kWelcomeFixedFds + int(broker::kMaxQueues));
  if (got < 0) {
    g->close_unused();
    // A broker of another protocol version closes the connection at the
    // Hello: say so rather than only "connection reset".
    if (got == -ECONNRESET)
      return why->set(ECONNRESET,
                      "the xdpload broker of %s closed the connection without a welcome (a "
                      "broker from another xdpload version does: this one speaks protocol %u; "
                      "restart `xdpload daemon` from this installation)",
                      iface, unsigned(broker::kVersion));
    return why->set(-got, "no welcome from the xdpload broker of %s (%s)", iface,
                    strerror(-got));
  }
  for (int i = 0; i < got; ++i) fds[i] = to_private_fd(fds[i]);
  const broker::Welcome& w = g->welcome;
  bool header_ok = broker::valid_header(w.h, broker::Op::Welcome);
  if (header_ok && w.status != 0) {
    for (int i = 0; i < got; ++i) close_private_fd(fds[i]);
    g->close_unused();
    char text[sizeof w.text];
    memcpy(text, w.text, sizeof text);
    text[sizeof text - 1] = 0;
    return why->set(w.status, "the xdpload broker of %s refused: %s", iface, text);
  }
  if (!header_ok || w.nqueues == 0 || w.nqueues > broker::kMaxQueues ||
      got != broker::kWelcomeFixedFds + int(w.nqueues)) {
    for (int i = 0; i < got; ++i) close_private_fd(fds[i]);
    g->close_unused();
    return why->set(EPROTO, "the xdpload broker of %s sent a malformed welcome", iface);
  }
  g->umem_fd = fds[0];
  g->control_fd = fds[1];
  g->kick_fd = fds[2];
  for (uint32_t i = 0; i < w.nqueues; ++i) g->xsk_fds[i] = fds[broker::kWelcomeFixedFds + i];
  return 0;
}

int broker_claim(int conn, uint32_t seq, uint8_t proto, uint16_t port, int backing_fd,
                 ErrorText* why) {
  return request(conn, seq, broker::Op::Claim, proto, port, backing_fd, why);
}

int broker_release(int conn, uint32_t seq, uint8_t proto, uint16_t port) {
  ErrorText why;
  return request(conn, seq, broker::Op::Release, proto, port, -1, &why);
}

int broker_share(int conn, uint32_t seq, uint8_t proto, uint16_t port, bool shared,
                 ErrorText* why) {
  return flow_request(conn, seq, broker::Op::Share, proto, port, shared, 0, 0, why);
}

int broker_flow(int conn, uint32_t seq, uint8_t proto, uint16_t port, uint32_t remote_ip,
                uint16_t remote_port, uint8_t whose, ErrorText* why) {
  return flow_request(conn, seq, broker::Op::Flow, proto, port, whose, remote_ip, remote_port,
                      why);
}

}  // namespace xdpload::rings
