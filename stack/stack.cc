#include "stack/stack.h"

#include "stack/lwip_port.h"
#include "rings/stage_trace.h"
#include "stack/pcap_link.h"
#include "stack/xsk_link.h"

extern "C" {
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
}

namespace xdpload::stack {

namespace {
constexpr uint64_t kPeriodicMs = 100;
// Kernel events are read at least this often while someone polls; the
// progress thread reads them at once when it is the one waiting.
constexpr uint64_t kEventsMs = 100;

// This process's port, for the kick after each release of the lock.
std::atomic<rings::XskPort*> g_release_port{nullptr};

void kick_after_release() {
  rings::XskPort* p = g_release_port.load(std::memory_order_relaxed);
  if (!p) return;
  // (After any call that released the lock: its errno is the program's.)
  const int err = errno;
  if (!p->kick_after_release() && CoreLock::try_lock()) {
    // Frames only a holder can get out: ours to do if the lock is free,
    // else its holder's at its release.
    p->kick_now_if_noted();
    CoreLock::unlock();
  }
  errno = err;
}

void kick_after_release_of(rings::XskPort* port) {
  port->set_kick_after_release(true);
  g_release_port.store(port);
  g_core_release_hook.store(kick_after_release);
}

}  // namespace

void Stack::stop_kicks_after_release() {
  g_core_release_hook.store(nullptr);
  g_release_port.store(nullptr);
}

int Stack::open(const StackConfig& config, std::unique_ptr<Stack>* out, ErrorText* why) {
  std::unique_ptr<Stack> s(new Stack());
  if (int rc = read_interface_info(config.port.iface, &s->info_, why); rc < 0) return rc;
  rings::PortConfig pc = config.port;
  pc.mtu = s->info_.mtu;
  std::unique_ptr<rings::XskPort> port;
  int rc = config.broker ? rings::XskPort::open_brokered(pc.iface, config.broker, &port, why,
                                                       config.test_broker_hoard_until)
                         : rings::XskPort::open(pc, &port, why);
  if (rc < 0) return rc;
  s->port_ = port.get();
  NetifAddress a;
  a.addr = s->info_.addr;
  a.netmask = s->info_.netmask;
  a.mtu = s->info_.mtu;
  memcpy(a.mac, s->info_.mac, 6);
  a.accept_partial_checksums = s->info_.virtual_link();
  auto xsk = std::make_unique<XskLink>(std::move(port));
  s->xsk_link_ = xsk.get();
  std::unique_ptr<Link> link = std::move(xsk);
  if (!config.pcap_path.empty()) {
    auto writer = std::make_unique<PcapWriter>();
    // tcpdump's default snapshot length: whole packets, multi-buffer ones too.
    if (int rc = writer->open(config.pcap_path.c_str(), 262144, why); rc < 0)
      return rc;
    s->capture_ = writer.get();
    link = std::make_unique<PcapLink>(std::move(link), std::move(writer));
  }
  if (int rc = s->start(std::move(link), a, s->info_.ifindex, why); rc < 0) return rc;
  kick_after_release_of(s->port_);
  *out = std::move(s);
  return 0;
}

int Stack::open_on(std::unique_ptr<Link> link, const NetifAddress& address,
                   std::unique_ptr<Stack>* out, ErrorText* why) {
  std::unique_ptr<Stack> s(new Stack());
  if (int rc = s->start(std::move(link), address, 0, why); rc < 0) return rc;
  *out = std::move(s);
  return 0;
}

int Stack::start(std::unique_ptr<Link> link, const NetifAddress& address, int kernel_ifindex,
                 ErrorText* why) {
  link_ = std::move(link);
  lwip_core_init();
  if (int rc = driver_.open(link_.get(), address, kernel_ifindex, why); rc < 0) return rc;
  // A process has one accelerated interface: it is the default route for
  // lwIP (the kernel has already said the destination is reached through it).
  if (!netif_default) netif_set_default(driver_.nif());
  return 0;
}

Stack::~Stack() {
  if (port_ && g_release_port.load() == port_) stop_kicks_after_release();
  if (netif_default == driver_.nif()) netif_set_default(nullptr);
}

uint32_t Stack::poll(uint32_t budget) {
  // One clock read per poll: a spinning caller polls millions of times a
  // second, and an empty poll should cost little more than a look at the
  // rx ring.
  uint64_t now = now_ms();
  uint32_t n = driver_.input(budget, now);
  if (n) trace::mark(trace::kStackDelivered);
  // lwIP's timers have millisecond resolution: once per millisecond is as
  // often as any can fall due.
  if (now != last_timer_check_ms_.load(std::memory_order_relaxed)) {
    last_timer_check_ms_.store(now, std::memory_order_relaxed);
    sys_check_timeouts();
  }
  if (now >= next_periodic_ms_) {
    next_periodic_ms_ = now + kPeriodicMs;
    driver_.periodic(now);
    if (port_) port_->kick_stale_rings();
  }
  if (driver_.holding() || now >= next_events_ms_) {
    next_events_ms_ = now + kEventsMs;
    driver_.kernel_events();
  }
  link_->flush();
  return n;
}

int64_t Stack::next_timer_ms() {
  uint32_t ms = sys_timeouts_sleeptime();
  if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE) return -1;
  return ms;
}

uint32_t Stack::port_generation() const { return xsk_link_ ? xsk_link_->generation() : 0; }

void Stack::replace_port(std::unique_ptr<rings::XskPort> port) {
  if (!xsk_link_) return;
  port_ = xsk_link_->replace_port(std::move(port));
  if (g_release_port.load()) kick_after_release_of(port_);
}

int Stack::steer(uint8_t proto, uint16_t port, int backing_fd, ErrorText* why) {
  return port_ ? port_->steer(proto, port, backing_fd, why) : 0;
}

void Stack::unsteer(uint8_t proto, uint16_t port) {
  if (port_) port_->unsteer(proto, port);
}

int Stack::share_port(uint8_t proto, uint16_t port, bool shared) {
  return port_ ? port_->share_port(proto, port, shared) : -EOPNOTSUPP;
}

int Stack::share_group_frames(uint16_t udp_port, bool shared) {
  return port_ ? port_->share_group_frames(udp_port, shared) : -EOPNOTSUPP;
}

int Stack::add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                    uint16_t remote_port_be, uint8_t whose) {
  return port_ ? port_->add_flow(proto, local_port_be, remote_ip, remote_port_be, whose)
               : -EOPNOTSUPP;
}

int Stack::remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                       uint16_t remote_port_be) {
  return port_ ? port_->remove_flow(proto, local_port_be, remote_ip, remote_port_be) : 0;
}

LwipUsage lwip_usage() {
  lwip_core_init();  // the pool statistics exist once lwIP is initialized
  LwipUsage u;
  u.tcp_pcbs = lwip_stats.memp[MEMP_TCP_PCB]->used;
  u.tcp_listen_pcbs = lwip_stats.memp[MEMP_TCP_PCB_LISTEN]->used;
  u.udp_pcbs = lwip_stats.memp[MEMP_UDP_PCB]->used;
  u.tcp_segments = lwip_stats.memp[MEMP_TCP_SEG]->used;
  u.ref_pbufs = lwip_stats.memp[MEMP_PBUF]->used;
  u.pool_pbufs = lwip_stats.memp[MEMP_PBUF_POOL]->used;
  u.timeouts = lwip_stats.memp[MEMP_SYS_TIMEOUT]->used;
  u.heap_bytes = lwip_stats.mem.used;
  for (struct tcp_pcb* p = tcp_tw_pcbs; p; p = p->next) ++u.tcp_time_wait;
  return u;
}

TcpEvents tcp_events() {
  TcpEvents e;
  e.recoveries = tcp_xstats.recoveries;
  e.rexmit_recovery = tcp_xstats.rexmit_recovery;
  e.rexmit_rto = tcp_xstats.rexmit_rto;
  e.tlp_probes = tcp_xstats.tlp_probes;
  e.rack_lost = tcp_xstats.rack_lost;
  e.lost_rexmit = tcp_xstats.lost_rexmit;
  e.dsacks = tcp_xstats.dsack_rcvd;
  e.undone = tcp_xstats.undo;
  e.rto_undone = tcp_xstats.rto_undo;
  e.paws_dropped = tcp_xstats.paws_dropped;
  e.tw_overflow = tcp_xstats.tw_overflow;
  e.sack_blocks = tcp_xstats.sack_blocks_rcvd;
  e.tw_syn_accepted = tcp_xstats.tw_syn_accepted;
  return e;
}

void set_tcp_timewait_limit(uint32_t n) { tcp_tw_max = n; }

TcpUndelivered tcp_undelivered() {
  TcpUndelivered u;
  for (struct tcp_pcb* p = tcp_active_pcbs; p; p = p->next) {
    switch (p->state) {
      case ESTABLISHED:
      case CLOSE_WAIT:
      case FIN_WAIT_1:
      case CLOSING:
      case LAST_ACK:
        ++u.connections;
        // snd_lbb: next byte the program will write; lastack: the oldest
        // byte not yet acknowledged.
        u.bytes += uint32_t(p->snd_lbb - p->lastack);
        break;
      case FIN_WAIT_2:
        ++u.awaiting_fin;
        break;
      default:
        break;
    }
  }
  return u;
}

}  // namespace xdpload::stack
