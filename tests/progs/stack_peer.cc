// stack_peer: drives a Stack (lwIP over AF_XDP) against kernel sockets in the
// other namespace, through lwIP's raw API. One scenario per run:
//
//   stack_peer --iface X --peer IP --port P tcp-echo IN OUT
//       connect, send file IN, write what comes back to OUT, close
//   stack_peer ... udp-echo COUNT
//       COUNT datagrams of varying size, each echoed back and compared
//   stack_peer ... cycles COUNT
//       COUNT connect/close cycles, then report PCBs and frames still held
//   stack_peer ... refused            connect to a port nobody listens on
//   stack_peer ... reset              a peer that resets an open connection
//   stack_peer ... pingpong SECONDS   TCP round trips with checked echoes
//
// Prints a result line and exits 0 when the scenario's expectation holds.
#include <arpa/inet.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#include <algorithm>

#include "stack/lwip_port.h"
#include "stack/stack.h"

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
}

using namespace xdpload;
using namespace xdpload::stack;

namespace {

std::unique_ptr<Stack> g_stack;
uint32_t g_peer;
uint16_t g_port;

uint64_t mono_ms() { return now_ms(); }

// SIGTERM/SIGINT end the scenario early, so that the counters still print.
volatile sig_atomic_t g_stop = 0;
// SIGUSR1 asks tcp-echo to print its connection's state (a stalled transfer
// is diagnosed while it crawls: tests/stack/stack-tcp-echo.sh sends it).
volatile sig_atomic_t g_dump = 0;

// With the lock held: what lwIP knows of a connection, and its loss-recovery
// counters, for a transfer that went wrong.
void print_tcp_state(const char* why, const struct tcp_pcb* pcb) {
  const struct tcp_xstats& x = tcp_xstats;
  if (pcb)
    printf("%s: state %d cwnd %u ssthresh %u snd_wnd %u rcv_wnd %u rto %d nrtx %u flags 0x%x "
           "unacked %s unsent %s ooseq %s snd_queuelen %u\n",
           why, int(pcb->state), unsigned(pcb->cwnd), unsigned(pcb->ssthresh),
           unsigned(pcb->snd_wnd), unsigned(pcb->rcv_wnd), int(pcb->rto), unsigned(pcb->nrtx),
           unsigned(pcb->flags), pcb->unacked ? "yes" : "no", pcb->unsent ? "yes" : "no",
           pcb->ooseq ? "yes" : "no", unsigned(pcb->snd_queuelen));
  printf("%s: tcp xmit %u recv %u drop %u memerr %u; recoveries %llu rexmit-recovery %llu "
         "rto %llu tlp %llu rack-lost %llu lost-rexmit %llu dsack %llu undo %llu paws-dropped "
         "%llu\n",
         why, unsigned(lwip_stats.tcp.xmit), unsigned(lwip_stats.tcp.recv),
         unsigned(lwip_stats.tcp.drop), unsigned(lwip_stats.tcp.memerr),
         (unsigned long long)x.recoveries, (unsigned long long)x.rexmit_recovery,
         (unsigned long long)x.rexmit_rto, (unsigned long long)x.tlp_probes,
         (unsigned long long)x.rack_lost, (unsigned long long)x.lost_rexmit,
         (unsigned long long)x.dsack_rcvd, (unsigned long long)x.undo,
         (unsigned long long)x.paws_dropped);
}

// Polls the stack (lock held) for `ms`, or until `done()`.
template <typename Done>
bool run_until(uint64_t ms, Done done) {
  uint64_t end = mono_ms() + ms;
  while (!done()) {
    if (mono_ms() > end || g_stop) return false;
    CoreGuard g;
    g_stack->poll();
  }
  return true;
}

// A TCP client connection through lwIP.
struct Conn {
  struct tcp_pcb* pcb = nullptr;
  bool connected = false;
  bool peer_closed = false;
  err_t error = ERR_OK;  // from lwIP's error callback (the PCB is gone then)
  std::vector<uint8_t> in;
  uint16_t local_port = 0;

  static err_t on_connected(void* arg, struct tcp_pcb*, err_t) {
    static_cast<Conn*>(arg)->connected = true;
    return ERR_OK;
  }
  static err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t) {
    auto* c = static_cast<Conn*>(arg);
    if (!p) {
      c->peer_closed = true;
      return ERR_OK;
    }
    size_t at = c->in.size();
    c->in.resize(at + p->tot_len);
    pbuf_copy_partial(p, c->in.data() + at, p->tot_len, 0);
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
  }
  static void on_error(void* arg, err_t err) {
    auto* c = static_cast<Conn*>(arg);
    c->error = err;
    c->pcb = nullptr;
  }

  // With the lock held. Binds an ephemeral port, steers it, connects.
  bool start() {
    pcb = tcp_new();
    ip4_addr_t src{g_stack->addr()}, dst{g_peer};
    if (tcp_bind(pcb, &src, 0) != ERR_OK) return false;
    local_port = pcb->local_port;
    ErrorText why;
    if (g_stack->steer(IPPROTO_TCP, local_port, -1, &why) != 0) return false;
    tcp_arg(pcb, this);
    tcp_recv(pcb, on_recv);
    tcp_err(pcb, on_error);
    tcp_nagle_disable(pcb);
    return tcp_connect(pcb, &dst, g_port, on_connected) == ERR_OK;
  }
  // With the lock held: queues as much of [data, data+len) as fits.
  size_t write(const uint8_t* data, size_t len) {
    size_t done = 0;
    while (pcb && done < len) {
      size_t n = std::min<size_t>({len - done, size_t(tcp_sndbuf(pcb)), size_t(65535)});
      if (n == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 4) break;
      if (tcp_write(pcb, data + done, uint16_t(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
      done += n;
    }
    if (pcb) tcp_output(pcb);
    return done;
  }
  void close() {
    if (pcb) {
      tcp_arg(pcb, nullptr);
      tcp_recv(pcb, nullptr);
      tcp_err(pcb, nullptr);
      tcp_close(pcb);
      pcb = nullptr;
    }
  }
};

bool connect(Conn& c, uint64_t ms = 5000) {
  {
    CoreGuard g;
    if (!c.start()) return false;
  }
  return run_until(ms, [&] { return c.connected || c.error != ERR_OK; }) && c.connected;
}

int tcp_echo(const char* in_path, const char* out_path) {
  std::ifstream f(in_path, std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Conn c;
  if (!connect(c)) {
    printf("tcp-echo: connect failed (err %d)\n", c.error);
    return 1;
  }
  c.in.reserve(data.size());
  size_t sent = 0;
  uint64_t start = mono_ms();
  bool ok = run_until(120000, [&] {
    if (c.error != ERR_OK) return true;
    if (g_dump) {
      g_dump = 0;
      CoreGuard g;
      print_tcp_state("tcp-echo (asked)", c.pcb);
    }
    if (sent < data.size()) sent += c.write(data.data() + sent, data.size() - sent);
    return c.in.size() >= data.size();
  });
  double secs = double(mono_ms() - start) / 1000.0;
  {
    CoreGuard g;
    if (!ok || c.error != ERR_OK) print_tcp_state("tcp-echo (failed)", c.pcb);
    c.close();
  }
  run_until(200, [] { return false; });
  std::ofstream(out_path, std::ios::binary).write(reinterpret_cast<char*>(c.in.data()), c.in.size());
  printf("tcp-echo: sent %zu received %zu in %.2f s (%.0f Mbit/s each way) err %d\n", sent,
         c.in.size(), secs, sent * 8 / secs / 1e6, c.error);
  return ok && c.error == ERR_OK && c.in.size() == data.size() ? 0 : 1;
}

int udp_echo(int count) {
  struct State {
    std::vector<uint8_t> got;
    int want = -1;  // the sequence number we wait for
    int stale = 0;  // late echoes of our own retries
    bool have = false;
  } st;
  struct udp_pcb* pcb;
  {
    CoreGuard g;
    pcb = udp_new();
    ip4_addr_t src{g_stack->addr()};
    udp_bind(pcb, &src, 0);
    ErrorText why;
    g_stack->steer(IPPROTO_UDP, pcb->local_port, -1, &why);
    udp_recv(
        pcb,
        [](void* arg, struct udp_pcb*, struct pbuf* p, const ip_addr_t*, u16_t) {
          auto* s = static_cast<State*>(arg);
          int seq = -1;
          if (p->tot_len >= 4) pbuf_copy_partial(p, &seq, 4, 0);
          if (seq < s->want) {
            ++s->stale;
          } else {
            s->got.resize(p->tot_len);
            pbuf_copy_partial(p, s->got.data(), p->tot_len, 0);
            s->have = true;
          }
          pbuf_free(p);
        },
        &st);
  }
  int ok = 0, bad = 0, lost = 0, retried = 0;
  for (int seq = 0; seq < count; ++seq) {
    uint16_t len = uint16_t(8 + (seq * 37) % 1400);
    std::vector<uint8_t> msg(len);
    for (uint16_t i = 0; i < len; ++i) msg[i] = uint8_t(seq * 7 + i);
    memcpy(msg.data(), &seq, 4);
    bool answered = false;
    for (int attempt = 0; attempt < 3 && !answered; ++attempt) {
      {
        CoreGuard g;
        st.have = false;
        st.want = seq;
        struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, len, PBUF_RAM);
        memcpy(p->payload, msg.data(), len);
        ip4_addr_t dst{g_peer};
        udp_sendto(pcb, p, &dst, g_port);
        pbuf_free(p);
      }
      answered = run_until(1000, [&] { return st.have; });
      if (!answered) ++retried;
    }
    if (!answered) {
      ++lost;
    } else if (st.got == msg) {
      ++ok;
    } else {
      ++bad;
      int got_seq = -1;
      if (st.got.size() >= 4) memcpy(&got_seq, st.got.data(), 4);
      printf("udp-echo: datagram %d (%u bytes) came back as %d (%zu bytes)\n", seq, len, got_seq,
             st.got.size());
    }
  }
  {
    CoreGuard g;
    udp_remove(pcb);
  }
  printf("udp-echo: %d echoed intact, %d corrupted, %d lost, %d retried, %d stale\n", ok, bad,
         lost, retried, st.stale);
  return ok == count ? 0 : 1;
}

int cycles(int count) {
  LwipUsage before;
  uint32_t held_before;
  {
    CoreGuard g;
    before = lwip_usage();
    held_before = g_stack->link().held_frames();
  }
  int connected = 0;
  for (int i = 0; i < count; ++i) {
    Conn c;
    if (connect(c)) ++connected;
    uint16_t port = c.local_port;
    {
      CoreGuard g;
      c.close();
    }
    // Wait until lwIP has no active PCB (ours reached TIME_WAIT or closed).
    run_until(3000, [] { return tcp_active_pcbs == nullptr; });
    CoreGuard g;
    g_stack->unsteer(IPPROTO_TCP, port);
  }
  CoreGuard g;
  for (int i = 0; i < 50; ++i) g_stack->poll();
  // TIME_WAIT would end in 2 MSL: ended now, so that every PCB the cycles
  // made must be gone and the count can be compared whole.
  const uint32_t time_wait = lwip_usage().tcp_time_wait;
  while (tcp_tw_pcbs) tcp_abort(tcp_tw_pcbs);
  for (int i = 0; i < 50; ++i) g_stack->poll();
  LwipUsage after = lwip_usage();
  int leaked = int(after.tcp_pcbs) - int(before.tcp_pcbs);
  int held = int(g_stack->link().held_frames()) - int(held_before);
  printf("cycles: %d of %d connected; pcbs leaked %d (%u were in time-wait), frames held %d, "
         "segments %u, ref pbufs %u\n",
         connected, count, leaked, time_wait, held, after.tcp_segments, after.ref_pbufs);
  // Every UMEM frame is somewhere we can name: free, lent to a fill ring,
  // received and waiting, held by the stack, or on its way out.
  rings::XskPort* port = g_stack->port();
  uint32_t free = port->free_frames(), fill = port->fill_frames(), rx = port->rx_frames_waiting(),
           mine = port->held_frames(), tx = port->tx_frames_in_flight();
  uint32_t accounted = free + fill + rx + mine + tx;
  int busy_queues = 0;
  for (uint32_t i = 0; i < port->queue_count(); ++i)
    busy_queues += port->counters().queue[i].rx_frames > 0;
  printf("frames accounted %u of %u (free %u, fill rings %u, rx rings %u, held %u, tx %u); "
         "received on %d of %u queues\n",
         accounted, port->frame_count(), free, fill, rx, mine, tx, busy_queues,
         port->queue_count());
  return connected == count && leaked == 0 && held == 0 && after.tcp_segments == 0 &&
                 after.ref_pbufs == 0 && accounted == port->frame_count()
             ? 0
             : 1;
}

int refused() {
  Conn c;
  bool up = connect(c);
  printf("refused: connected %d err %d (%s)\n", up, c.error, c.error == ERR_RST ? "reset" : "?");
  return !up && c.error == ERR_RST ? 0 : 1;
}

int reset() {
  Conn c;
  if (!connect(c)) {
    printf("reset: connect failed (err %d)\n", c.error);
    return 1;
  }
  // The peer resets once it has read our line.
  const char line[] = "reset me\n";
  {
    CoreGuard g;
    c.write(reinterpret_cast<const uint8_t*>(line), sizeof line - 1);
  }
  run_until(5000, [&] { return c.error != ERR_OK; });
  printf("reset: err %d (%s)\n", c.error, c.error == ERR_RST ? "reset" : "?");
  return c.error == ERR_RST ? 0 : 1;
}

int pingpong(int seconds) {
  Conn c;
  if (!connect(c)) {
    printf("pingpong: connect failed (err %d)\n", c.error);
    return 1;
  }
  uint64_t end = mono_ms() + uint64_t(seconds) * 1000, worst = 0;
  int rounds = 0, bad = 0, stalled = 0;
  while (mono_ms() < end && c.error == ERR_OK) {
    std::vector<uint8_t> msg(64 + rounds % 900);
    for (size_t i = 0; i < msg.size(); ++i) msg[i] = uint8_t(rounds + i);
    c.in.clear();
    uint64_t t0 = mono_ms();
    {
      CoreGuard g;
      c.write(msg.data(), msg.size());
    }
    if (!run_until(10000, [&] { return c.in.size() >= msg.size() || c.error != ERR_OK; })) {
      ++stalled;
      break;
    }
    worst = std::max(worst, mono_ms() - t0);
    if (c.in != msg) ++bad;
    ++rounds;
  }
  NeighbourCounters n;
  {
    CoreGuard g;
    n = g_stack->driver().neighbours().counters();
    c.close();
  }
  printf("pingpong: %d rounds, %d bad, %d stalled, slowest %llu ms, err %d, neighbour updates "
         "%llu\n",
         rounds, bad, stalled, (unsigned long long)worst, c.error, (unsigned long long)n.updates);
  return rounds > 0 && !bad && !stalled && c.error == ERR_OK ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGTERM, [](int) { g_stop = 1; });
  signal(SIGINT, [](int) { g_stop = 1; });
  signal(SIGUSR1, [](int) { g_dump = 1; });
  StackConfig config;
  const char* peer = nullptr;
  static option longs[] = {{"iface", 1, 0, 'i'}, {"peer", 1, 0, 'p'}, {"port", 1, 0, 'P'},
                           {"mode", 1, 0, 'm'},  {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "+", longs, nullptr)) != -1) {
    switch (c) {
      case 'i': config.port.iface = optarg; break;
      case 'p': peer = optarg; break;
      case 'P': g_port = uint16_t(atoi(optarg)); break;
      case 'm': config.port.mode = !strcmp(optarg, "skb") ? rings::XdpMode::Skb : rings::XdpMode::Driver; break;
      default: return 2;
    }
  }
  if (!peer || optind >= argc) {
    fprintf(stderr, "usage: see the comment at the top of stack_peer.cc\n");
    return 2;
  }
  g_peer = inet_addr(peer);
  ErrorText why;
  {
    CoreGuard g;
    if (Stack::open(config, &g_stack, &why) < 0) {
      fprintf(stderr, "stack_peer: %s\n", why.c_str());
      return 1;
    }
  }
  printf("stack up on %s (%s)\n", config.port.iface.c_str(), g_stack->port()->mode_string().c_str());
  std::string what = argv[optind];
  int rc = 2;
  if (what == "tcp-echo" && optind + 2 < argc) rc = tcp_echo(argv[optind + 1], argv[optind + 2]);
  else if (what == "udp-echo" && optind + 1 < argc) rc = udp_echo(atoi(argv[optind + 1]));
  else if (what == "cycles" && optind + 1 < argc) rc = cycles(atoi(argv[optind + 1]));
  else if (what == "refused") rc = refused();
  else if (what == "reset") rc = reset();
  else if (what == "pingpong" && optind + 1 < argc) rc = pingpong(atoi(argv[optind + 1]));
  {
    CoreGuard g;
    rings::XskPort* port = g_stack->port();
    port->refresh_kernel_stats();
    const rings::PortCounters& pc = port->counters();
    const NetifCounters& nc = g_stack->driver().counters();
    printf("port: rx %llu tx %llu kernel-dropped %llu rx-ring-full %llu fill-empty %llu; "
           "netif: bad-checksum %llu partial-checksum %llu no-tx-frame %llu held %llu; "
           "neighbours: resolve requests %llu updates %llu\n",
           (unsigned long long)pc.rx_frames, (unsigned long long)pc.tx_frames,
           (unsigned long long)pc.rx_dropped, (unsigned long long)pc.rx_ring_full,
           (unsigned long long)pc.rx_fill_ring_empty, (unsigned long long)nc.rx_bad_checksum,
           (unsigned long long)nc.rx_partial_checksum, (unsigned long long)nc.tx_no_frame,
           (unsigned long long)nc.held,
           (unsigned long long)g_stack->driver().neighbours().counters().resolve_requests,
           (unsigned long long)g_stack->driver().neighbours().counters().updates);
    g_stack.reset();
  }
  return rc;
}
