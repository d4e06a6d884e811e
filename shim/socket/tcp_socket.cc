#include "shim/socket/tcp_socket.h"

#include <fcntl.h>
#include <linux/net_tstamp.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/ext/thread_spin.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/pbuf_chain.h"
#include "shim/socket/sockaddr_util.h"
#include "shim/socket/user_memory.h"
#include "shim/stats/stat_segment.h"
#include "stack/link_netif.h"
#include "stack/stack.h"

extern "C" {
#include "lwip/ip.h"
#include "lwip/prot/ip4.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

namespace xdpload::shim {

namespace {

// A connection of the stack on a port shared with the kernel
// (TcpSocket::share_port_with_kernel): its flow, steered to the stack until
// the PCB goes. In the family arena.
struct SharedFlow {
  uint16_t port;  // host order
  uint16_t remote_port;
  uint32_t remote_ip;
  // The PCB holds a reference to the port (hold_port): not a handshake
  // still under way, which the listener answered and nobody has accepted.
  bool holds_port;
};

// lwIP's "destroyed" callback for every PCB that uses a steered port: the
// port's last PCB gone (TIME_WAIT over, say), its steering goes too. The
// data is the port key, never the socket, which may be long gone; or, on a
// port shared with the kernel, the connection's SharedFlow (never a
// number a port could be).
void unlist_flow(uint16_t port, uint32_t remote_ip, uint16_t remote_port);
void port_destroyed(u8_t, void* data) {
  auto key = uintptr_t(data);
  Runtime& rt = Runtime::get();
  if (key > 0xffff) {
    auto* f = static_cast<SharedFlow*>(data);
    const uint16_t port = f->port;
    const bool holds_port = f->holds_port;
    unlist_flow(port, f->remote_ip, f->remote_port);
    family::release(f);
    if (!holds_port) return;
    key = port;
  }
  rt.port_release(PortKey{IPPROTO_TCP, uint16_t(key)});
}
// And for a listener's: a SYN it answers on a port shared with the kernel
// (one that reached the stack before the port was shared, the listener
// being handed over) opens a flow that must come back to the stack: listed
// before the SYN-ACK leaves, and unlisted when the handshake dies (its
// record, without a hold on the port; accepted, it gets its full record).
int add_flow_of(tcp_pcb* p);
void keep_handshake_record(tcp_pcb* p);
// Not listed (the map full): lwIP forgets the SYN without a word, and the
// client's next SYN goes to the kernel.
err_t port_passive_open(u8_t, tcp_pcb_listen*, tcp_pcb* c) {
  if (!Runtime::get().port_shared(PortKey{IPPROTO_TCP, c->local_port})) return ERR_OK;
  if (add_flow_of(c) != 0) return ERR_ABRT;
  keep_handshake_record(c);
  return ERR_OK;
}
const tcp_ext_arg_callbacks kPortCallbacks = {port_destroyed, port_passive_open};

// The PCB extension slots (lwipopts.h: LWIP_TCP_PCB_NUM_EXT_ARGS 2), fixed,
// never asked of tcp_ext_arg_alloc_id(): its counter lives in lwIP's
// globals, which a process family shares, while a remembered id would be
// each process's own, so that the second process of a family to ask (two
// forked workers making their first connections) failed lwIP's assertion
// and aborted. Slot 0: the port (kPortCallbacks). Slot 1: the socket that
// holds the PCB, told when lwIP frees it without an error callback (a
// TIME_WAIT that ends while the program has not closed the socket).
constexpr u8_t kPortExtArg = 0;
constexpr u8_t kSocketExtArg = 1;
u8_t ext_id() { return kPortExtArg; }

void socket_pcb_destroyed(u8_t, void* data) {
  if (data) static_cast<TcpSocket*>(data)->pcb_freed();
}
const tcp_ext_arg_callbacks kSocketCallbacks = {socket_pcb_destroyed, nullptr};

size_t iov_total(const iovec* iov, int n) {
  size_t t = 0;
  for (int i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

int lwip_to_errno(err_t e) {
  switch (e) {
    case ERR_MEM: return ENOBUFS;
    case ERR_BUF: return ENOBUFS;
    case ERR_RTE: return ENETUNREACH;
    case ERR_USE: return EADDRINUSE;
    case ERR_ISCONN: return EISCONN;
    case ERR_ALREADY: return EALREADY;
    case ERR_CONN: return ENOTCONN;
    case ERR_RST: return ECONNRESET;
    case ERR_ABRT: return ECONNABORTED;
    case ERR_VAL: return EINVAL;
    default: return EIO;
  }
}

int64_t deadline_from(int64_t timeout_ns) { return timeout_ns > 0 ? mono_ns() + timeout_ns : -1; }

}  // namespace

// Linux 6.2's SOF_TIMESTAMPING_OPT_ID_TCP (newer than this system's headers).
constexpr uint32_t kOptIdTcp = 1u << 16;
constexpr uint32_t kStampRecord =
    SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK;

TcpSocket::~TcpSocket() {
  drop_queue();
  if (frames_watched) watch_frames(false);
}

void TcpSocket::drop_queue() {
  for (pbuf* p : rx) pbuf_free(p);
  rx.clear();
  rx_stamps.clear();
  rx_off = rx_bytes = 0;
}

// ---- lwIP callbacks ----

void TcpSocket::attach(tcp_pcb* p) {
  pcb = p;
  tcp_arg(p, this);
  tcp_ext_arg_set_callbacks(p, kSocketExtArg, &kSocketCallbacks);
  tcp_ext_arg_set(p, kSocketExtArg, this);
  tcp_recv(p, reinterpret_cast<tcp_recv_fn>(on_recv));
  tcp_sent(p, reinterpret_cast<tcp_sent_fn>(on_sent));
  tcp_err(p, reinterpret_cast<tcp_err_fn>(on_error));
}

void TcpSocket::detach() {
  if (!pcb) return;
  tx_stamps.forget_marks();  // (what is queued stays readable)
  watch_frames(false);
  tcp_ext_arg_set(pcb, kSocketExtArg, nullptr);
  tcp_arg(pcb, nullptr);
  if (pcb->state == LISTEN) {
    tcp_accept(pcb, nullptr);  // a listen PCB has no other callbacks
  } else {
    tcp_recv(pcb, nullptr);  // lwIP then frees and acknowledges what arrives
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
  }
  pcb = nullptr;
}

namespace {

int add_flow_of(tcp_pcb* p) {
  return Runtime::get().stack()->add_flow(IPPROTO_TCP, lwip_htons(p->local_port),
                                          ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)),
                                          lwip_htons(p->remote_port));
}

// (Host-order ports.) A flow the steering program cannot forget (a
// process that gave up its privileges after start, on a kernel before 6.5
// that checks them at every bpf() call) only takes room in the map: a new
// connection from the same address and port unlists it with its SYN.
void unlist_flow(uint16_t port, uint32_t remote_ip, uint16_t remote_port) {
  stack::Stack* st = Runtime::get().stack();
  if (!st) return;
  int rc = st->remove_flow(IPPROTO_TCP, lwip_htons(port), remote_ip, lwip_htons(remote_port));
  static bool said = false;
  if (rc < 0 && !said) {
    said = true;
    XLOG(kLogDecision,
         "tcp port %u: an ended connection's flow stays listed in the steering map (%s) until a new "
         "connection from its address and port replaces it",
         unsigned(port), strerror(-rc));
  }
}

void remove_flow_of(tcp_pcb* p) {
  unlist_flow(p->local_port, ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)), p->remote_port);
}

// From now on the PCB's "destroyed" callback removes its flow (listed).
void keep_flow_record(tcp_pcb* p, bool holds_port = true) {
  auto* f = static_cast<SharedFlow*>(family::alloc(sizeof(SharedFlow)));
  // (No room: the flow stays listed until a SYN from its addresses
  // replaces it, or, through a broker, the port is released.)
  if (!f) return;
  *f = SharedFlow{p->local_port, p->remote_port, ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)),
                  holds_port};
  if (!holds_port) tcp_ext_arg_set_callbacks(p, kPortExtArg, &kPortCallbacks);
  tcp_ext_arg_set(p, kPortExtArg, f);
}

// A handshake under way on a shared port, listed: unlisted if it dies
// before it is accepted (lwIP's SYN_RCVD timeout, a reset). Without this
// record, a handshake that never completed left its flow in the map.
void keep_handshake_record(tcp_pcb* p) { keep_flow_record(p, false); }

}  // namespace

bool TcpSocket::share_port_with_kernel(uint16_t port, ErrorText* why) {
  stack::Stack* st = Runtime::get().stack();
  // The stack's PCBs on the port, connections and TIME_WAIT alike: each
  // flow listed first, then the port shared, so that none of theirs goes
  // astray in between.
  // Handshakes under way (SYN_RCVD, no port record until accepted) are
  // listed too: their ACK must reach the listener that answered their SYN.
  // They get a handshake's record (unlisted if they die), and their full
  // one when they are accepted (on_accept lists them again).
  std::vector<tcp_pcb*> mine;
  size_t records = 0;
  for (tcp_pcb* list : {tcp_active_pcbs, tcp_tw_pcbs})
    for (tcp_pcb* p = list; p; p = p->next)
      if (p->local_port == port && uintptr_t(tcp_ext_arg_get(p, kPortExtArg)) == port)
        mine.insert(mine.begin() + records++, p);
      else if (p->local_port == port && p->state == SYN_RCVD)
        mine.push_back(p);
  size_t listed = 0;
  int rc = 0;
  while (listed < mine.size() && (rc = add_flow_of(mine[listed])) == 0) ++listed;
  if (rc == 0) rc = st->share_port(IPPROTO_TCP, port, true);
  if (rc < 0) {
    for (size_t i = 0; i < listed; ++i) remove_flow_of(mine[i]);
    why->set(-rc, "steering single connections: %s", strerror(-rc));
    return false;
  }
  for (size_t i = 0; i < records; ++i) keep_flow_record(mine[i]);
  for (size_t i = records; i < mine.size(); ++i)
    if (!tcp_ext_arg_get(mine[i], kPortExtArg)) keep_handshake_record(mine[i]);
  return true;
}

void TcpSocket::unlist_flow(tcp_pcb* p) { remove_flow_of(p); }

void TcpSocket::list_if_shared(tcp_pcb* p) {
  Runtime& rt = Runtime::get();
  if (!rt.port_shared(PortKey{IPPROTO_TCP, p->local_port})) return;
  // A connection made later on a port the kernel listens on (from a
  // listener of the stack's there again, or a connect() from the port).
  if (add_flow_of(p) == 0) keep_flow_record(p);
}

void TcpSocket::pcb_freed() {
  // lwIP freed the PCB under us (its TIME_WAIT over, or replaced by a
  // listening one): nothing of it may be touched again.
  pcb = nullptr;
  tx_stamps.forget_marks();
  watch_frames(false);
}

int TcpSocket::hold_port(tcp_pcb* p) {
  Runtime& rt = Runtime::get();
  if (int rc = rt.port_acquire(PortKey{IPPROTO_TCP, p->local_port}, fd); rc < 0) return rc;
  // (A handshake's record, without a hold on the port: the flow stays
  // listed, list_if_shared records it again in full.)
  // (Only a handshake's can be there; a full one would hold the port too,
  // given back here so that the count stays whole.)
  if (auto key = uintptr_t(tcp_ext_arg_get(p, ext_id())); key > 0xffff) {
    auto* f = reinterpret_cast<SharedFlow*>(key);
    if (f->holds_port) rt.port_release(PortKey{IPPROTO_TCP, p->local_port});
    family::release(f);
  }
  tcp_ext_arg_set_callbacks(p, ext_id(), &kPortCallbacks);
  tcp_ext_arg_set(p, ext_id(), reinterpret_cast<void*>(uintptr_t(p->local_port)));
  return 0;
}

signed char TcpSocket::on_recv(void* arg, tcp_pcb* p, pbuf* data, signed char) {
  auto* s = static_cast<TcpSocket*>(arg);
  if (!s) {
    if (data) {
      tcp_recved(p, data->tot_len);
      pbuf_free(data);
    }
    return ERR_OK;
  }
  if (!data) {
    s->rx_fin = true;
  } else {
    Runtime& rt = Runtime::get();
    if (rt.frames_short()) {
      // The link is running out of frames: copy the data out of them.
      if (pbuf* copy = pbuf_clone(PBUF_RAW, PBUF_RAM, data)) {
        pbuf_free(data);
        data = copy;
        ++rt.counters().rx_copies;
      }
    }
    s->rx_bytes += data->tot_len;
    s->rx.push_back(data);
    // (Data lwIP held out of order is stamped when the gap fills.)
    s->rx_stamps.push_back({rt.stack()->driver().rx_stamp(), rt.stack()->driver().rx_hw_stamp()});
  }
  s->notify();
  return ERR_OK;
}

signed char TcpSocket::on_sent(void* arg, tcp_pcb* p, uint16_t) {
  auto* s = static_cast<TcpSocket*>(arg);
  if (s && s->tx_stamps.watching()) {
    timespec now;
    Runtime::get().stack()->driver().read_clock(&now);
    // (Inside tcp_input: the acknowledgement's IP header is lwIP's current one.)
    const int ttl = ip4_current_header() ? IPH_TTL(ip4_current_header()) : -1;
    if (s->tx_stamps.acked(p->lastack, now, ttl, s->rx_cmsg.tsflags, s->error_queue_room(),
                           opt_stats_of, s))
      s->notify();
    if (!s->tx_stamps.watching()) s->watch_frames(false);
  }
  if (s && s->nospace && s->writable()) {
    s->nospace = false;
    s->notify();
  }
  return ERR_OK;
}

bool TcpSocket::writable() const {
  if (!pcb || tcp_sndbuf(pcb) < TCP_SNDLOWAT || tcp_sndqueuelen(pcb) >= TCP_SNDQUEUELOWAT)
    return false;
  // TCP_NOTSENT_LOWAT: tcp_stream_memory_free as tcp_poll asks it (wake
  // 1): the bytes queued and not yet sent, doubled, below the mark.
  if (opt.notsent_lowat) {
    uint32_t notsent = pcb->snd_lbb - pcb->snd_nxt;
    if ((uint64_t(notsent) << 1) >= opt.notsent_lowat) return false;
  }
  return true;
}

void TcpSocket::let_twin_port_go(int fd, int uses_left) {
  if (!twin_port_chosen || port_fixed || twin_unbound || pcb || local.port == 0 ||
      (state != State::Closed && state != State::Fresh) ||
      Runtime::get().port_users(PortKey{IPPROTO_TCP, local.port}) > uses_left)
    return;
  static const sockaddr unspec = {AF_UNSPEC, {}};
  if (libc::listen(fd, 0) != 0) return;  // (left bound: the port held, as before)
  libc::connect(fd, &unspec, sizeof unspec);
  twin_unbound = true;
  twin_port_chosen = false;
}

void TcpSocket::on_error(void* arg, signed char err) {
  // lwIP has freed the PCB (or frees it right after: a reset).
  auto* s = static_cast<TcpSocket*>(arg);
  if (!s) return;
  s->pcb = nullptr;
  s->tx_stamps.forget_marks();
  s->watch_frames(false);
  bool connecting = s->state == State::Connecting;
  if (err == ERR_RST) {
    // Linux: refused while connecting; EPIPE once the peer had closed its
    // side (CLOSE_WAIT); a reset otherwise.
    s->error = connecting ? ECONNREFUSED : (s->rx_fin ? EPIPE : ECONNRESET);
  } else if (err == ERR_ABRT) {
    // Retransmissions (or SYN retries) ran out.
    s->error = ETIMEDOUT;
  } else if (err != ERR_CLSD) {
    s->error = ECONNABORTED;
  }
  s->reset = err != ERR_CLSD;
  s->state = State::Closed;
  // Linux lets the port the kernel chose go now; the process that polled
  // does it if it holds the socket (else its holder, at its next call).
  for (const Descriptor& d : s->descriptors)
    if (d.pid == process_id()) {
      s->let_twin_port_go(d.fd, 1);
      break;
    }
  s->notify();
}

void TcpSocket::reset_connection() {
  if (!pcb) return;
  tcp_pcb* p = pcb;
  detach();
  tcp_abort(p);  // a RST to the peer, if the link still carries it
  error = state == State::Connecting ? ECONNREFUSED : ECONNRESET;
  reset = true;
  state = State::Closed;
  notify();
}

signed char TcpSocket::on_connected(void* arg, tcp_pcb*, signed char) {
  auto* s = static_cast<TcpSocket*>(arg);
  if (s) {
    s->state = State::Connected;
    s->established = true;
    s->notify();
  }
  return ERR_OK;
}

signed char TcpSocket::on_accept(void* arg, tcp_pcb* p, signed char err) {
  auto* l = static_cast<TcpSocket*>(arg);
  if (!l || err != ERR_OK || !p) return ERR_VAL;
  auto* c = new TcpSocket(-1);
  c->fd_refs = 0;  // no descriptor until accept()
  c->adopt(p, l);
  if (c->hold_port(p) < 0) {
    c->detach();  // (lwIP's callbacks for p must not find the socket freed)
    delete c;
    tcp_abort(p);
    return ERR_ABRT;
  }
  list_if_shared(p);

  // Counted against the backlog until the program accepts it, as on Linux:
  // a full queue makes lwIP ignore new SYNs.
  tcp_backlog_delayed(p);
  if (l->accept_queue.empty()) l->queued_since_ns = mono_ns();
  l->accept_queue.push_back(c);
  l->notify_connection();
  return ERR_OK;
}

void TcpSocket::adopt(tcp_pcb* p, TcpSocket* l) {
  accelerated = true;
  Runtime::get().track(this);
  state = State::Connected;
  established = true;
  listener = l;
  opt = l->opt;
  rx_cmsg = l->rx_cmsg;  // as Linux's accepted sockets inherit the listener's flags
  v6 = l->v6;
  local = SockAddr{ip4_addr_get_u32(&p->local_ip), p->local_port};
  remote = SockAddr{ip4_addr_get_u32(&p->remote_ip), p->remote_port};
  attach(p);
  apply_all_options();
  count_stamp_user(true);
}


// ---- options ----

void TcpSocket::apply_all_options() {
  if (!pcb) return;
  // The IP part, which a listening PCB has too.
  if (opt.keepalive) ip_set_option(pcb, SOF_KEEPALIVE);
  else ip_reset_option(pcb, SOF_KEEPALIVE);
  pcb->tos = u8_t(opt.tos);
  if (opt.ttl) pcb->ttl = u8_t(opt.ttl);
  ip_set_option(pcb, SOF_REUSEADDR);  // the kernel has judged the bind
  // A listener's PCB is a struct tcp_pcb_listen, far smaller than a
  // connection's: its flags and keep-alive timers do not exist, and writing
  // them overran the heap block (haproxy crashed, apache's children found
  // glibc's heap corrupt). A listener keeps them in `opt`, and each
  // connection it accepts gets them in adopt().
  if (state == State::Listening || pcb->state == LISTEN) return;
  if (opt.nodelay) tcp_nagle_disable(pcb);
  else tcp_nagle_enable(pcb);
  apply_congestion();
  pcb->keep_idle = u32_t(opt.keep_idle_s) * 1000;
  pcb->keep_intvl = u32_t(opt.keep_intvl_s) * 1000;
  pcb->keep_cnt = u32_t(opt.keep_cnt);
}

// The congestion control the program chose, else the network namespace's
// default (net.ipv4.tcp_congestion_control), as the kernel would pick. The
// stack has reno and cubic; another name (bbr...) gets cubic, said once at
// XDPLOAD_LOG=2: the socket is accelerated all the same, and a host whose
// default is bbr would otherwise have every program print it.
void TcpSocket::apply_congestion() {
  const char* want = opt.congestion[0] ? opt.congestion : Runtime::get().default_congestion();
  if (tcp_set_congestion(pcb, want) == 0) return;
  tcp_set_congestion(pcb, "cubic");
  static bool said = false;
  if (!said) {
    said = true;
    XLOG(kLogDecision, "congestion control %s is not on the stack: accelerated TCP uses cubic",
         want);
  }
}

void TcpSocket::apply_option(int, int) { apply_all_options(); }

int TcpSocket::pending_error(bool clear) {
  int e = error;
  if (clear) error = 0;
  return e;
}

int TcpSocket::unacked_bytes() const {
  if (!pcb || state == State::Listening) return 0;
  // pcb->snd_buf, not tcp_sndbuf(): that macro caps at 64 KiB.
  return int(TCP_SND_BUF - pcb->snd_buf);
}

// ---- readiness ----

uint32_t TcpSocket::events() {
  uint32_t m = 0;
  if (state == State::Listening) return accept_queue.empty() ? 0 : (POLLIN | POLLRDNORM);
  if (state == State::Fresh || state == State::Connecting) {
    // tcp_poll: an unconnected socket is in TCP_CLOSE (hung up, writable);
    // a shutdown recorded before the connect shows as it would later.
    bool closed = state == State::Fresh;
    if ((shut_rd && shut_wr) || closed) m |= POLLHUP;
    if (shut_rd) m |= POLLIN | POLLRDNORM | POLLRDHUP;
    bool lowat_full = notsent_after_disconnect && opt.notsent_lowat &&
                      (uint64_t(notsent_after_disconnect) << 1) >= opt.notsent_lowat;
    if (closed && (shut_wr || !lowat_full)) m |= POLLOUT | POLLWRNORM;
    if (error || tx_stamps.queue.pending()) m |= POLLERR;
    return m;
  }
  bool rd_shut = rx_fin || shut_rd || state == State::Closed;
  bool wr_shut = shut_wr || state == State::Closed;
  if (rd_shut && wr_shut) m |= POLLHUP;
  if (rd_shut) m |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (rx_bytes) m |= POLLIN | POLLRDNORM;
  if (wr_shut || writable()) {
    m |= POLLOUT | POLLWRNORM;
  } else {
    nospace = true;  // as tcp_poll does: whoever asked is woken when space returns
  }
  if (error || zc.pending || tx_stamps.queue.pending()) m |= POLLERR;
  return m;
}

int TcpSocket::wait_for(bool (*ready)(TcpSocket*), int64_t timeout_ns, uint8_t spin_kind) {
  Socket* self = this;
  WaitSpec spec;
  spec.spin_kind = spin_kind;
  spec.sockets = &self;
  spec.nsockets = 1;
  spec.deadline_ns = deadline_from(timeout_ns);
  spec.restartable = timeout_ns == 0;
  int rc = Runtime::get().block(spec, [&] { return ready(this) || fd_refs == 0; });
  if (rc == 0 && fd_refs == 0) return -EBADF;
  return rc;
}

// ---- listen / connect / accept ----

int TcpSocket::new_bound_pcb(tcp_pcb** out) {
  tcp_pcb* p = tcp_new();
  if (!p) return -ENOBUFS;
  // The kernel socket holds the port and has judged the bind already.
  ip_set_option(p, SOF_REUSEADDR);
  ip4_addr_t ip;
  ip.addr = local.ip;
  if (tcp_bind(p, &ip, local.port) != ERR_OK) {
    tcp_abort(p);
    return -EADDRINUSE;
  }
  *out = p;
  return 0;
}

int TcpSocket::listen(int n) {
  Runtime& rt = Runtime::get();
  if (state == State::Listening) {
    backlog = n;
    return 0;
  }
  tcp_pcb* p;
  if (int rc = new_bound_pcb(&p); rc < 0) return rc;
  // A SO_REUSEPORT group's member (the kernel, which holds the port for
  // each of them, has judged who may join): lwIP shares the port's new
  // connections among the group by a hash (lwIP patch 0019), as Linux does.
  if (opt.reuseport) ip_set_option(p, SOF_REUSEPORT);
  u8_t lwip_backlog = u8_t(std::clamp(n, 1, 255));
  err_t err;
  tcp_pcb* lp = tcp_listen_with_backlog_and_err(p, lwip_backlog, &err);
  if (!lp) {
    tcp_abort(p);
    return -lwip_to_errno(err);
  }
  if (int rc = hold_port(lp); rc < 0) {
    tcp_close(lp);
    return rc;
  }
  pcb = lp;
  tcp_arg(lp, this);
  tcp_accept(lp, reinterpret_cast<tcp_accept_fn>(on_accept));
  backlog = n;
  state = State::Listening;
  if (!accelerated) ++rt.counters().accelerated_tcp;  // (not again when it listens anew)
  accelerated = true;
  rt.track(this);
  return 0;
}

// A failed attempt (refused, timed out), connected to again: its error if
// nobody has read it, else ECONNABORTED, and the socket is unconnected
// again, the next connect() starts anew (Linux's __inet_stream_connect).
int TcpSocket::failed_attempt_error() {
  int e = error ? pending_error(true) : ECONNABORTED;
  state = State::Fresh;
  reset = rx_fin = false;
  established = false;
  shut_rd = shut_wr = false;  // tcp_disconnect() clears sk_shutdown
  drop_queue();               // and what was received
  return e;
}

int TcpSocket::connect(const SockAddr& to) {
  Runtime& rt = Runtime::get();
  if (disconnecting) return -EINVAL;
  switch (state) {
    case State::Connecting:
      return nonblock ? -EALREADY : wait_for([](TcpSocket* s) { return s->state != State::Connecting; },
                                             opt.sndtimeo_ns, kSpinTcpConnect);
    case State::Connected:
      // The idiom that completes a non-blocking connect: 0 once, as Linux.
      if (connect_unreported) {
        connect_unreported = false;
        return 0;
      }
      return -EISCONN;
    case State::Listening: return -EISCONN;
    case State::Closed:
      // Ended after a non-blocking connect that nobody confirmed: to Linux's
      // socket layer it is still connecting, and its end is reported as a
      // failed attempt's.
      if (established && !connect_unreported) return -EISCONN;
      connect_unreported = false;
      return -failed_attempt_error();
    case State::Fresh:
      error = 0;  // tcp_connect_init: a new attempt forgets the last one's error
      notsent_after_disconnect = 0;
      break;
  }
  tcp_pcb* p;
  if (int rc = new_bound_pcb(&p); rc < 0) return rc;
  if (int rc = hold_port(p); rc < 0) {
    tcp_abort(p);
    return rc;
  }
  owns_port = true;
  attach(p);
  apply_all_options();
  ip4_addr_t dst;
  dst.addr = to.ip;
  err_t err = tcp_connect(p, &dst, to.port, reinterpret_cast<tcp_connected_fn>(on_connected));
  if (err != ERR_OK) {
    detach();
    tcp_abort(p);
    // ERR_USE: the four addresses are another connection's (two sockets
    // bound to one port with SO_REUSEADDR, to one peer), which Linux's
    // check_established refuses with EADDRNOTAVAIL.
    return err == ERR_USE ? -EADDRNOTAVAIL : -lwip_to_errno(err);
  }
  list_if_shared(p);
  remote = to;
  // The address lwIP chose (the twin may be bound to the wildcard).
  local = SockAddr{ip4_addr_get_u32(ip_2_ip4(&p->local_ip)), p->local_port};
  state = State::Connecting;
  if (!accelerated) ++rt.counters().accelerated_tcp;  // (not again when it connects anew)
  accelerated = true;
  rt.track(this);
  count_stamp_user(true);
  rt.stack()->flush();
  if (nonblock) {
    connect_unreported = true;
    return -EINPROGRESS;
  }
  int rc = wait_for([](TcpSocket* s) { return s->state != State::Connecting; }, opt.sndtimeo_ns,
                    kSpinTcpConnect);
  if (rc == -EAGAIN) return -EINPROGRESS;  // SO_SNDTIMEO ran out; it goes on
  if (rc < 0) return rc;
  if (state == State::Connected) return 0;
  // Reported by connect() itself: the socket is unconnected again, as
  // Linux's sock_error path leaves it, and the next connect() tries anew.
  return -failed_attempt_error();
}

int TcpSocket::accept_from_stack(int flags, sockaddr* addr, socklen_t* len) {
  if (state != State::Listening) return -EINVAL;
  if (accept_queue.empty()) return -EAGAIN;
  // An address buffer the program's memory cannot take: EFAULT, looked at
  // first. (Linux closes the connection it took; here it stays queued.)
  if (addr && len && !sockaddr_writable(addr, len, v6)) return -EFAULT;
  TcpSocket* c = accept_queue.front();
  // The descriptor the program gets: a real socket, so that everything we
  // do not intercept (fstat, SCM_RIGHTS...) sees a socket.
  int nfd = libc::socket(v6 ? AF_INET6 : AF_INET,
                         SOCK_STREAM | (flags & (SOCK_CLOEXEC | SOCK_NONBLOCK)), 0);
  if (nfd < 0) return -errno;
  Runtime& rt = Runtime::get();
  if (!rt.fds().fits(nfd)) {
    libc::close(nfd);
    return -EMFILE;
  }
  accept_queue.pop_front();
  last_accept_ns = mono_ns();
  if (!accept_queue.empty()) queued_since_ns = last_accept_ns;
  if (c->pcb) tcp_backlog_accepted(c->pcb);
  c->listener = nullptr;
  c->fd = nfd;
  c->fd_refs = 1;
  c->descriptors.assign(1, Descriptor{process_id(), nfd});
  struct stat st;
  if (fstat(nfd, &st) == 0) c->twin_ino = st.st_ino;
  c->nonblock = flags & SOCK_NONBLOCK;
  copy_options_to_kernel(nfd, c->opt);
  rt.fds().set(nfd, c);
  ++rt.counters().accelerated_tcp;
  if (addr && len) write_sockaddr(c->remote, addr, len, v6);
  return nfd;
}

// ---- data ----

bool TcpSocket::can_queue(const tcp_pcb* p) {
  return tcp_sndbuf(p) > 0 && tcp_sndqueuelen(p) < TCP_SND_QUEUELEN - 4;
}

int TcpSocket::queue_room(const tcp_pcb* p, int per) {
  int room = (TCP_SND_QUEUELEN - 4 - int(tcp_sndqueuelen(p))) / per;
  return room > 0 ? room : 0;
}

namespace {

// The source of the send this thread is in: its waits ask it whether lwIP
// has room for it (the wait's test runs in the waiting thread).
__attribute__((tls_model("initial-exec"))) thread_local TcpSocket::SendSource* t_send_source = nullptr;

// A send()'s bytes: the program's iovec. Whole segments are copied
// straight into transmit frames (alloc_tcp_data_pbuf), which leave with the
// headers written in front: one copy, where tcp_write copies into lwIP's
// heap and the driver copies that into a frame. The rest (a tail shorter
// than a segment, the room left in the last queued segment, or no frames
// to spare) goes through tcp_write, which packs small writes together.
struct IovSource final : TcpSocket::SendSource {
  static constexpr int kBatch = stack::LinkNetif::kMaxDataInHand;  // segments per frame batch
  const iovec* iov;
  int iovcnt;
  int vi = 0;
  size_t voff = 0;
  IovSource(const iovec* v, int n) : iov(v), iovcnt(n) {}

  // The program's memory could not be read (EFAULT): the send is what was
  // queued before it.
  bool faulted = false;

  // Copies `n` bytes starting `skip` bytes after the current position.
  // False when part of them could not be read.
  bool copy_out(size_t skip, uint8_t* to, size_t n) const {
    int i = vi;
    size_t off = voff + skip;
    while (off >= iov[i].iov_len) off -= iov[i++].iov_len;
    while (n) {
      size_t take = std::min(n, iov[i].iov_len - off);
      if (copy_from_user(to, static_cast<const char*>(iov[i].iov_base) + off, take) < take)
        return false;
      to += take;
      n -= take;
      off = 0;
      ++i;
    }
    return true;
  }
  void advance(size_t n) {
    while (n) {
      size_t take = std::min(n, iov[vi].iov_len - voff);
      voff += take;
      n -= take;
      if (voff == iov[vi].iov_len) ++vi, voff = 0;
    }
  }

  size_t queue_in_frames(tcp_pcb* pcb, size_t sent, size_t total, bool more) {
    const uint16_t seg = tcp_write_pbuf_max(pcb);
    const size_t want = std::min(total - sent, size_t(tcp_sndbuf(pcb)));
    if (!seg || want < seg || pcb->unsent_oversize) return 0;
    Runtime& rt = Runtime::get();
    if (rt.frames_short()) return 0;
    int k = std::min({int(want / seg), kBatch, TcpSocket::queue_room(pcb, 2)});
    stack::LinkNetif& nif = rt.stack()->driver();
    pbuf* p[kBatch];
    pbuf* bad = nullptr;  // the frame a copy faulted in
    int got = 0;
    for (; got < k; ++got) {
      if (!(p[got] = nif.alloc_tcp_data_pbuf(seg))) break;
      // (Recorded first: a death in the copy, which reads the program's
      // memory with the lock held, leaves them to recover_frames_in_hand.)
      nif.data_frame_in_hand(p[got]);
      if (!copy_out(size_t(got) * seg, static_cast<uint8_t*>(p[got]->payload), seg)) {
        // (Linux's tcp_sendmsg: the bytes copied before the fault are sent.
        // The frame stays listed in hand until it is freed, below.)
        faulted = true;
        bad = p[got];
        break;
      }
    }
    if (!got) {
      nif.data_frames_settled();
      if (bad) pbuf_free(bad);
      return 0;
    }
    const bool last = sent + size_t(got) * seg >= total;
    int queued = tcp_write_pbufs(pcb, p, u16_t(got), more || !last ? TCP_WRITE_FLAG_MORE : 0);
    nif.data_frames_settled();
    if (bad) pbuf_free(bad);
    for (int i = queued; i < got; ++i) pbuf_free(p[i]);
    advance(size_t(queued) * seg);
    return size_t(queued) * seg;
  }

  // Nothing more after a fault: the send is what was queued (or EFAULT).
  static size_t stop_at_fault(Stop* stop) {
    stop->end = true;
    stop->error = -EFAULT;
    return 0;
  }

  size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) override {
    if (faulted) return stop_at_fault(stop);
    while (vi < iovcnt && voff == iov[vi].iov_len) ++vi, voff = 0;
    if (size_t n = queue_in_frames(pcb, sent, total, more)) return n;
    if (faulted) return stop_at_fault(stop);
    size_t n = std::min({iov[vi].iov_len - voff, size_t(tcp_sndbuf(pcb)), size_t(0xffff)});
    // Only the room in the last segment when there is some: the next call
    // may fill whole segments from frames.
    if (pcb->unsent_oversize) n = std::min(n, size_t(pcb->unsent_oversize));
    // (tcp_write copies: what it may read is looked at first.)
    if (size_t readable = readable_prefix(static_cast<const char*>(iov[vi].iov_base) + voff, n);
        readable < n) {
      faulted = true;
      if (!readable) return stop_at_fault(stop);
      n = readable;
    }
    u8_t wflags = TCP_WRITE_FLAG_COPY;
    if (more || sent + n < total) wflags |= TCP_WRITE_FLAG_MORE;
    if (tcp_write(pcb, static_cast<const char*>(iov[vi].iov_base) + voff, u16_t(n), wflags) != ERR_OK)
      return 0;
    voff += n;
    return n;
  }
};

}  // namespace

ssize_t TcpSocket::send(const iovec* iov, int iovcnt, int flags, int control_error, int record_flags) {
  IovSource src(iov, iovcnt);
  return send_from(src, iov_total(iov, iovcnt), flags, control_error, record_flags);
}

ssize_t TcpSocket::send_from(SendSource& src, size_t total, int flags, int control_error,
                             int record_flags) {
  Runtime& rt = Runtime::get();
  size_t sent = 0;
  // Transmit stamps: tcp_sendmsg marks the last byte it wrote when it
  // returns (a send that waited marks only its end).
  const uint32_t record =
      (record_flags >= 0 ? uint32_t(record_flags) : rx_cmsg.tsflags) & kStampRecord;
  bool marked = false;
  uint32_t last_written = 0;  // sequence number of the last byte this send wrote
  auto partial = [&](ssize_t r) {
    if (sent && record && !marked) mark_for_stamps(last_written, record);
    return r;
  };
  bool dontwait = nonblock || (flags & MSG_DONTWAIT);
  int source_error = 0;  // the source's own failure (a file's read error)
  bool source_io = false;  // the source waits for I/O before its next bytes
  struct Finish {
    SendSource& src;
    ~Finish() { src.finish(); }
  } finish{src};
  // What has arrived first: a reset or an ACK that frees buffer space
  // changes what this call may do. (Unless a poll would find nothing: no
  // frame on the rings, no timer due, nothing unsent. A ping-pong's reply
  // follows the receive that has just polled; the full poll's clock read,
  // look at every ring and reap cost it ~70 ns.)
  if (!rt.stack_quiet()) rt.poll_stack();
  for (;;) {
    if (state == State::Connecting) {
      if (dontwait) return -EAGAIN;
      int rc = wait_for([](TcpSocket* s) { return s->state != State::Connecting; }, opt.sndtimeo_ns,
                        kSpinTcpSend);
      if (rc < 0) return rc;
      continue;
    }
    if (error) return sent ? partial(ssize_t(sent)) : -pending_error(true);
    if (state != State::Connected || shut_wr || !pcb) return sent ? partial(ssize_t(sent)) : -EPIPE;
    if (control_error) return control_error;
    if (sent == total) break;
    // Queue as much as lwIP's send buffer takes.
    bool progressed = false;
    const bool more = (flags & MSG_MORE) || opt.cork;
    while (sent < total) {
      if (!src.ready(pcb)) break;
      SendSource::Stop stop;
      size_t n = src.queue(pcb, sent, total, more, &stop);
      if (n) {
        sent += n;
        progressed = true;
        last_written = pcb->snd_lbb - 1;
      }
      if (stop.end) {
        // The source has no more (a file's end, or a read error): the send
        // is what was queued.
        total = sent;
        source_error = stop.error;
        break;
      }
      if (stop.io) {
        source_io = true;
        break;
      }
      if (!n) break;
    }
    if (progressed || sent == total) {
      // The mark goes on before lwIP may send the byte.
      if (sent == total && sent && record && !marked) {
        mark_for_stamps(last_written, record);
        marked = true;
      }
      if (!(flags & MSG_MORE) && !opt.cork) tcp_output(pcb);
      rt.stack()->flush();
    }
    if (sent == total) break;
    if (source_io) {
      // The source's I/O, without the lock; then everything is looked at
      // again (the connection may have changed meanwhile).
      source_io = false;
      stack::CoreLock::unlock();
      {
        stack::NoCancellation not_here;  // (after the release, which gives the program's back)
        src.wait_io();
      }
      stack::CoreLock::lock();
      if (fd_refs == 0) return sent ? ssize_t(sent) : -EBADF;  // closed meanwhile
      family::core_subject() = this;
      rt.poll_stack();
      continue;
    }
    // The send buffer is full: partial write, or wait for acknowledgements.
    nospace = true;
    // A non-blocking send that wrote something returns now, as Linux's
    // does (it takes no acknowledgement in before it returns): going on
    // while acknowledgements free room, one call could send a whole file.
    if (dontwait && sent) return partial(ssize_t(sent));
    rt.poll_stack();
    if (pcb && src.ready(pcb) && !error) continue;
    if (dontwait) return sent ? partial(ssize_t(sent)) : -EAGAIN;
    SendSource* outer = t_send_source;  // (a send inside a send: none today)
    t_send_source = &src;
    int rc = wait_for(
        [](TcpSocket* s) {
          return !s->pcb || s->error || s->state != State::Connected ||
                 t_send_source->ready(s->pcb);
        },
        opt.sndtimeo_ns, kSpinTcpSend);
    t_send_source = outer;
    if (rc == -EBADF) return sent ? ssize_t(sent) : rc;  // (the socket may be gone)
    if (rc < 0) return sent ? partial(ssize_t(sent)) : rc;
  }
  if (!sent && source_error) return source_error;
  return ssize_t(sent);
}

// ---- transmit timestamps ----

void TcpSocket::mark_for_stamps(uint32_t last, uint32_t rec) {
  // Linux marks the tail skb of its write queue, which holds only unsent
  // data: a byte that has left already (a send that returns part-way, its
  // data out) gets no mark, as there.
  if (!pcb || !pcb->unsent || int32_t(last - lwip_ntohl(pcb->unsent->tcphdr->seqno)) < 0) return;
  // A write that went into the segment still holding the previous, unsent
  // mark moves it.
  bool same_segment = false;
  uint32_t prev;
  if (tx_stamps.last_unsent(&prev)) {
    tcp_seg* seg = pcb->unsent;
    while (seg->next) seg = seg->next;
    const uint32_t start = lwip_ntohl(seg->tcphdr->seqno);
    same_segment = prev - start < seg->len && last - start < seg->len;
  }
  tx_stamps.record(last, rec, same_segment);
  watch_frames(true);
}

void TcpSocket::watch_frames(bool on) {
  if (on == frames_watched) return;
  Runtime& rt = Runtime::get();
  family::vector<TcpSocket*>& list = rt.tx_stamping();
  if (on) {
    list.push_back(this);
  } else {
    list.erase(std::find(list.begin(), list.end(), this));
  }
  frames_watched = on;
  rt.stack()->driver().set_tx_watch(list.empty() ? nullptr : on_frame_sent, &list);
}

void TcpSocket::on_frame_sent(void* ctx, const uint8_t* frame, uint32_t len, const timespec& stamp) {
  // An IPv4 TCP segment with data (the link writes untagged Ethernet).
  constexpr uint32_t kEth = 14;
  if (len < kEth + 40 || frame[12] != 0x08 || frame[13] != 0x00) return;
  const uint8_t* ip = frame + kEth;
  if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP) return;
  const uint32_t ihl = (ip[0] & 0xfu) * 4, total = (uint32_t(ip[2]) << 8) | ip[3];
  if (ihl < 20 || total > len - kEth || total < ihl + 20) return;
  const uint8_t* th = ip + ihl;
  const uint32_t doff = (th[12] >> 4) * 4u;
  if (doff < 20 || total <= ihl + doff) return;
  const uint16_t sport = uint16_t((th[0] << 8) | th[1]), dport = uint16_t((th[2] << 8) | th[3]);
  uint32_t seq, dst;
  memcpy(&seq, th + 4, 4);
  memcpy(&dst, ip + 16, 4);
  seq = lwip_ntohl(seq);
  for (TcpSocket* s : *static_cast<family::vector<TcpSocket*>*>(ctx)) {
    tcp_pcb* p = s->pcb;
    if (!p || p->local_port != sport || p->remote_port != dport ||
        ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)) != dst)
      continue;
    // Looped back as Linux's clone of the frame is: Ethernet header first.
    if (s->tx_stamps.frame_sent(seq, total - ihl - doff, frame, kEth + total, th + doff, stamp,
                                uint64_t(mono_ns()), s->rx_cmsg.tsflags, s->error_queue_room(),
                                opt_stats_of, s))
      s->notify();
    return;
  }
}

size_t TcpSocket::opt_stats_of(void* ctx, uint64_t edt_ns, int ack_ttl, uint8_t* out) {
  const auto* s = static_cast<const TcpSocket*>(ctx);
  return s->pcb ? build_tcp_opt_stats(s->pcb, edt_ns, ack_ttl, out) : 0;
}

size_t TcpSocket::error_queue_room() const {
  // The error queue counts against the receive buffer, as on Linux.
  return size_t(opt.rcvbuf) > rx_bytes ? size_t(opt.rcvbuf) - rx_bytes : 0;
}

bool TcpSocket::start_stamp_keys(uint32_t tsflags) {
  // Linux refuses OPT_ID in TCP_CLOSE and TCP_LISTEN.
  if (!pcb || state == State::Listening || pcb->state == CLOSED || pcb->state == LISTEN ||
      pcb->state == TIME_WAIT)
    return false;
  tx_stamps.set_key_base((tsflags & kOptIdTcp) ? pcb->snd_lbb : pcb->lastack);
  return true;
}

ssize_t TcpSocket::recv(const iovec* iov, int iovcnt, int flags) {
  Runtime& rt = Runtime::get();
  size_t want = iov_total(iov, iovcnt);
  bool peek = flags & MSG_PEEK;
  bool waitall = (flags & MSG_WAITALL) && !peek;
  bool dontwait = nonblock || (flags & MSG_DONTWAIT);
  size_t got = 0;
  if (state == State::Listening) return -ENOTCONN;
  // Urgent data is never kept apart (it arrives inline): Linux's answer
  // when there is none to read.
  if (flags & MSG_OOB) return -EINVAL;
  // Unconnected (TCP_CLOSE): tcp_recvmsg's error, end or ENOTCONN.
  if (state == State::Fresh) {
    if (error) return -pending_error(true);
    return shut_rd ? 0 : -ENOTCONN;
  }
  for (;;) {
    rt.poll_stack();
    if (rx_bytes && want) {
      // Copy out, front pbuf first.
      int vi = 0;
      size_t voff = 0;
      size_t pos = rx_off;  // offset in the current pbuf
      size_t idx = 0;       // index into rx when peeking
      size_t copied = 0;
      bool faulted = false;
      while (copied < want - got && idx < rx.size()) {
        pbuf* head = rx[idx];
        last_read_stamp = rx_stamps[idx];
        while (vi < iovcnt && voff == iov[vi].iov_len) ++vi, voff = 0;
        size_t avail = head->tot_len - pos;
        size_t n = std::min(avail, iov[vi].iov_len - voff);
        n = std::min(n, want - got - copied);
        const size_t done = pbuf_to_user(head, static_cast<char*>(iov[vi].iov_base) + voff, n, pos);
        copied += done;
        voff += done;
        pos += done;
        if (done < n) {
          // (tcp_recvmsg: what was copied before the fault is read; the
          // rest stays for the next call.)
          faulted = true;
          break;
        }
        if (pos == head->tot_len) {
          ++idx;
          pos = 0;
        }
      }
      if (!peek) {
        for (size_t i = 0; i < idx; ++i) {
          pbuf_free(rx.front());
          rx.pop_front();
          rx_stamps.pop_front();
        }
        rx_off = pos;
        rx_bytes -= copied;
        // The window reopens by what the program took.
        for (size_t left = copied; pcb && left;) {
          u16_t step = u16_t(std::min<size_t>(left, 0xffff));
          tcp_recved(pcb, step);
          left -= step;
        }
        rt.stack()->flush();
      }
      // Iovecs are consumed in order: shift the view for a MSG_WAITALL loop.
      got += copied;
      if (faulted) return got ? ssize_t(got) : -EFAULT;
      if (!waitall || got == want) return ssize_t(got);
      // Advance iov past what was filled.
      static thread_local std::vector<iovec> rest;
      rest.assign(iov, iov + iovcnt);
      size_t skip = copied;
      int k = 0;
      while (skip && k < iovcnt) {
        size_t t = std::min(skip, rest[k].iov_len);
        rest[k].iov_base = static_cast<char*>(rest[k].iov_base) + t;
        rest[k].iov_len -= t;
        skip -= t;
        if (rest[k].iov_len == 0) ++k;
      }
      iov = rest.data() + k;
      iovcnt -= k;
      continue;
    }
    // A read of 0 bytes waits for data as a read of 1 would (Linux's
    // sock_rcvlowat() is at least 1), and takes none.
    if (!want && rx_bytes) return 0;
    if (ssize_t r = nothing_to_read(dontwait, got); r != kReadAgain) return r;
  }
}

ssize_t TcpSocket::nothing_to_read(bool dontwait, size_t got) {
  // tcp_recvmsg_locked's order: the peer's FIN (SOCK_DONE), then the
  // socket's error, then a shutdown or a closed socket.
  if (rx_fin) return ssize_t(got);
  if (error) return got ? ssize_t(got) : -pending_error(true);
  if (shut_rd || state == State::Closed) return ssize_t(got);
  if (dontwait) return got ? ssize_t(got) : -EAGAIN;
  int rc = wait_for(
      [](TcpSocket* s) {
        return s->rx_bytes || s->rx_fin || s->shut_rd || s->error || s->state == State::Closed;
      },
      opt.rcvtimeo_ns, kSpinTcpRecv);
  if (rc < 0) return got ? ssize_t(got) : rc;
  return kReadAgain;
}

ssize_t TcpSocket::recv_in_place(pbuf** out, int max, int (*room)(), int* n, int flags) {
  Runtime& rt = Runtime::get();
  const bool dontwait = nonblock || (flags & MSG_DONTWAIT);
  *n = 0;
  // recv()'s answers for a socket that is not a connection.
  if (state == State::Listening) return -ENOTCONN;
  if (state == State::Fresh) {
    if (error) return -pending_error(true);
    return shut_rd ? 0 : -ENOTCONN;
  }
  for (;;) {
    rt.poll_stack();
    if (rx_bytes) {
      max = std::min(max, room());
      if (max <= 0) return -ENOBUFS;
      size_t given = 0;
      while (*n < max && !rx.empty()) {
        // The front chain's first pbuf, alone: the program releases each
        // piece on its own.
        pbuf* first = rx.front();
        if (pbuf* rest = take_first_pbuf(first)) {
          rx.front() = rest;
        } else {
          rx.pop_front();
          last_read_stamp = rx_stamps.front();
          rx_stamps.pop_front();
        }
        // What a recv() already read of it.
        const size_t skip = std::min<size_t>(rx_off, first->len);
        rx_off -= skip;
        if (skip == first->len) {
          pbuf_free(first);
          continue;
        }
        pbuf_remove_header(first, u16_t(skip));
        given += first->len;
        out[(*n)++] = first;
      }
      rx_bytes -= given;
      for (size_t left = given; pcb && left;) {
        u16_t step = u16_t(std::min<size_t>(left, 0xffff));
        tcp_recved(pcb, step);
        left -= step;
      }
      rt.stack()->flush();
      return ssize_t(given);
    }
    if (ssize_t r = nothing_to_read(dontwait, 0); r != kReadAgain) return r;
  }
}

void TcpSocket::stop_listening() {
  Runtime& rt = Runtime::get();
  draining = false;
  for (TcpSocket* c : accept_queue) {
    c->listener = nullptr;
    c->release();  // never accepted: reset
    rt.maybe_delete(c);
  }
  accept_queue.clear();
  if (pcb) {
    tcp_pcb* lp = pcb;
    detach();
    tcp_close(lp);
  }
}

bool TcpSocket::hand_listening_to_kernel() {
  if (state != State::Listening || !pcb) return false;
  Runtime& rt = Runtime::get();
  rt.share_port_with_kernel(local.port);
  if (!rt.port_shared(PortKey{IPPROTO_TCP, local.port})) return false;  // (said once)
  draining = true;
  // The frames that reached the rings before the port was shared: their
  // SYNs are this listener's (port_passive_open lists each new flow).
  rt.poll_stack();
  return true;
}

void TcpSocket::reset_waiting_connections() {
  for (TcpSocket* c : accept_queue) {
    c->opt.linger = true;
    c->opt.linger_s = 0;
  }
}

bool TcpSocket::drained() const {
  if (!accept_queue.empty()) return false;
  if (!pcb) return true;
  for (const tcp_pcb* p = tcp_active_pcbs; p; p = p->next)
    if (p->state == SYN_RCVD && p->listener == reinterpret_cast<const tcp_pcb_listen*>(pcb))
      return false;
  return true;
}

void TcpSocket::disconnect() {
  Runtime& rt = Runtime::get();
  // tcp_disconnect moves write_seq max_window + 2 past snd_nxt.
  uint32_t max_window = 0;
  if (state == State::Listening) {
    stop_listening();
    twin_unbound = !port_fixed;
  } else if (tcp_pcb* p = pcb) {
    const tcp_state st = p->state;
    max_window = uint32_t(p->snd_wnd_max);
    detach();
    // tcp_need_reset's states, and a closing one with data still unsent.
    bool rst = st == SYN_RCVD || st == ESTABLISHED || st == FIN_WAIT_1 || st == FIN_WAIT_2 ||
               st == CLOSE_WAIT || ((st == CLOSING || st == LAST_ACK) && p->unsent);
    if (rst || st == SYN_SENT) error = ECONNRESET;
    // A connection in TIME_WAIT lives on in lwIP, as Linux's does apart
    // from the socket; any other PCB goes now (and its hold on the port).
    if (st != TIME_WAIT) tcp_abandon(p, rst);
    else if (owns_port) rt.port_park(PortKey{IPPROTO_TCP, local.port}, fd);  // as release() does
    rt.stack()->flush();
  }
  notsent_after_disconnect += max_window + 2;
  drop_queue();
  state = State::Fresh;
  reset = rx_fin = established = connect_unreported = nospace = disconnecting = false;
  shut_rd = shut_wr = false;  // tcp_disconnect clears sk_shutdown
  remote = SockAddr{};
  notify();
}

int TcpSocket::shutdown(int how, int fd_now) {
  Runtime& rt = Runtime::get();
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return -EINVAL;
  // inet_shutdown: a listener shut for reading, or a connection still
  // being made, is disconnected (unconnected again, reusable); the kernel
  // twin's listener stops with it.
  if (state == State::Listening) {
    if (how == SHUT_WR) return 0;
    disconnect();
    libc::shutdown(fd_now, how);
    return 0;
  }
  if (state == State::Connecting) {
    disconnect();
    return 0;
  }
  if (state == State::Fresh) {
    // TCP_CLOSE: ENOTCONN, and the shutdown recorded (poll shows it).
    if (how != SHUT_WR) shut_rd = true;
    if (how != SHUT_RD) shut_wr = true;
    notify();
    return -ENOTCONN;
  }
  if (state != State::Connected && state != State::Closed) return -ENOTCONN;
  // A connection that is over (reset, or closed both ways) is in Linux's
  // TCP_CLOSE: ENOTCONN, the shutdown recorded all the same. The socket
  // layer then counts it connected (a later connect() says EISCONN), or,
  // when no connect() had confirmed it, disconnecting (inet_shutdown's
  // SS_DISCONNECTING: a later connect() says EINVAL).
  bool over = state == State::Closed;
  if (over && (connect_unreported || !established)) disconnecting = true;
  connect_unreported = false;
  if (how != SHUT_WR) shut_rd = true;
  if (how != SHUT_RD && !shut_wr) {
    shut_wr = true;
    if (pcb) {
      tcp_shutdown(pcb, 0, 1);
      rt.stack()->flush();
    }
  }
  notify();
  return over ? -ENOTCONN : 0;
}

void TcpSocket::release() {
  Runtime& rt = Runtime::get();
  count_stamp_user(false);
  tx_stamps.queue.clear();
  if (state == State::Listening) stop_listening();
  tcp_pcb* p = pcb;
  if (p) {
    detach();
    drop_queue();
    if (p->state == LISTEN) {
      tcp_close(p);
    } else if ((opt.linger && opt.linger_s == 0) || listener) {
      tcp_abort(p);  // SO_LINGER 0, or never accepted: reset
    } else {
      // Unread data (not yet given back with tcp_recved) makes lwIP reset
      // the connection instead of closing it, as Linux does.
      if (tcp_close(p) != ERR_OK) {
        tcp_abort(p);
      } else if (owns_port) {
        // The PCB lives on (FIN_WAIT, TIME_WAIT): keep the kernel's hold on
        // the port until lwIP frees it.
        rt.port_park(PortKey{IPPROTO_TCP, local.port}, fd);
      }
    }
    rt.stack()->flush();
  }
  drop_queue();
  state = State::Closed;
}

// ---- getsockopt ----

void TcpSocket::stat_row(stats::SocketRow* row) const {
  tcp_info ti;
  socklen_t len = sizeof ti;
  fill_tcp_info(&ti, &len);
  *row = stats::SocketRow{};
  row->proto = IPPROTO_TCP;
  row->state = state == State::Listening ? uint8_t(TCP_LISTEN) : ti.tcpi_state;
  row->accelerated = 1;
  row->fd = descriptors.empty() ? -1 : descriptors.front().fd;
  row->local_ip = local.ip;
  row->local_port = local.port;
  row->remote_ip = remote.ip;
  row->remote_port = remote.port;
  row->rx_queue = uint32_t(state == State::Listening ? accept_queue.size() : rx_bytes);
  if (pcb && state != State::Listening) strncpy(row->cc, tcp_get_congestion(pcb), sizeof row->cc - 1);
  row->tx_queue = uint32_t(unacked_bytes());
}

void TcpSocket::fill_tcp_info(void* out, socklen_t* len) const {
  tcp_info ti{};
  if (pcb) {
    static const uint8_t kState[] = {TCP_CLOSE,     TCP_LISTEN,    TCP_SYN_SENT,   TCP_SYN_RECV,
                                     TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT,
                                     TCP_CLOSING,   TCP_LAST_ACK,  TCP_TIME_WAIT};
    ti.tcpi_state = pcb->state < sizeof kState ? kState[pcb->state] : uint8_t(TCP_CLOSE);
    if (pcb->state != LISTEN) {
      ti.tcpi_snd_mss = pcb->mss;
      ti.tcpi_rcv_mss = pcb->mss;
      ti.tcpi_snd_cwnd = pcb->mss ? uint32_t(pcb->cwnd / pcb->mss) : 0;
      ti.tcpi_snd_ssthresh = pcb->mss ? uint32_t(pcb->ssthresh / pcb->mss) : 0;
      ti.tcpi_rto = uint32_t(pcb->rto) * TCP_SLOW_INTERVAL * 1000;
      // The timeout's estimator, in Linux's fields and scaling (lwIP patch
      // 0016): srtt8_us is 8 times the smoothed RTT.
      ti.tcpi_rtt = pcb->srtt8_us >> 3;
      ti.tcpi_rttvar = pcb->mdev_us >> 2;
      ti.tcpi_retransmits = pcb->nrtx;
      // Linux's packets_out: segments sent and not acknowledged (not lwIP's
      // queue length, which counts pbufs, 2 for a segment sent from a frame,
      // and the unsent ones too).
      uint32_t in_flight = 0;
      for (const tcp_seg* seg = pcb->unacked; seg; seg = seg->next) ++in_flight;
      ti.tcpi_unacked = in_flight;
      ti.tcpi_options = uint8_t(((pcb->flags & TF_TIMESTAMP) ? TCPI_OPT_TIMESTAMPS : 0) |
                                ((pcb->flags & TF_SACK) ? TCPI_OPT_SACK : 0) |
                                ((pcb->flags & TF_WND_SCALE) ? TCPI_OPT_WSCALE : 0));
      ti.tcpi_snd_wscale = pcb->snd_scale;
      ti.tcpi_rcv_wscale = pcb->rcv_scale;
      ti.tcpi_rcv_space = pcb->rcv_wnd;
    }
  } else {
    ti.tcpi_state = TCP_CLOSE;
  }
  socklen_t n = std::min<socklen_t>(*len, sizeof ti);
  memcpy(out, &ti, n);
  *len = n;
}

int TcpSocket::getsockopt(int level, int name, void* value, socklen_t* len, bool* handled) {
  *handled = true;
  // As Linux copies an int option: cut to the caller's length (a negative
  // length, as an int, is EINVAL).
  auto put_int = [&](int v) -> int {
    if (int(*len) < 0) return -EINVAL;
    socklen_t n = std::min<socklen_t>(*len, sizeof v);
    memcpy(value, &v, n);
    *len = n;
    return 0;
  };
  if (level == SOL_SOCKET && name == SO_ERROR) return put_int(pending_error(true));
  if (level == SOL_SOCKET && name == SO_ACCEPTCONN) return put_int(state == State::Listening);
  if (level == IPPROTO_TCP && name == TCP_INFO) {
    fill_tcp_info(value, len);
    return 0;
  }
  if (level == IPPROTO_TCP && name == TCP_NODELAY) return put_int(opt.nodelay);
  if (level == IPPROTO_TCP && name == TCP_CONGESTION && pcb && state != State::Listening) {
    // What the connection runs on the stack, as Linux copies it: the name
    // zero-padded to 16 bytes, cut to the caller's length.
    char name16[16] = {};
    strncpy(name16, tcp_get_congestion(pcb), sizeof name16 - 1);
    socklen_t n = std::min<socklen_t>(*len, sizeof name16);
    memcpy(value, name16, n);
    *len = n;
    return 0;
  }
  if (level == SOL_SOCKET && name == SO_KEEPALIVE) return put_int(opt.keepalive);
  // SO_TIMESTAMPING as sk_getsockopt copies it (struct so_timestamping, cut
  // to the caller's length; the _NEW name shows the flags only when they
  // were set through it): the stack's flags, the OPT_ID bits included,
  // which the kernel twin of a connection never gets.
  if (level == SOL_SOCKET && (name == 37 /* _OLD */ || name == 65 /* _NEW */)) {
    if (int(*len) < 0) return -EINVAL;
    struct {
      int flags;
      int bind_phc;
    } v{};
    if (name == 37 || rx_cmsg.tstamp_new) v.flags = int(rx_cmsg.tsflags);
    socklen_t n = std::min<socklen_t>(*len, sizeof v);
    memcpy(value, &v, n);
    *len = n;
    return 0;
  }
  *handled = false;
  return 0;
}

}  // namespace xdpload::shim
