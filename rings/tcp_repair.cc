#include "rings/tcp_repair.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xdpload::rings {

namespace {

// The system calls themselves (see the header: never the intercepts).
int sys_setsockopt(int fd, int level, int name, const void* v, socklen_t len) {
  return int(syscall(SYS_setsockopt, fd, level, name, v, len)) == 0 ? 0 : -errno;
}
int sys_getsockopt(int fd, int level, int name, void* v, socklen_t* len) {
  return int(syscall(SYS_getsockopt, fd, level, name, v, len)) == 0 ? 0 : -errno;
}
int tcp_opt(int fd, int name, int value) {
  return sys_setsockopt(fd, IPPROTO_TCP, name, &value, sizeof value);
}
int int_opt(int fd, int level, int name) {
  int v = 0;
  socklen_t len = sizeof v;
  sys_getsockopt(fd, level, name, &v, &len);
  return v;
}

// ip:port (network order, host order) in the socket's own family.
socklen_t make_address(bool v6, uint32_t ip, uint16_t port, sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  if (v6) {
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

// The port the socket is bound to (0: none).
uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (syscall(SYS_getsockname, fd, &ss, &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

// Writes data[*done, end): a queue in repair mode, or the stream once it
// is off. -errno if the kernel takes less.
int write_all(int fd, const uint8_t* data, size_t* done, size_t end) {
  while (*done < end) {
    ssize_t n = syscall(SYS_sendto, fd, data + *done, end - *done, MSG_DONTWAIT | MSG_NOSIGNAL,
                        nullptr, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
    *done += size_t(n);
  }
  return 0;
}

}  // namespace

int repair_build(int fd, const RepairState& st, const uint8_t* in, const uint8_t* out,
                 RepairUndo* u, ErrorText* why) {
  *u = RepairUndo{};
  u->reuse = int_opt(fd, SOL_SOCKET, SO_REUSEADDR);
  if (int rc = tcp_opt(fd, TCP_REPAIR, 1); rc < 0) {
    u->refused = true;
    return why->set(-rc, "TCP_REPAIR (it needs CAP_NET_ADMIN): %s", strerror(-rc));
  }
  auto fail = [&](int rc, const char* what) {
    repair_undo(fd, *u);
    return why->set(-rc, "%s: %s", what, strerror(-rc));
  };
  int rc = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
  if (rc == 0) rc = tcp_opt(fd, TCP_QUEUE_SEQ, int(st.recv_seq));
  if (rc == 0) rc = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
  if (rc == 0) rc = tcp_opt(fd, TCP_QUEUE_SEQ, int(st.send_seq));
  if (rc < 0) return fail(rc, "the queues' sequence numbers");
  sockaddr_storage ss;
  const uint16_t port = bound_port(fd);
  if (port && port != st.local_port) return fail(-EADDRINUSE, "the kernel socket's port");
  if (!port) {
    // (An accepted connection's kernel socket was never bound. Repair mode
    // binds over the listener's hold on the port.)
    socklen_t sl = make_address(st.v6, st.local_ip, st.local_port, &ss);
    if (syscall(SYS_bind, fd, &ss, sl) != 0) return fail(-errno, "bind");
  }
  socklen_t sl = make_address(st.v6, st.remote_ip, st.remote_port, &ss);
  if (syscall(SYS_connect, fd, &ss, sl) != 0) return fail(-errno, "connect");
  u->connected = true;
  tcp_repair_opt opts[4];
  int nopts = 0;
  opts[nopts++] = {TCPOPT_MAXSEG, st.mss};
  // (Always: without it the kernel keeps the receive scale it chose at
  // connect and would announce windows a peer that does not scale reads
  // 2^scale times too small.)
  opts[nopts++] = {TCPOPT_WINDOW, (st.flags & kRepairWindowScale)
                                      ? uint32_t(st.snd_wscale) | uint32_t(st.rcv_wscale) << 16
                                      : 0u};
  if (st.flags & kRepairSack) opts[nopts++] = {TCPOPT_SACK_PERMITTED, 0};
  if (st.flags & kRepairTimestamps) opts[nopts++] = {TCPOPT_TIMESTAMP, 0};
  if (int r = sys_setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts,
                             socklen_t(nopts * sizeof opts[0]));
      r < 0)
    return fail(r, "the options");
  if (st.flags & kRepairTimestamps) {
    if (int r = tcp_opt(fd, TCP_TIMESTAMP, int(st.ts_now)); r < 0)
      return fail(r, "the timestamp clock");
  }
  // Room for what the program has not read and what the peer has not
  // acknowledged, whatever the buffers' sizes: forced only where a buffer
  // is too small (a forced size, even put back, ends the kernel's
  // autotuning of that buffer).
  const int sndbuf = int_opt(fd, SOL_SOCKET, SO_SNDBUF);
  const int rcvbuf = int_opt(fd, SOL_SOCKET, SO_RCVBUF);
  const int need_snd = st.out_len ? int(st.out_len) * 2 + 16384 : 0;
  const int need_rcv = st.in_len ? int(st.in_len) * 2 + 16384 : 0;
  if (sndbuf < need_snd) {
    sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &need_snd, sizeof need_snd);
    u->forced_snd = true;
    u->sndbuf = sndbuf;
  }
  if (rcvbuf < need_rcv) {
    sys_setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &need_rcv, sizeof need_rcv);
    u->forced_rcv = true;
    u->rcvbuf = rcvbuf;
  }
  rc = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
  size_t done = 0;
  if (rc == 0) rc = write_all(fd, in, &done, st.in_len);
  if (rc < 0) return fail(rc, "the data not yet read");
  rc = tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
  done = 0;
  if (rc == 0) rc = write_all(fd, out, &done, st.in_flight);
  if (rc < 0) return fail(rc, "the data not yet acknowledged");
  tcp_repair_window w{};
  w.snd_wl1 = st.snd_wl1;
  w.snd_wnd = st.snd_wnd;
  w.max_window = st.max_window;
  w.rcv_wup = st.rcv_wup;
  w.rcv_wnd = st.rcv_wnd;
  if (int r = sys_setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w); r < 0)
    return fail(r, "the windows");
  tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
  return 0;
}

void repair_undo(int fd, const RepairUndo& u) {
  if (u.connected) {
    // Unconnected again, without a word to the peer (repair mode); the
    // error that leaves (ECONNABORTED) is read away.
    static const sockaddr unspec = {AF_UNSPEC, {}};
    syscall(SYS_connect, fd, &unspec, sizeof unspec);
    int_opt(fd, SOL_SOCKET, SO_ERROR);
  }
  tcp_opt(fd, TCP_REPAIR, 0);
  sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &u.reuse, sizeof u.reuse);
}

int repair_finish(int fd, const RepairState& st, const uint8_t* out, const RepairUndo& u,
                  bool restore_buffers, ErrorText* why) {
  tcp_opt(fd, TCP_REPAIR, 0);
  sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &u.reuse, sizeof u.reuse);
  // (The peer's FIN, which repair mode cannot give the kernel (it restores
  // established connections): reads end after the data as they would
  // after the FIN, with POLLRDHUP, and our close sends our FIN as from
  // CLOSE_WAIT; the socket says ESTABLISHED where Linux says CLOSE_WAIT.)
  if (st.flags & kRepairShutRd) syscall(SYS_shutdown, fd, SHUT_RD);
  // The program's TCP_NOTSENT_LOWAT would refuse bytes the other stack had
  // taken: lifted for the write.
  const int lowat = int_opt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT);
  if (lowat) tcp_opt(fd, TCP_NOTSENT_LOWAT, -1);
  size_t written = st.in_flight;
  int rc = write_all(fd, out, &written, st.out_len);
  if (rc < 0) {
    // What the kernel would not take now goes into its queue as sent, in
    // repair mode again: it sends it when the peer's acknowledgements show
    // it missing (a retransmission timeout at worst). Never lost.
    tcp_opt(fd, TCP_REPAIR, 1);
    tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
    rc = write_all(fd, out, &written, st.out_len);
    tcp_opt(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
    tcp_opt(fd, TCP_REPAIR, 0);
    sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &u.reuse, sizeof u.reuse);
  }
  if (lowat) tcp_opt(fd, TCP_NOTSENT_LOWAT, lowat);
  // Our FIN, which repair mode cannot give the kernel either: after the
  // data, as shutdown() sends it. (Where the peer had it already, it is a
  // duplicate the peer acknowledges: the connection is as CRIU restores a
  // closing one.)
  if (st.flags & kRepairShutWr) syscall(SYS_shutdown, fd, SHUT_WR);
  if (restore_buffers) {
    // (getsockopt says twice what setsockopt was given.)
    const int snd_was = u.sndbuf / 2, rcv_was = u.rcvbuf / 2;
    if (u.forced_snd) sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd_was, sizeof snd_was);
    if (u.forced_rcv) sys_setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv_was, sizeof rcv_was);
  }
  if (rc < 0)
    return why->set(-rc, "%u byte(s) not yet sent were refused: %s", unsigned(st.out_len - written),
                    strerror(-rc));
  return 0;
}

}  // namespace xdpload::rings
