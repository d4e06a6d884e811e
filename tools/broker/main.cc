// xdpload daemon: the broker for one interface (tools/broker/broker.h).
//
//   xdpload daemon --iface IF [--policy FILE] [--frames N] [--quota N]
//                  [--ring-size N] [--queues LIST] [--xdp-mode auto|driver|skb] [--hw-stamps 0|1]
//                  [--realtime 0|1] [--status FILE]
//
// Runs in the foreground until SIGTERM or SIGINT (conf/xdpload-daemon@.service
// runs it as a service). Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF,
// CAP_IPC_LOCK); the programs it serves need nothing.
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "rings/queue_list.h"
#include "rings/ring.h"
#include "tools/broker/broker.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

void usage(FILE* out) {
  fprintf(out,
          "usage: xdpload daemon --iface IF [--policy FILE] [--frames N] [--quota N]\n"
          "                      [--ring-size N] [--queues LIST] [--xdp-mode auto|driver|skb] [--hw-stamps 0|1]\n"
          "                      [--realtime 0|1] [--status FILE]\n"
          "\n"
          "Serves the interface to several programs under xdpload, of any user the policy\n"
          "allows (without --policy: root alone). Foreground; stops on SIGTERM/SIGINT.\n"
          "  --policy FILE   who may accelerate which ports (conf/broker-policy.example)\n"
          "  --frames N      UMEM frames for the interface (default 16384)\n"
          "  --quota N       frames one program may hold (default: a quarter of\n"
          "                  what the fill rings leave, 2048 of the default 16384)\n"
          "  --ring-size N   each program's rx and tx rings (default 2048)\n"
          "  --queues LIST   receive queues to serve (default: all)\n"
          "  --hw-stamps 0|1 hardware receive stamps for the programs' sockets that\n"
          "                  ask for them (driver-mode XDP; default 0)\n"
          "  --realtime 0|1  run at SCHED_FIFO priority 1 when woken (default 1)\n"
          "  --status FILE   where xdpload-stat reads the broker's state\n"
          "                  (default /run/xdpload/broker-PID.status)\n");
}

bool number(const char* s, uint32_t lo, uint32_t hi, uint32_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || !end || *end || end == s || v < lo || v > hi) return false;
  *out = uint32_t(v);
  return true;
}

// A broker killed by SIGKILL leaves its status file: the next one removes
// the files of brokers that are gone.
void remove_stale_status_files(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    char tail = 0;
    if (sscanf(e->d_name, "broker-%d.statu%c", &pid, &tail) != 2 || tail != 's' || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace xdpload;
  broker::BrokerConfig c;
  bool status_given = false;
  bool realtime = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "xdpload daemon: %s needs a value (or is unknown)\n", a.c_str());
      usage(stderr);
      return 2;
    }
    const char* v = argv[++i];
    bool ok = true;
    if (a == "--iface") c.iface = v;
    else if (a == "--policy") c.policy_path = v;
    else if (a == "--frames") ok = number(v, 256, 1u << 20, &c.frames);
    else if (a == "--quota") ok = number(v, 1, 1u << 20, &c.quota);
    else if (a == "--ring-size") ok = number(v, 64, 32768, &c.ring_size) && rings::power_of_two(c.ring_size);
    else if (a == "--status") c.status_path = v, status_given = true;
    else if (a == "--realtime") {
      std::string r = v;
      ok = r == "0" || r == "1";
      realtime = r == "1";
    }
    else if (a == "--queues") {
      ok = rings::parse_queue_list(v, &c.queues);
    } else if (a == "--hw-stamps") {
      std::string h = v;
      ok = h == "0" || h == "1";
      c.hw_stamps = h == "1";
    } else if (a == "--xdp-mode") {
      std::string m = v;
      ok = m == "auto" || m == "driver" || m == "skb";
      c.mode = m == "driver" ? rings::XdpMode::Driver
               : m == "skb"  ? rings::XdpMode::Skb
                             : rings::XdpMode::Auto;
    } else {
      fprintf(stderr, "xdpload daemon: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
    if (!ok) {
      fprintf(stderr, "xdpload daemon: bad value '%s' for %s\n", v, a.c_str());
      return 2;
    }
  }
  if (c.iface.empty()) {
    fprintf(stderr, "xdpload daemon: --iface is required\n");
    usage(stderr);
    return 2;
  }
  if (!status_given) {
    mkdir("/run/xdpload", 0755);
    c.status_path = "/run/xdpload/broker-" + std::to_string(getpid()) + ".status";
    remove_stale_status_files("/run/xdpload");
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  broker::Broker b(c);
  std::string why;
  if (!b.start(&why)) {
    fprintf(stderr, "xdpload daemon: %s\n", why.c_str());
    return 1;
  }
  // The fill rings last a few milliseconds at full rate: when a program
  // wakes the broker, it must run soon, whatever else the host is doing.
  // SCHED_FIFO at the lowest priority: above every ordinary task, below
  // anything a latency setup pinned higher; it sleeps in poll() between
  // wake-ups (a few microseconds each), and the kernel's real-time
  // throttling bounds it regardless. The closer thread (started in
  // start()) keeps the ordinary policy.
  if (realtime) {
    sched_param sp{};
    sp.sched_priority = 1;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      fprintf(stderr, "xdpload daemon: not real-time (%s): under load a fill ring may run dry "
              "before the broker runs\n", strerror(errno));
  }
  b.run(&g_stop);
  return 0;
}
