// A live connection of the stack handed to the kernel with its state.
//
// Where the stack cannot go on carrying a connection (the program execs an
// image that will not have the stack; an option only the kernel serves),
// the kernel socket kept beside it (the "twin", at the program's
// descriptor) becomes the connection, through TCP_REPAIR, as CRIU restores
// one: the sequence numbers, the windows and options both ends agreed on,
// the bytes the peer has not acknowledged, the bytes the program has not
// read. The peer sees nothing but a window probe; no byte is lost or sent
// twice to the program.
//
// Order, under the CoreLock (no frame reaches lwIP meanwhile):
// 1. the stack catches up with the rings, and the state is read;
// 2. the twin is built in repair mode (bound to the connection's address,
//    "connected" without a handshake, its queues filled: rings/tcp_repair.h).
//    Without CAP_NET_ADMIN, a broker's program has the broker build the
//    connection in a socket of the broker's instead (never one the program
//    holds: repair mode would let it bind over other users' ports);
// 3. the XDP program sends the flow to the kernel from now on (an
//    exception on a port the stack keeps, or the whole port if it was the
//    connection's own), and frames of it still in the receive rings are
//    dropped before lwIP (the peer sends them again, to the kernel);
// 4. lwIP forgets the PCB without a word to the peer;
// 5. repair mode off (the kernel sends a window probe, the peer's ACK
//    brings it up to date), and the bytes lwIP had not sent yet go. The
//    broker's socket then comes to the program, put at its descriptors.
// A step that fails before 3 leaves the connection on the stack.
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <vector>

#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/sockaddr_util.h"
#include "rings/tcp_repair.h"
#include "shim/socket/tcp_socket.h"
#include "shim/wait/waiting.h"

namespace xdpload::shim {

namespace {

// Appends the bytes of `segs` from sequence number `from` on; false if the
// queue has a gap, a SYN, or a FIN before its last segment (not a plain
// stream, ended by our FIN at most: the caller counts the FIN apart).
bool append_stream(const tcp_seg* segs, uint32_t from, uint32_t* next, std::vector<uint8_t>* out) {
  for (const tcp_seg* s = segs; s; s = s->next) {
    if ((TCPH_FLAGS(s->tcphdr) & TCP_SYN) || ((TCPH_FLAGS(s->tcphdr) & TCP_FIN) && s->next)) return false;
    const uint32_t seq = lwip_ntohl(s->tcphdr->seqno);
    const uint32_t end = seq + s->len;
    if (TCP_SEQ_LEQ(end, from)) continue;  // already acknowledged
    if (TCP_SEQ_GT(seq, *next) || TCP_SEQ_LT(end, *next)) return false;
    const uint32_t skip = *next - seq;
    const size_t at = out->size();
    out->resize(at + (s->len - skip));
    const uint16_t payload = uint16_t(s->p->tot_len - s->len);
    pbuf_copy_partial(s->p, out->data() + at, uint16_t(s->len - skip), uint16_t(payload + skip));
    *next = end;
  }
  return true;
}

// The connection the broker built in a socket of its own (`conn_fd`), put
// at each of this process's descriptors of the socket (`fd` among them)
// in place of the kernel socket the program had there, which it replaces
// in every way the program can see: the settings the program gave it
// first, then each descriptor's FD_CLOEXEC. (Other processes of the
// family that hold the socket keep the old one: unconnected, their reads
// and writes fail with ENOTCONN and EPIPE.)
void install_handed_socket(const TcpSocket* s, int fd, int conn_fd) {
  // The settings a program sets on a connection and reads back.
  static const int kIntOptions[][2] = {
      {SOL_SOCKET, SO_KEEPALIVE},     {SOL_SOCKET, SO_OOBINLINE},     {SOL_SOCKET, SO_PRIORITY},
      {SOL_SOCKET, SO_RCVLOWAT},      {SOL_SOCKET, SO_TIMESTAMP_OLD}, {SOL_SOCKET, SO_TIMESTAMPNS_OLD},
      {SOL_SOCKET, SO_MARK},          {IPPROTO_IP, IP_TOS},           {IPPROTO_IP, IP_TTL},
      {IPPROTO_IP, IP_RECVERR},       {IPPROTO_TCP, TCP_NODELAY},     {IPPROTO_TCP, TCP_KEEPIDLE},
      {IPPROTO_TCP, TCP_KEEPINTVL},   {IPPROTO_TCP, TCP_KEEPCNT},     {IPPROTO_TCP, TCP_USER_TIMEOUT},
      {IPPROTO_TCP, TCP_NOTSENT_LOWAT}, {IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS},
      {SOL_SOCKET, SO_ZEROCOPY},      {SOL_SOCKET, SO_BUSY_POLL},     {IPPROTO_IP, IP_MTU_DISCOVER},
      {IPPROTO_IP, IP_PKTINFO},       {IPPROTO_IP, IP_RECVTOS},       {IPPROTO_IP, IP_RECVTTL},
      {IPPROTO_TCP, TCP_CORK},
      // (An accepted connection's, from its listener: hand_connection_to_kernel.)
      {SOL_SOCKET, SO_REUSEADDR},     {SOL_SOCKET, SO_REUSEPORT},
  };
  // (Not the buffers' sizes, TCP_MAXSEG or TCP_WINDOW_CLAMP: an unconnected
  // socket's say nothing of what the program set, and copying them would
  // lock or clamp the connection. The broker made the buffers room for the
  // queued bytes.)
  for (const auto& o : kIntOptions) {
    int v = 0, was = 0;
    socklen_t len = sizeof v;
    if (libc::getsockopt(fd, o[0], o[1], &v, &len) != 0) continue;
    len = sizeof was;
    if (libc::getsockopt(conn_fd, o[0], o[1], &was, &len) == 0 && was == v) continue;
    libc::setsockopt(conn_fd, o[0], o[1], &v, sizeof v);
  }
  linger l{};
  socklen_t ll = sizeof l;
  if (libc::getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &ll) == 0 && l.l_onoff)
    libc::setsockopt(conn_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  for (int name : {SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD}) {
    timeval tv{};
    socklen_t tl = sizeof tv;
    if (libc::getsockopt(fd, SOL_SOCKET, name, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
      libc::setsockopt(conn_fd, SOL_SOCKET, name, &tv, sizeof tv);
  }
  char cc[16] = {};
  socklen_t cl = sizeof cc;
  if (libc::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, &cl) == 0)
    libc::setsockopt(conn_fd, IPPROTO_TCP, TCP_CONGESTION, cc, socklen_t(strnlen(cc, sizeof cc)));
  auto put_at = [&](int at) {
    const int fl = libc::fcntl(at, F_GETFD);
    syscall(SYS_dup3, conn_fd, at, fl >= 0 && (fl & FD_CLOEXEC) ? O_CLOEXEC : 0);
  };
  if (s->descriptors.empty()) {
    // A connection never accepted (passed to an exec'd program from its
    // listener's queue: passed_connections.h): `fd` is its only home.
    put_at(fd);
    syscall(SYS_close, conn_fd);
    return;
  }
  if (Runtime::get().vfork_child()) {
    // A vfork child's descriptor table is its own (the family's records
    // are its parent's): its descriptors of the socket, found by the old
    // socket's inode, as hand_vfork_inherited_to_kernel found them. The
    // parent's keep the old socket (said).
    if (!s->descriptors.empty())
      log_at(kLogError, "descriptor %d: the connection was handed to the kernel through the broker "
             "(no CAP_NET_ADMIN) for the program a vfork child starts; the parent's descriptor %d "
             "of it no longer reaches it", fd, s->descriptors.front().fd);
    for (int at = 0; at < 1024; ++at) {
      struct stat st;
      if (fstat(at, &st) == 0 && S_ISSOCK(st.st_mode) && uint64_t(st.st_ino) == s->twin_ino &&
          at != conn_fd)
        put_at(at);
    }
    syscall(SYS_close, conn_fd);
    return;
  }
  const pid_t me = process_id();
  for (const Descriptor& d : s->descriptors) {
    if (d.pid != me) {
      static bool said = false;
      if (!said)
        log_at(kLogError, "descriptor %d: the connection was handed to the kernel through the "
               "broker (no CAP_NET_ADMIN); process %d's descriptor %d of it no longer reaches it",
               fd, int(d.pid), d.fd);
      said = true;
      continue;
    }
    put_at(d.fd);
  }
  syscall(SYS_close, conn_fd);
}

// Where the stream of data we send ends: at our FIN where lwIP queued one.
// The FIN rides on the last unsent segment when there is one (tcp_send_fin:
// snd_lbb does not count it) or is a segment of its own (tcp_enqueue_flags:
// snd_lbb counts it); once acknowledged it is in no queue, and lastack is
// one past it.
uint32_t stream_end(const tcp_pcb* p) {
  if (!(p->flags & TF_FIN)) return p->snd_lbb;
  for (const tcp_seg* q : {p->unacked, p->unsent})
    for (const tcp_seg* s = q; s; s = s->next)
      if (TCPH_FLAGS(s->tcphdr) & TCP_FIN) return lwip_ntohl(s->tcphdr->seqno) + s->len;
  return p->lastack - 1;
}

}  // namespace

// After a build undone: a port the kernel chose for a client connection,
// let go by the build's disconnect, is taken again (lwIP still uses it).
void TcpSocket::rebind_chosen_port(int fd, const rings::RepairUndo& undo) {
  if (!undo.connected || !twin_port_chosen) return;
  // On the address the twin still names: one the program bound (locked,
  // kept through the disconnect), else the wildcard.
  SockAddr kept{};
  if (!kernel_local(fd, &kept)) kept = SockAddr{};
  sockaddr_storage b;
  socklen_t bl = make_sockaddr(SockAddr{kept.ip, local.port}, v6, &b);
  libc::bind(fd, reinterpret_cast<sockaddr*>(&b), bl);
}

int TcpSocket::hand_connection_to_kernel(int fd, ErrorText* why) {
  Runtime& rt = Runtime::get();
  // 1. Up to date with the rings, then the state.
  rt.poll_stack();
  tcp_pcb* p = pcb;
  // Either side may have closed its half: the peer (CLOSE_WAIT, LAST_ACK,
  // CLOSING), or ours (shutdown(SHUT_WR): FIN_WAIT_1, FIN_WAIT_2, CLOSING,
  // LAST_ACK), so long as the connection still carries something. Not one
  // in TIME_WAIT, nor one being made.
  const bool ours_closed = shut_wr || (p && (p->flags & (TF_FIN | TF_CLOSEPEND)));
  const bool state_ok =
      p && (p->state == ESTABLISHED || p->state == CLOSE_WAIT ||
            (ours_closed && (p->state == FIN_WAIT_1 || p->state == FIN_WAIT_2 || p->state == CLOSING ||
                             p->state == LAST_ACK)));
  if (state != State::Connected || !state_ok)
    return why->set(EBUSY, "only an established connection, or one half-closed");
  bool peer_closed = rx_fin || p->state == CLOSE_WAIT || p->state == LAST_ACK || p->state == CLOSING;
  // Our FIN, where lwIP queued it, takes the sequence number after the
  // data: the stream handed over ends before it, and the kernel sends it
  // again after the data (repair_finish). One the peer acknowledged
  // already is sent from its own number, a duplicate the peer acknowledges.
  const uint32_t data_end = stream_end(p);
  const uint32_t snd_una = TCP_SEQ_GT(p->lastack, data_end) ? data_end : p->lastack;
  std::vector<uint8_t> out;  // from snd_una: sent (to snd_nxt), then not yet sent
  uint32_t next = snd_una;
  if (!append_stream(p->unacked, snd_una, &next, &out) || !append_stream(p->unsent, snd_una, &next, &out) ||
      next != data_end)
    return why->set(EPROTO, "the send queue is not one stream");
  const uint32_t sent_end = TCP_SEQ_GT(p->snd_nxt, data_end) ? data_end : p->snd_nxt;
  const size_t in_flight = TCP_SEQ_GT(sent_end, snd_una) ? size_t(sent_end - snd_una) : 0;
  if (in_flight > out.size()) return why->set(EPROTO, "the send queue is shorter than what was sent");
  std::vector<uint8_t> in;  // not yet read, in order: the socket's queue, then what lwIP held back
  for (size_t i = 0; i < rx.size(); ++i) {
    const size_t skip = i == 0 ? rx_off : 0;
    const size_t at = in.size();
    in.resize(at + rx[i]->tot_len - skip);
    pbuf_copy_partial(rx[i], in.data() + at, uint16_t(rx[i]->tot_len - skip), uint16_t(skip));
  }
  if (pbuf* r = p->refused_data) {
    if (r->flags & PBUF_FLAG_TCP_FIN) peer_closed = true;
    const size_t at = in.size();
    in.resize(at + r->tot_len);
    pbuf_copy_partial(r, in.data() + at, r->tot_len, 0);
  }
  rings::RepairState st;
  st.local_ip = ip4_addr_get_u32(ip_2_ip4(&p->local_ip));
  st.remote_ip = ip4_addr_get_u32(ip_2_ip4(&p->remote_ip));
  st.local_port = p->local_port;
  st.remote_port = p->remote_port;
  st.v6 = v6;
  st.mss = p->mss;
  if (p->flags & TF_WND_SCALE) {
    st.flags |= rings::kRepairWindowScale;
    st.snd_wscale = p->snd_scale;
    st.rcv_wscale = p->rcv_scale;
  }
  if (p->flags & TF_SACK) st.flags |= rings::kRepairSack;
  if (p->flags & TF_TIMESTAMP) {
    // The kernel's stamps go on from lwIP's (milliseconds, sys_now; the
    // low bit 0 says milliseconds to kernels that know microsecond stamps).
    st.flags |= rings::kRepairTimestamps;
    st.ts_now = (sys_now() + 2) & ~1u;
  }
  if (shut_rd || peer_closed) st.flags |= rings::kRepairShutRd;
  if (ours_closed) st.flags |= rings::kRepairShutWr;
  st.send_seq = snd_una;
  st.recv_seq = p->rcv_nxt - uint32_t(in.size());
  st.snd_wl1 = p->snd_wl1;
  st.snd_wnd = uint32_t(p->snd_wnd);
  st.max_window = uint32_t(p->snd_wnd_max);
  st.rcv_wup = p->rcv_nxt;
  st.rcv_wnd = TCP_SEQ_GT(p->rcv_ann_right_edge, p->rcv_nxt) ? p->rcv_ann_right_edge - p->rcv_nxt : 0;
  st.in_len = uint32_t(in.size());
  st.out_len = uint32_t(out.size());
  st.in_flight = uint32_t(in_flight);

  // 2. In repair mode: the kernel socket beside the connection (the
  // program's descriptor), with CAP_NET_ADMIN; without it, a broker's
  // program has the broker build the connection in a socket of the
  // broker's, which it gets at step 5. A failure from here to step 3
  // leaves the stack's connection as it was.
  rings::RepairUndo undo;
  bool through_broker = false;
  // An accepted connection's kernel socket was never bound. On Linux it
  // carries its listener's SO_REUSEADDR and SO_REUSEPORT (opt, copied at
  // adopt), and so does the TIME-WAIT it ends in: without them a listener
  // the program binds to the port again within that minute was refused
  // (EADDRINUSE) where Linux lets it. (repair_build keeps the value.)
  if (sockaddr_storage ss{}; true) {
    socklen_t sl = sizeof ss;
    if (libc::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0 &&
        reinterpret_cast<sockaddr_in*>(&ss)->sin_port == 0) {
      const int reuseaddr = opt.reuseaddr, reuseport = opt.reuseport;
      libc::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof reuseaddr);
      if (reuseport) libc::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof reuseport);
    }
  }
  int rc = rings::repair_build(fd, st, in.data(), out.data(), &undo, why);
  if (undo.refused && rt.stack()->port() && rt.stack()->port()->brokered()) {
    ErrorText bwhy;
    if (int r = rt.stack()->port()->handover(rings::broker::kHandoverBuild, st, in.data(), out.data(),
                                            nullptr, &bwhy);
        r < 0)
      return why->set(-r, "without CAP_NET_ADMIN, through the broker: %s", bwhy.c_str());
    through_broker = true;
  } else if (rc < 0) {
    rebind_chosen_port(fd, undo);
    return rc;
  }

  // 3. The flow is the kernel's. A port the stack keeps (a listener's, or
  // one another connection uses) gets an exception; the connection's own
  // port goes with its PCB (step 4).
  const PortKey key{IPPROTO_TCP, st.local_port};
  stack::Stack* stk = rt.stack();
  if (rt.port_shared(key)) {
    unlist_flow(p);  // (a shared port's frames are the kernel's unless listed)
  } else if (rt.port_users(key) > 1) {
    if (int r = stk->add_flow(IPPROTO_TCP, lwip_htons(st.local_port), st.remote_ip,
                              lwip_htons(st.remote_port), STEER_FLOW_KERNEL);
        r < 0) {
      if (through_broker) {
        ErrorText ignored;
        rt.stack()->port()->handover(rings::broker::kHandoverDrop, st, nullptr, nullptr, nullptr,
                                     &ignored);
      } else {
        rings::repair_undo(fd, undo);
        rebind_chosen_port(fd, undo);
      }
      return why->set(-r, "steering the connection to the kernel: %s", strerror(-r));
    }
    // (Unlisted once the kernel's connection is gone: sweep_handed_flows.)
    rt.note_handed_flow(HandedFlow{st.local_ip, st.remote_ip, st.local_port, st.remote_port});
  }
  stk->driver().forget_tcp_flow(st.remote_ip, lwip_htons(st.remote_port), lwip_htons(st.local_port));

  // 4. lwIP forgets the connection, silently (no RST, no FIN).
  detach();
  tcp_abandon(p, 0);
  drop_queue();
  state = State::Closed;

  // 5. The kernel's: a window probe to the peer, then what lwIP had not
  // sent yet. From here on nothing may fail: the stack has let the
  // connection go.
  ErrorText fwhy;
  if (!through_broker) {
    if (rings::repair_finish(fd, st, out.data(), undo, true, &fwhy) < 0)
      log_at(kLogError, "descriptor %d: handed to the kernel, but %s", fd, fwhy.c_str());
    return 0;
  }
  int conn_fd = -1;
  rc = rt.stack()->port()->handover(rings::broker::kHandoverFinish, st, nullptr, nullptr, &conn_fd,
                                    &fwhy);
  if (conn_fd < 0) {
    // (The broker went meanwhile: it built the connection and took it with
    // it, silently. The peer's next segment meets no socket: a reset.)
    log_at(kLogError, "descriptor %d: the broker that was handing the connection to the kernel "
           "did not give it back (%s): the connection is lost", fd, fwhy.c_str());
    return 0;
  }
  if (rc < 0) log_at(kLogError, "descriptor %d: handed to the kernel, but %s", fd, fwhy.c_str());
  install_handed_socket(this, fd, conn_fd);
  return 0;
}

}  // namespace xdpload::shim
