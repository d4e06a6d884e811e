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
//    "connected" without a handshake, its queues filled);
// 3. the XDP program sends the flow to the kernel from now on (an
//    exception on a port the stack keeps, or the whole port if it was the
//    connection's own), and frames of it still in the receive rings are
//    dropped before lwIP (the peer sends them again, to the kernel);
// 4. lwIP forgets the PCB without a word to the peer;
// 5. repair mode off (the kernel sends a window probe, the peer's ACK
//    brings it up to date), and the bytes lwIP had not sent yet go.
// A step that fails before 3 leaves the connection on the stack.
#include <netinet/tcp.h>
#include <sys/socket.h>
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
#include "shim/socket/tcp_socket.h"

namespace xdpload::shim {

namespace {

// Appends the bytes of `segs` from sequence number `from` on; false if the
// queue has a gap or a SYN/FIN (not a plain established stream).
bool append_stream(const tcp_seg* segs, uint32_t from, uint32_t* next, std::vector<uint8_t>* out) {
  for (const tcp_seg* s = segs; s; s = s->next) {
    if (TCPH_FLAGS(s->tcphdr) & (TCP_SYN | TCP_FIN)) return false;
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

int sock_opt(int fd, int name, int value) {
  return libc::setsockopt(fd, IPPROTO_TCP, name, &value, sizeof value) == 0 ? 0 : -errno;
}

// Writes data[*done, end) (a queue in repair mode, or the stream once it
// is off), moving *done; -errno if the kernel takes less.
int write_all(int fd, const std::vector<uint8_t>& data, size_t* done, size_t end) {
  while (*done < end) {
    ssize_t n = libc::send(fd, data.data() + *done, end - *done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
    *done += size_t(n);
  }
  return 0;
}
int write_all(int fd, const std::vector<uint8_t>& data, size_t* done) {
  return write_all(fd, data, done, data.size());
}
int write_all(int fd, const std::vector<uint8_t>& data) {
  size_t done = 0;
  return write_all(fd, data, &done);
}

}  // namespace

int TcpSocket::hand_connection_to_kernel(int fd, ErrorText* why) {
  Runtime& rt = Runtime::get();
  // 1. Up to date with the rings, then the state.
  rt.poll_stack();
  tcp_pcb* p = pcb;
  // (The peer may have closed its side: CLOSE_WAIT. Ours not.)
  if (state != State::Connected || !p || (p->state != ESTABLISHED && p->state != CLOSE_WAIT) ||
      (p->flags & TF_FIN) || shut_wr)
    return why->set(EBUSY, "only an established connection whose own side is not closed");
  bool peer_closed = rx_fin || p->state == CLOSE_WAIT;
  const uint32_t snd_una = p->lastack;
  std::vector<uint8_t> out;  // from snd_una: sent (to snd_nxt), then not yet sent
  uint32_t next = snd_una;
  if (!append_stream(p->unacked, snd_una, &next, &out) || !append_stream(p->unsent, snd_una, &next, &out) ||
      next != p->snd_lbb)
    return why->set(EPROTO, "the send queue is not one stream");
  const size_t in_flight = TCP_SEQ_GT(p->snd_nxt, snd_una) ? size_t(p->snd_nxt - snd_una) : 0;
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

  // 2. The twin, in repair mode. A failure from here to step 3 disconnects
  // it again (repair mode: no segment to the peer) and leaves the stack's
  // connection as it was.
  // (Repair mode forces address reuse, and leaving it clears it: the
  // socket's own setting is put back after.)
  int reuse = 0;
  socklen_t rl = sizeof reuse;
  libc::getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &rl);
  if (int rc = sock_opt(fd, TCP_REPAIR, 1); rc < 0)
    return why->set(-rc, "TCP_REPAIR (it needs CAP_NET_ADMIN): %s", strerror(-rc));
  bool connected = false;
  auto fail = [&](int rc, const char* what) {
    if (connected) {
      // Unconnected again, without a word to the peer; the error repair
      // mode leaves (ECONNABORTED) is read away, and a port the kernel
      // chose for a client connection, let go by the disconnect, is taken
      // again (lwIP still uses it).
      static const sockaddr unspec = {AF_UNSPEC, {}};
      libc::connect(fd, &unspec, sizeof unspec);
      int e;
      socklen_t el = sizeof e;
      libc::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    }
    sock_opt(fd, TCP_REPAIR, 0);
    libc::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    if (connected && twin_port_chosen) {
      sockaddr_storage b;
      socklen_t bl = make_sockaddr(SockAddr{0, local.port}, v6, &b);
      libc::bind(fd, reinterpret_cast<sockaddr*>(&b), bl);
    }
    return why->set(-rc, "%s: %s", what, strerror(-rc));
  };
  int rc = sock_opt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
  if (rc == 0) rc = sock_opt(fd, TCP_QUEUE_SEQ, int(p->rcv_nxt - uint32_t(in.size())));
  if (rc == 0) rc = sock_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
  if (rc == 0) rc = sock_opt(fd, TCP_QUEUE_SEQ, int(snd_una));
  if (rc < 0) return fail(rc, "the queues' sequence numbers");
  sockaddr_storage ss;
  SockAddr here, there;
  here = SockAddr{ip4_addr_get_u32(ip_2_ip4(&p->local_ip)), p->local_port};
  there = SockAddr{ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)), p->remote_port};
  SockAddr bound;
  socklen_t sl = sizeof ss;
  bool has_port = libc::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0 &&
                  read_sockaddr(reinterpret_cast<sockaddr*>(&ss), sl, &bound, true) == 0 &&
                  bound.port != 0;
  if (has_port && bound.port != here.port) return fail(-EADDRINUSE, "the kernel socket's port");
  if (!has_port) {
    // (An accepted connection's kernel socket was never bound. Repair mode
    // binds over the listener's hold on the port.)
    sl = make_sockaddr(here, v6, &ss);
    if (libc::bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) return fail(-errno, "bind");
  }
  sl = make_sockaddr(there, v6, &ss);
  if (libc::connect(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) return fail(-errno, "connect");
  connected = true;
  std::vector<tcp_repair_opt> opts;
  opts.push_back({TCPOPT_MAXSEG, p->mss});
  // (Always: without it the kernel keeps the receive scale it chose at
  // connect and would announce windows a peer that does not scale reads
  // 2^scale times too small.)
  if (p->flags & TF_WND_SCALE)
    opts.push_back({TCPOPT_WINDOW, uint32_t(p->snd_scale) | uint32_t(p->rcv_scale) << 16});
  else
    opts.push_back({TCPOPT_WINDOW, 0});
  if (p->flags & TF_SACK) opts.push_back({TCPOPT_SACK_PERMITTED, 0});
  if (p->flags & TF_TIMESTAMP) opts.push_back({TCPOPT_TIMESTAMP, 0});
  if (libc::setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(),
                       socklen_t(opts.size() * sizeof opts[0])) != 0)
    return fail(-errno, "the options");
  if (p->flags & TF_TIMESTAMP) {
    // The kernel's stamps go on from lwIP's (milliseconds, sys_now; the
    // low bit 0 says milliseconds to kernels that know microsecond stamps).
    if (int r = sock_opt(fd, TCP_TIMESTAMP, int((sys_now() + 2) & ~1u)); r < 0)
      return fail(r, "the timestamp clock");
  }
  // What the program has not read, then what the peer has not acknowledged
  // (as sent: the kernel sends it again if the peer does not acknowledge
  // it). Room for both, whatever the buffers' sizes: forced only where the
  // socket's buffer is too small for them (a forced size, even put back,
  // ends the kernel's autotuning of that buffer).
  int sndbuf = 0, rcvbuf = 0;
  socklen_t il = sizeof sndbuf;
  libc::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &il);
  il = sizeof rcvbuf;
  libc::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &il);
  const int need_snd = out.empty() ? 0 : int(out.size()) * 2 + 16384;
  const int need_rcv = in.empty() ? 0 : int(in.size()) * 2 + 16384;
  if (sndbuf < need_snd) libc::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &need_snd, sizeof need_snd);
  if (rcvbuf < need_rcv) libc::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &need_rcv, sizeof need_rcv);
  rc = sock_opt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
  if (rc == 0) rc = write_all(fd, in);
  if (rc < 0) return fail(rc, "the data not yet read");
  rc = sock_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
  size_t queued = 0;
  if (rc == 0) rc = write_all(fd, out, &queued, in_flight);
  if (rc < 0) return fail(rc, "the data not yet acknowledged");
  tcp_repair_window w{};
  w.snd_wl1 = p->snd_wl1;
  w.snd_wnd = uint32_t(p->snd_wnd);
  w.max_window = uint32_t(p->snd_wnd_max);
  w.rcv_wup = p->rcv_nxt;
  w.rcv_wnd = TCP_SEQ_GT(p->rcv_ann_right_edge, p->rcv_nxt) ? p->rcv_ann_right_edge - p->rcv_nxt : 0;
  if (libc::setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) != 0)
    return fail(-errno, "the windows");
  sock_opt(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);

  // 3. The flow is the kernel's. A port the stack keeps (a listener's, or
  // one another connection uses) gets an exception; the connection's own
  // port goes with its PCB (step 4).
  const PortKey key{IPPROTO_TCP, here.port};
  stack::Stack* st = rt.stack();
  if (rt.port_shared(key)) {
    unlist_flow(p);  // (a shared port's frames are the kernel's unless listed)
  } else if (rt.port_users(key) > 1) {
    if (int r = st->add_flow(IPPROTO_TCP, lwip_htons(here.port), there.ip, lwip_htons(there.port),
                             STEER_FLOW_KERNEL);
        r < 0)
      return fail(r, "steering the connection to the kernel");
    // (Unlisted once the kernel's connection is gone: sweep_handed_flows.)
    rt.note_handed_flow(HandedFlow{here.ip, there.ip, here.port, there.port});
  }
  st->driver().forget_tcp_flow(there.ip, lwip_htons(there.port), lwip_htons(here.port));

  // 4. lwIP forgets the connection, silently (no RST, no FIN).
  detach();
  tcp_abandon(p, 0);
  drop_queue();

  // 5. The kernel's: a window probe to the peer, then what lwIP had not
  // sent yet, and the program's settings again. From here on nothing may
  // fail: the stack has let the connection go.
  sock_opt(fd, TCP_REPAIR, 0);
  libc::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  // (A shutdown(SHUT_RD) the program made: the kernel socket was not
  // connected then. It sends nothing. And the peer's FIN, which repair
  // mode cannot give the kernel (it restores established connections):
  // reads end after the data as they would after the FIN, with POLLRDHUP,
  // and our close sends our FIN as from CLOSE_WAIT; the socket says
  // ESTABLISHED where Linux says CLOSE_WAIT.)
  if (shut_rd || peer_closed) libc::shutdown(fd, SHUT_RD);
  // The program's TCP_NOTSENT_LOWAT (the kernel socket has it) would refuse
  // bytes lwIP had taken: lifted for the write.
  int lowat = 0;
  socklen_t ll = sizeof lowat;
  libc::getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &ll);
  if (lowat) sock_opt(fd, TCP_NOTSENT_LOWAT, -1);
  size_t written = in_flight;
  rc = write_all(fd, out, &written);
  if (rc < 0) {
    // What the kernel would not take now goes into its queue as sent, in
    // repair mode again: it sends it when the peer's acknowledgements show
    // it missing (a retransmission timeout at worst). Never lost.
    sock_opt(fd, TCP_REPAIR, 1);
    sock_opt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
    rc = write_all(fd, out, &written);
    sock_opt(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
    sock_opt(fd, TCP_REPAIR, 0);
    libc::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  }
  if (lowat) sock_opt(fd, TCP_NOTSENT_LOWAT, lowat);
  // (getsockopt says twice what setsockopt was given.)
  const int snd_was = sndbuf / 2, rcv_was = rcvbuf / 2;
  if (sndbuf < need_snd) libc::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd_was, sizeof snd_was);
  if (rcvbuf < need_rcv) libc::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv_was, sizeof rcv_was);
  state = State::Closed;
  if (rc < 0) {
    // (Cannot happen with room made: said, not hidden. The connection is
    // the kernel's all the same.)
    log_at(kLogError, "descriptor %d: handed to the kernel, %zu byte(s) not yet sent were refused: %s",
           fd, out.size() - written, strerror(-rc));
  }
  return 0;
}

}  // namespace xdpload::shim
