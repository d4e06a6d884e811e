#include "shim/runtime/runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rings/private_fd.h"
#include "shim/ext/thread_spin.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/runtime/lazy_libs.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/socket/socket.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/tcp_socket.h"
#include "shim/socket/user_memory.h"
#include "shim/clock/tsc_clock.h"
#include "family/shared_globals.h"

extern char** environ;

namespace xdpload::shim {

using stack::CoreGuard;
using stack::CoreLock;

// Set while the library itself creates sockets (stack start-up): socket()
// passes those straight through.
__attribute__((tls_model("initial-exec"))) thread_local int t_inside = 0;

int64_t mono_ns() {
  timespec ts;
  // The real clock: ours may be the TSC one, which depends on this runtime.
  libc::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

thread_local bool Runtime::t_defer_kicks = false;

Runtime& Runtime::get() {
  // Never destroyed: the progress thread may run while the program exits.
  static Runtime* r = new Runtime();
  return *r;
}

void Runtime::disable(const char* why, bool at_first_socket) {
  enabled_ = false;
  if (config_.strict) {
    log_at(kLogError, "fatal: %s (XDPLOAD_STRICT=1)", why);
    exit(EXIT_FAILURE);
  }
  std::string line = std::string("acceleration off, running on the kernel path: ") + why;
  if (at_first_socket) defer_line(line);
  else log_at(kLogError, "%s", line.c_str());
}

void Runtime::defer_line(const std::string& line) {
  deferred_.push_back(line);
  deferred_pending_.store(true, std::memory_order_release);
}

void Runtime::say_deferred() {
  if (!deferred_pending_.load(std::memory_order_acquire)) return;
  if (!deferred_pending_.exchange(false)) return;
  for (const std::string& line : deferred_) log_at(kLogError, "%s", line.c_str());
}

void Runtime::init() {
  pid_ = getpid();
  fds_.init();
  std::vector<std::string> warnings;
  ErrorText why;
  int rc = parse_config(environ, &config_, &warnings, &why);
  set_log_level(int(config_.log));
  if (rc < 0) config_.strict = getenv("XDPLOAD_STRICT") && !strcmp(getenv("XDPLOAD_STRICT"), "1");
  // What is wrong with the configuration is said once, by the process whose
  // socket could have been accelerated (say_deferred), not by every process
  // that loads the library: a shell, a pyenv shim, each compiler of a build
  // run under the wrapper. Strict mode says it and stops at once.
  for (const std::string& w : warnings) {
    if (config_.strict) log_at(kLogError, "%s", w.c_str());
    else defer_line(w);
  }
  start_clock(rc == 0);
  // Before main(): the threads the program creates inherit the scheduling
  // and memory policy.
  if (rc == 0) {
    std::vector<std::string> refused;
    host_.apply(config_, config_.strict, &refused);
    for (const std::string& line : refused) defer_line(line);
  }
  if (rc < 0) {
    // Without a valid configuration there is no interface to accelerate.
    disable(why.c_str(), /*at_first_socket=*/true);
    return;
  }
  if (config_.iface.empty()) return;  // not asked to do anything
  ++t_inside;
  rc = stack::read_interface_info(config_.iface, &iface_, &why);
  if (rc == 0 && !config_.rules.empty()) rc = rules_.load(config_.rules.c_str(), &why);
  --t_inside;
  if (rc < 0) {
    disable(why.c_str(), /*at_first_socket=*/true);
    return;
  }
  enabled_ = true;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  // Strict mode fails at start-up, not at the first socket.
  if (config_.strict) ensure_stack();
}

void Runtime::start_clock(bool config_ok) {
  // The clock is served whenever the library is loaded, accelerated
  // interface or not.
  std::string why;
  enum { kTsc = 0, kTscFast = 1, kVdso = 2 };
  bool want = config_ok && config_.clock != kVdso;
  // XL_TEST_CLOCKSOURCE: a test seam naming a file to read instead of the
  // kernel's clocksource, so that tests can show an untrusted TSC.
  const char* source = getenv("XL_TEST_CLOCKSOURCE");
  if (!source) source = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
  bool trusted = want && TscClock::tsc_trusted("/proc/cpuinfo", source, &why);
  served_clock().init(trusted, libc::clock_gettime, config_.clock != kTscFast);
  if (trusted) pthread_atfork(nullptr, nullptr, [] { served_clock().after_fork_in_child(); });
  if (trusted) {
    XLOG(kLogInfo, "clock: clock_gettime and gettimeofday served from the TSC%s",
         config_.clock == kTscFast ? " (tsc-fast: unfenced reads)" : "");
  } else {
    XLOG(kLogInfo, "clock: the real clock_gettime (%s)",
         !config_ok ? "configuration error" : config_.clock == kVdso ? "XDPLOAD_CLOCK=vdso" : why.c_str());
  }
}

void Runtime::before_privilege_drop(uid_t uid) {
  if (!enabled() || geteuid() != 0 || uid == 0 || uid == uid_t(-1)) return;
  XLOG(kLogDecision, "starting the stack before the process gives up root");
  // Without the progress thread: a thread of ours alive while the program
  // changes its credentials breaks glibc's set*id broadcast when the
  // program has changed its own thread's capabilities first (setpriv:
  // "apply capabilities"... abort in setxid_error). It starts at the first
  // socket that needs the stack.
  if (start_stack_now(/*with_progress=*/false)) stats_.give_to(uid);
}

void Runtime::report_clock() {
  if (forked_child_ || log_level() < kLogInfo || !served_clock().enabled()) return;
  log_at(kLogInfo, "exit: clock served from the TSC, %llu anchors to the real clock",
         (unsigned long long)served_clock().anchors());
}

bool Runtime::ensure_stack() {
  int st = start_state_.load(std::memory_order_acquire);
  if (st != 0 && !progress_pending_.load(std::memory_order_acquire)) return st > 0;
  return start_stack_now(/*with_progress=*/true);
}

bool Runtime::start_stack_now(bool with_progress) {
  std::lock_guard<std::mutex> g(start_mutex_);
  int st = start_state_.load(std::memory_order_relaxed);
  if (st == 0) {
    bool ok = enabled() && start_stack();
    // Test seam: this process (not the children it forks) dies inside a
    // receive burst (tests/shim/shim-fork-die-holding-lock.sh).
    if (const char* v = getenv("XL_TEST_DIE_HOLDING_LOCK"); ok && v && atol(v) == -2)
      stack::LinkNetif::set_test_die_in_burst(true);
    start_state_.store(ok ? 1 : -1, std::memory_order_release);
    if (ok) progress_pending_.store(true, std::memory_order_release);
    st = ok ? 1 : -1;
  }
  if (st > 0 && with_progress && progress_pending_.load(std::memory_order_relaxed)) {
    // The statistics segment too (a process that gives up root and then
    // execs, setpriv or runuser, never gets here and makes none).
    {
      CoreGuard g;
      if (stats_.start()) {
        counters_ = &stats_.segment()->shim;
        *counters_ = own_counters_;
      }
    }
    progress_ = std::thread([this] { progress_loop(false); });
    progress_.detach();
    // The progress thread is the one that finishes the connections when a
    // signal with the default action ends the process.
    catch_fatal_signals(progress_wake_fd_);
    // A bad pointer given to a socket call is EFAULT from here on, as on
    // Linux, not a SIGSEGV inside the library (shim/socket/user_memory.h).
    catch_user_faults();
    watch_progress_hold(&progress_hold_);
    progress_pending_.store(false, std::memory_order_release);
  }
  return st > 0;
}

bool Runtime::start_stack() {
  stack::StackConfig sc;
  sc.port.iface = config_.iface;
  sc.port.queues = config_.queue_list;
  // Test seam: a kernel that cannot share the UMEM between queues.
  sc.port.test_refuse_shared_umem = getenv("XL_TEST_REFUSE_SHARED_UMEM") != nullptr;
  sc.port.umem.frame_count = uint32_t(config_.frames);
  sc.port.umem.frame_size = uint32_t(config_.frame_size);
  sc.port.umem.numa_node = host_.umem_node();
  sc.port.ring_size = uint32_t(config_.ring_size);
  sc.port.allow_zero_copy = config_.zero_copy;
  sc.port.hw_stamps = config_.hw_stamps;
  sc.pcap_path = config_.pcap;
  sc.port.mode = config_.xdp_mode == 1   ? rings::XdpMode::Driver
                 : config_.xdp_mode == 2 ? rings::XdpMode::Skb
                                         : rings::XdpMode::Auto;
  ErrorText why;
  int rc;
  std::string lib_error;
  ++t_inside;
  bool libs = load_lazy_libs(&lib_error);
  --t_inside;
  if (!libs) {
    disable(("cannot load libbpf/libnuma: " + lib_error).c_str());
    return false;
  }
  ++t_inside;
  {
    CoreGuard g;
    // From here on, what the runtime shares with the children this process
    // forks is in the family arena (shim/runtime/runtime_family.cc).
    auto* shared = new RuntimeShared();
    shared->members.push_back(process_id());
    family::set_root(family::Root::Shim, shared);
    sh_ = shared;
    // A broker running for the interface serves every program on it (the
    // one way for several programs, or a user without CAP_NET_RAW); with
    // none, this process owns the interface alone.
    rings::BrokerGrant grant;
    rc = rings::broker_connect(config_.iface.c_str(), program_invocation_short_name, &grant, &why);
    if (rc == 0) sc.broker = &grant;
    // Test seam: a program that leaks frames (tests/shim/shim-broker-quota.sh).
    sc.test_broker_hoard_until = getenv("XL_TEST_BROKER_HOARD_UNTIL");
    if (rc == 0 || rc == -ENOENT) rc = stack::Stack::open(sc, &stack_, &why);
    grant.close_unused();
  }
  if (rc == 0) {
    progress_wake_fd_ = rings::to_private_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    nwait_ = stack_->wait_fds(wait_fds_, int(rings::kMaxQueues));
    wait_fds_port_ = stack_->port_generation();
    if (stack_->port()->brokered()) broker_watch_fd_ = stack_->port()->broker_conn();
    // Receive timestamps: the served clock, as the program's own reads.
    stack::CoreLock::on_holder_died(died_holding_lock);
    stack_->driver().set_rx_clock([](timespec* ts) {
      if (!served_clock().now(CLOCK_REALTIME, ts)) libc::clock_gettime(CLOCK_REALTIME, ts);
    });
  }
  --t_inside;
  if (rc < 0) {
    stack_.reset();
    disable(why.c_str());
    return false;
  }
  warn_unserved_queues();
  if (config_.hw_stamps && !stack_->driver().rx_hw_stamps()) {
    const char* why = stack_->port()->brokered()
                          ? "the broker does not take them (xdpload daemon --hw-stamps 1)"
                          : stack_->port()->steering().hw_stamp_refusal();
    log_at(kLogError, "no hardware receive stamps on %s: %s", config_.iface.c_str(),
           *why ? why : "unknown");
  }
  read_tcp_sysctls();
  if (!family::lwip_globals_shared())
    XLOG(kLogDecision, "forked children will not share the stack (lwIP's globals are private)");

  if (log_level() >= kLogInfo) {
    rings::XskPort* p = stack_->port();
    std::string opts;
    for (const std::string& o : config_.non_default) opts += " " + o;
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &iface_.addr, addr, sizeof addr);
    log_at(kLogInfo, "accelerating %s (%s) queue%s %s, XDP %s%s%s%s, %u frames of %u bytes%s%s",
           iface_.name.c_str(), addr, p->queue_count() == 1 ? "" : "s", p->queue_list().c_str(),
           p->mode_string().c_str(), p->multi_buffer() ? " multi-buffer" : "",
           p->rx_meta_key() ? " with hardware receive stamps" : "",
           p->tx_checksum_offload() ? " checksum-offload" : "", p->frame_count(),
           p->umem().frame_size(),
           opts.empty() ? "" : ", options:", opts.c_str());
  }
  size_t umem_len = 0;
  if (const uint8_t* umem = stack_->link().frame_memory(&umem_len))
    XLOG(kLogDebug, "frames at %p-%p", static_cast<const void*>(umem),
         static_cast<const void*>(umem + umem_len));
  return true;
}

namespace {
// The first line of a /proc/sys file, without its newline; "" if unreadable.
std::string read_sysctl(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  return n > 0 ? std::string(buf, size_t(n)) : "";
}
}  // namespace

// What the network namespace sets for TCP, that the stack follows: the
// default congestion control, and how many connections may be in TIME-WAIT.
void Runtime::read_tcp_sysctls() {
  std::string cc = read_sysctl("/proc/sys/net/ipv4/tcp_congestion_control");
  if (!cc.empty() && cc.size() < sizeof default_cc_) memcpy(default_cc_, cc.c_str(), cc.size() + 1);
  std::string tw = read_sysctl("/proc/sys/net/ipv4/tcp_max_tw_buckets");
  char* end = nullptr;
  unsigned long v = tw.empty() ? 0 : strtoul(tw.c_str(), &end, 10);
  if (end && *end == 0) {
    CoreGuard g;
    stack::set_tcp_timewait_limit(uint32_t(std::min<unsigned long>(v, UINT32_MAX)));
  }
}

void Runtime::warn_unserved_queues() {
  // Said at the default log level: a flow the NIC hashes to a queue without
  // a socket reaches the kernel, which knows nothing of it.
  rings::XskPort* p = stack_->port();
  if (!p->degraded().empty()) {
    log_at(kLogError, "%s: flows the NIC hashes to other queues will not reach xdpload",
           p->degraded().c_str());
    return;
  }
  uint32_t have = p->interface_queues();
  if (have > p->queue_count())
    log_at(kLogError,
           "serving queue%s %s of the %u receive queues of %s (XDPLOAD_QUEUES=%s): flows the "
           "NIC hashes to the others will not reach xdpload (their connections fail)",
           p->queue_count() == 1 ? "" : "s", p->queue_list().c_str(), have,
           iface_.name.c_str(), config_.queues.c_str());
}

// ---- decisions ----

bool Runtime::rules_allow(Role role, uint32_t ip, uint16_t port) {
  if (rules_.size() == 0) return true;
  int line = 0;
  // A wildcard bind is matched as the interface's address.
  if (ip == INADDR_ANY && (role == Role::TcpServer || role == Role::UdpReceiver)) ip = iface_.addr;
  if (rules_.match(role, ip, port, &line) != Rules::Verdict::Kernel) return true;
  XLOG(kLogDecision, "%s %s:%u on the kernel path (%s line %d)", role_name(role),
       inet_ntoa(in_addr{ip}), port, config_.rules.c_str(), line);
  return false;
}

bool Runtime::accelerate_destination(uint32_t ip, uint16_t port, Role role) {
  if (!enabled() && !reattach_broker()) return false;
  if (port == 53 && config_.dns_kernel) return false;
  if (!rules_allow(role, ip, port)) return false;
  uint32_t h = ntohl(ip);
  if (ip == 0 || (h >> 24) == 127 || ip == iface_.addr || ip == INADDR_BROADCAST) return false;
  // Every UDP send asks: the stack's coarse millisecond clock (a few ns,
  // not twenty) is fine for a two-second expiry.
  uint64_t now = stack::now_ms();
  std::lock_guard<std::mutex> g(route_mutex_);
  auto it = route_cache_.find(ip);
  if (it != route_cache_.end() && now - it->second.at_ms < kRouteRecheckMs)
    return it->second.accelerate;
  if (!routes_open_) {
    ErrorText why;
    ++t_inside;
    routes_open_ = routes_.open(&why) == 0;
    --t_inside;
    if (!routes_open_) return false;
  }
  stack::Route r;
  bool accel = routes_.lookup(ip, &r) == 0 && r.oif == iface_.ifindex &&
               (r.type == RTN_UNICAST || r.type == RTN_MULTICAST);
  route_cache_[ip] = RouteDecision{accel, now};
  XLOG(kLogDecision, "%s:%u %s", inet_ntoa(in_addr{ip}), port,
       accel ? "is reached through the accelerated interface" : "stays on the kernel path");
  return accel;
}

bool Runtime::accelerate_bind(uint32_t ip) {
  if (!enabled() && !reattach_broker()) return false;
  return ip == INADDR_ANY || ip == iface_.addr || IN_MULTICAST(ntohl(ip));
}

bool Runtime::accelerate_local(uint32_t ip, uint16_t port, Role role) {
  return accelerate_bind(ip) && rules_allow(role, ip, port);
}

// ---- ports ----

int Runtime::port_acquire(PortKey k, int backing_fd) {
  PortUse& u = sh_->ports[k];
  if (u.refs++ == 0) {
    ErrorText why;
    ++t_inside;
    int rc = stack_->steer(k.proto, k.port, backing_fd, &why);
    --t_inside;
    if (rc < 0) {
      sh_->ports.erase(k);
      log_at(kLogError, "%s port %u stays on the kernel path: %s",
             k.proto == IPPROTO_TCP ? "tcp" : "udp", k.port, why.c_str());
      return -EACCES;
    }
  }
  return 0;
}

void Runtime::share_port_with_kernel(uint16_t port) {
  auto it = sh_->ports.find(PortKey{IPPROTO_TCP, port});
  // (Not when the broker is gone: nothing steers any more.)
  if (it == sh_->ports.end() || it->second.shared || !stack_ ||
      broker_lost_.load(std::memory_order_acquire))
    return;
  ErrorText why;
  if (TcpSocket::share_port_with_kernel(port, &why)) {
    it->second.shared = true;
    XLOG(kLogDecision, "tcp port %u: the kernel takes its new connections, the stack keeps its own",
         unsigned(port));
    return;
  }
  static bool said = false;
  // (Only the listener's own use: nothing to keep, nothing refused.)
  if (!said && it->second.refs > 1)
    log_at(kLogError,
           "tcp port %u: its listener is the kernel's now, but until the stack's connections on "
           "it end, new connections to it are refused: %s",
           unsigned(port), why.c_str());
  said = said || it->second.refs > 1;
}

void Runtime::port_release(PortKey k) {
  auto it = sh_->ports.find(k);
  if (it == sh_->ports.end()) return;
  if (--it->second.refs > 0) return;
  if (stack_) stack_->unsteer(k.proto, k.port);
  if (stack_ && it->second.shared) stack_->share_port(k.proto, k.port, false);
  // The parked descriptor's number means something only in the process
  // that parked it: another process of the family leaves it (its copy, if
  // it has one, goes when it exits).
  if (it->second.parked_fd >= 0 && it->second.parked_pid == process_id())
    rings::close_private_fd(it->second.parked_fd);  // (closes a low one too)
  sh_->ports.erase(it);
}

namespace {
// Parked descriptors (one per port a closed connection still holds, for as
// long as TIME-WAIT lasts) leave this many private slots for the stack's own.
constexpr int kPrivateFdsKeptFree = rings::kMaxPrivateFds / 4;
}  // namespace

void Runtime::port_park(PortKey k, int fd) {
  auto it = sh_->ports.find(k);
  if (it == sh_->ports.end() || it->second.parked_fd >= 0) return;
  // Away from the program's numbers, which the kernel gives lowest first:
  // in the private range while it has room (hidden from the program's
  // close_range, and below 4096, so the kernel's descriptor table, which
  // fork() copies, stays small), else halfway up to it. Not at a fixed high
  // number: beyond a soft limit of 1024 (systemd's, a login shell's)
  // F_DUPFD fails there, and the lowest free number would shift the
  // program's next descriptor; and growing the table of a process with a
  // second thread (ours) waits for an RCU grace period, 10 ms here.
  int parked = rings::dup_to_private(fd, kPrivateFdsKeptFree);
  if (parked < 0) {
    rlimit rl{};
    long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? long(rl.rlim_cur) : 1024;
    parked = libc::fcntl(fd, F_DUPFD_CLOEXEC, int(std::min(limit, 4096L) / 2));
  }
  if (parked < 0) parked = libc::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  it->second.parked_fd = parked;
  it->second.parked_pid = process_id();
}

void Runtime::track(Socket* s) {
  if (s->tracked) return;
  s->tracked = true;
  s->live_prev = nullptr;
  s->live_next = sh_->live;
  if (sh_->live) sh_->live->live_prev = s;
  sh_->live = s;
}

void Runtime::untrack(Socket* s) {
  if (!s->tracked) return;
  s->tracked = false;
  if (s->live_prev) s->live_prev->live_next = s->live_next;
  else sh_->live = s->live_next;
  if (s->live_next) s->live_next->live_prev = s->live_prev;
}

bool lock_at_exit() {
  for (int i = 0; i < 100; ++i) {
    if (CoreLock::try_lock()) return true;
    usleep(1000);
  }
  return false;
}

namespace {

// How long finish_connections() waits for a peer's FIN once ours is
// acknowledged: a peer that closes when it reads end-of-file answers within
// a round trip; one that keeps its half open is not waited for.
constexpr int64_t kPeerFinGraceNs = 50'000'000;

}  // namespace

void Runtime::finish_connections() {
  // A vfork child that calls exit() (instead of _exit) runs this in the
  // parent's memory: the connections are the parent's.
  if (forked_child_ || start_state_.load() <= 0 || vfork_child()) return;
  // (exit() is no cancellation point: its waits here are none either.)
  stack::NoCancellation exiting;
  if (!lock_at_exit()) return;
  if (config_.exit_linger_ms == 0) {
    kick();  // datagrams waiting for a batch to fill
    CoreLock::unlock();
    return;
  }
  // exit() closes the program's descriptors: TCP sockets still open send
  // their FIN now (or a reset, with unread data), as the kernel's would.
  // Listeners last: closing one deletes the connections still queued on it.
  std::vector<Socket*> open, listeners;
  for (Socket* s = sh_->live; s; s = s->live_next) {
    if (s->kind != Socket::Kind::Tcp) continue;
    bool listening = static_cast<TcpSocket*>(s)->state == TcpSocket::State::Listening;
    (listening ? listeners : open).push_back(s);
  }
  for (Socket* s : open) s->release();
  for (Socket* s : listeners) s->release();
  kick();
  // The kernel goes on delivering a closed socket's data after its process
  // is gone; lwIP ends with this one, so it finishes here, for as long as
  // the peers keep acknowledging.
  const int64_t start = mono_ns();
  const int64_t linger_ns = config_.exit_linger_ms * 1'000'000;
  int64_t last_progress = start;
  stack::TcpUndelivered left = stack::tcp_undelivered();
  const uint32_t had = left.connections;
  for (;;) {
    int64_t now = mono_ns();
    bool waiting_fin = left.awaiting_fin && now - start < kPeerFinGraceNs;
    if ((!left.connections && !waiting_fin) || now - last_progress > linger_ns) break;
    stack_->poll();
    CoreLock::unlock();
    pollfd p[rings::kMaxQueues];
    for (int i = 0; i < nwait_; ++i) p[i] = pollfd{wait_fds_[i], POLLIN, 0};
    libc::poll(p, nfds_t(nwait_), 1);
    CoreLock::lock();
    stack::TcpUndelivered next = stack::tcp_undelivered();
    if (next.connections != left.connections || next.bytes != left.bytes ||
        next.awaiting_fin != left.awaiting_fin)
      last_progress = mono_ns();
    left = next;
  }
  if (left.connections) {
    log_at(kLogError,
           "exit: %u TCP connection(s) still had %llu byte(s) unacknowledged after %lld ms without "
           "progress (XDPLOAD_EXIT_LINGER_MS); the peer will see them reset",
           left.connections, (unsigned long long)left.bytes,
           (long long)config_.exit_linger_ms);
  } else if (had) {
    XLOG(kLogInfo, "exit: %u TCP connection(s) delivered and closed in %lld us", had,
         (long long)((mono_ns() - start) / 1000));
  }
  CoreLock::unlock();
}

void Runtime::shutdown_stats() {
  if (forked_child_ || vfork_child()) return;
  if (start_state_.load() > 0) {
    if (lock_at_exit()) {
      if (stack::PcapWriter* w = stack_->capture()) {
        w->flush();
        XLOG(kLogInfo, "exit: %llu frames written to %s%s", (unsigned long long)w->records(),
             config_.pcap.c_str(), w->failed() ? " (then a write failed; capture cut short)" : "");
      }
      // The port's totals are the family's: said by its last process.
      if (log_level() >= kLogInfo && !others_remain_) {
        const rings::PortCounters& p = stack_->port()->counters();
        log_at(kLogInfo,
               "exit: rx %llu frames (%llu bytes), tx %llu frames (%llu bytes), %llu tcp and %llu "
               "udp sockets accelerated, %llu left with the kernel",
               (unsigned long long)p.rx_frames, (unsigned long long)p.rx_bytes,
               (unsigned long long)p.tx_frames, (unsigned long long)p.tx_bytes,
               (unsigned long long)counters_->accelerated_tcp,
               (unsigned long long)counters_->accelerated_udp,
               (unsigned long long)counters_->kernel_sockets);
        const stack::NetifCounters& nc = stack_->driver().counters();
        if (nc.tx_copy_bytes || nc.tx_zero_copy_bytes)
          log_at(kLogInfo,
                 "exit: tx data: %llu bytes of TCP data sent from the frames they were written "
                 "or read into, %llu bytes of packets copied into frames",
                 (unsigned long long)nc.tx_zero_copy_bytes, (unsigned long long)nc.tx_copy_bytes);
        if (nc.tx_checksum_offload)
          log_at(kLogInfo, "exit: %llu TCP checksums completed by the kernel (transmit metadata)",
                 (unsigned long long)nc.tx_checksum_offload);
        const ShimCounters& c = *counters_;
        if (c.file_reads_uring || c.file_reads_pread || c.file_bytes_copied)
          log_at(kLogInfo,
                 "exit: sendfile and splice: %llu bytes read into frames (%llu reads by io_uring, "
                 "%llu by pread, %llu waited for the disk without the lock), %llu bytes through a "
                 "buffer; %llu bytes sent from the frames they were read into",
                 (unsigned long long)c.file_bytes_read, (unsigned long long)c.file_reads_uring,
                 (unsigned long long)c.file_reads_pread, (unsigned long long)c.file_reads_waited,
                 (unsigned long long)c.file_bytes_copied,
                 (unsigned long long)stack_->driver().counters().tx_zero_copy_bytes);
        if (c.zc_recv_bytes || c.zc_send_bytes || c.zc_send_copied)
          log_at(kLogInfo,
                 "exit: zero-copy calls: %llu bytes received in place (%llu received pbufs "
                 "copied out of frames), %llu bytes sent from lent frames (%llu copied); %llu "
                 "bytes of TCP data left the frames they were written in",
                 (unsigned long long)c.zc_recv_bytes, (unsigned long long)c.rx_copies,
                 (unsigned long long)c.zc_send_bytes, (unsigned long long)c.zc_send_copied,
                 (unsigned long long)stack_->driver().counters().tx_zero_copy_bytes);
        if (p.stale_tx_kicks)
          log_at(kLogInfo,
                 "exit: %llu kicks of a transmit ring whose frames had waited (left by a process "
                 "gone before its kick)",
                 (unsigned long long)p.stale_tx_kicks);
        // What is still allocated: a leak shows here (tests count it).
        stack::LwipUsage u = stack::lwip_usage();
        log_at(kLogInfo,
               "exit: stack holds %u frames, %u TCP PCBs (%u in TIME_WAIT), %u listening, %u UDP "
               "PCBs, %llu bytes of family memory",
               stack_->link().held_frames(), u.tcp_pcbs, u.tcp_time_wait, u.tcp_listen_pcbs,
               u.udp_pcbs, (unsigned long long)family::bytes_in_use());
        stack::TcpEvents e = stack::tcp_events();
        if (e.recoveries || e.rexmit_rto || e.tlp_probes || e.tw_syn_accepted)
          log_at(kLogInfo,
                 "exit: tcp %llu fast recoveries (%llu segments sent again), %llu timeouts, %llu "
                 "tail probes, %llu lost by time (%llu retransmissions), %llu undone as needless, "
                 "%llu SACK blocks and %llu D-SACKs received, %llu SYNs accepted in TIME-WAIT",
                 (unsigned long long)e.recoveries, (unsigned long long)e.rexmit_recovery,
                 (unsigned long long)e.rexmit_rto, (unsigned long long)e.tlp_probes,
                 (unsigned long long)e.rack_lost, (unsigned long long)e.lost_rexmit,
                 (unsigned long long)e.undone, (unsigned long long)e.sack_blocks,
                 (unsigned long long)e.dsacks, (unsigned long long)e.tw_syn_accepted);
      }
      CoreLock::unlock();
    }
  }
  // (The statistics segment goes with the family's last process: the
  // kernel removes it when that one detaches it, at its end.)
}

bool Runtime::frames_short() const {
  const stack::Link& l = const_cast<stack::Stack&>(*stack_).link();
  // Half held, or an eighth left to take: frames lent to the fill rings
  // are neither (with 4 queues, half the UMEM), so "half held" alone could
  // let sends empty the pool before it said so.
  return l.held_frames() * 2 > l.total_frames() || l.spare_frames() * 8 < l.total_frames();
}

void Runtime::maybe_delete(Socket* s) {
  if (s->fd_refs == 0 && s->holds == 0) delete s;
}

// ---- waiting ----

int Runtime::block_impl(WaitSpec& spec, bool (*ready)(void*), void* ctx) {
  // The sockets waited on stay allocated for the whole wait, spinning or
  // asleep: another thread may close their descriptors meanwhile (between
  // two turns of the spin the lock is free), and a socket whose last
  // descriptor closes is freed unless some call holds it. Every return
  // goes through done_waiting(): it lets go of them and frees those whose
  // descriptors are gone, returning -EBADF then (the caller must not touch
  // them again).
  for (int i = 0; i < spec.nsockets; ++i) ++spec.sockets[i]->holds;
  auto done_waiting = [&](int rc) { return let_go_of_waited(spec) ? -EBADF : rc; };
  // A call waiting on one socket goes on changing it after the wait: the
  // lock taken again names it again (unlock cleared it), for the next
  // holder should this process die holding the lock (died_holding_lock()).
  auto relock = [&] {
    CoreLock::lock();
    if (spec.nsockets == 1 && spec.sockets[0]->fd_refs) family::core_subject() = spec.sockets[0];
  };
  auto closed_meanwhile = [&] {
    for (int i = 0; i < spec.nsockets; ++i)
      if (spec.sockets[i]->fd_refs == 0) return true;
    return false;
  };
  // How long to poll before sleeping: the process's XDPLOAD_SPIN_USEC, or
  // what this thread chose for this kind of wait (xdpload_thread_set_spin).
  int64_t spin = thread_spin_ns(SpinKind(spec.spin_kind), spin_ns());
  // A call with its own signal mask (ppoll, pselect, epoll_pwait) waits
  // for signals under that mask, which only the sleep applies: it spins
  // for the process's time at most, never without limit.
  if (spec.mask && spin == INT64_MAX) spin = spin_ns();
  int64_t spin_end = spin == INT64_MAX ? INT64_MAX : spin ? mono_ns() + spin : 0;
  int64_t next_kernel_look = 0;
  int64_t next_cancel_look = 0;
  // Handlers run on this thread since the call began (or since the last
  // restart it decided): one ends the wait, spinning or asleep, as a signal
  // pending at a kernel sleep does.
  SignalMark mark = spec.call_mark ? *spec.call_mark : signal_mark();
  // (A restart decided here counts anew, for the caller's next wait too.)
  auto restarted = [&](SignalMark m) {
    mark = m;
    if (spec.call_mark) *spec.call_mark = m;
  };
  ThreadWaiter* me = ThreadWaiter::current();
  for (;;) {
    poll_stack();
    if (ready(ctx)) return done_waiting(0);
    if (closed_meanwhile()) return done_waiting(-EBADF);
    int64_t now = mono_ns();
    if (spec.deadline_ns >= 0 && now >= spec.deadline_ns) return done_waiting(-EAGAIN);
    if (now < spin_end) {
      // A handler that ran meanwhile ends the wait as it would end a sleep
      // (EINTR, unless every one was SA_RESTART and the call restarts).
      SignalMark m = signal_mark();
      if (m.caught != mark.caught) {
        if (!spec.restartable || !restart_after_signal(mark)) return done_waiting(-EINTR);
        restarted(m);
      }
      // Spinning: keep polling the stack, let other threads in between.
      // The kernel descriptors (local senders, errors) are the rare path: a
      // poll() system call costs more than many looks at the rings, so they
      // are looked at every kKernelLookNs.
      if (spec.nkernel && now >= next_kernel_look) {
        next_kernel_look = now + kKernelLookNs;
        if (libc::poll(spec.kernel, spec.nkernel, 0) > 0 && ready(ctx)) return done_waiting(0);
      }
      CoreLock::unlock();
      // A thread the program cancels while it spins ends here (the lock
      // held with cancellation off, the spin has no cancellation point of
      // its own, and a thread may spin without end): looked at every
      // millisecond.
      if (now >= next_cancel_look) {
        next_cancel_look = now + kCancelLookNs;
        spin_cancellation_point(&spec);
      }
      __builtin_ia32_pause();
      relock();
      continue;
    }

    // Sleep. Register first, then look once more: a change after the look
    // finds us registered and makes our eventfd readable. A handler that
    // has run since `mark` ends the sleep (EINTR, or a restart), as a
    // signal does a kernel sleep: one that runs just before ppoll() makes
    // the eventfd readable (t_sleeping_waiter), and each is seen by the
    // count. (Before, a handler that ran while the call was between two
    // sleeps, or just before one, was never noticed: the sleep went on,
    // for ever if nothing else came.)
    SleepRegistration reg;
    reg.leave = leave_interrupted_sleep;
    reg.rt = this;
    reg.spec = &spec;
    reg.me = me;
    reg.watching = false;
    reg.undo = t_cancel_undo;
    rearm_leave_undos(reg.undo);  // (a sleep before this one left by a handler)
    for (int i = 0; i < spec.nsockets; ++i) spec.sockets[i]->waiters.add(me, spec.exclusive);
    if (spec.queue) spec.queue->add(me);
    if (spec.watches_sets) sh_->set_watchers.add(me);
    me->consume();
    // (After the consume: a handler's wake-up between its two halves
    // would be lost.)
    t_sleeping_waiter = me;
    t_sleep_exit = &reg;
    poll_stack();
    bool done = ready(ctx);
    int rc = 0, err = 0;
    if (!done) {
      pollfd local[16];
      pollfd* fds = local;
      // Frames arriving on any queue wake us if we are the family's frame
      // watcher (no stack yet: nothing to watch). One sleeper watches: a
      // frame that woke every sleeper (nginx's eight idle workers) made
      // eight context switches and eight turns of the lock for one of them
      // to find the data; now the watcher takes it in and wakes its
      // socket's waiters only. The others sleep on their own wake-ups.
      const bool watching = stack_ && take_frame_watch(me);
      reg.watching = watching;
      const int nwait = watching ? nwait_ : 0;
      const int first_kernel = 2 + nwait;
      int n = first_kernel + spec.nkernel;
      std::vector<pollfd> big;
      if (n > 16) {
        big.resize(n);
        fds = big.data();
        reg.big = &big;
      }
      // Wake-ups from this process, then from the family's others (-1 when
      // the waiter has no socket: poll ignores it).
      fds[0] = pollfd{me->fd(), POLLIN, 0};
      fds[1] = pollfd{me->remote_fd(), POLLIN, 0};
      for (int i = 0; i < nwait; ++i) fds[2 + i] = pollfd{wait_fds_[i], POLLIN, 0};
      for (int i = 0; i < spec.nkernel; ++i) fds[first_kernel + i] = spec.kernel[i];
      timespec ts, *tsp = nullptr;
      if (spec.deadline_ns >= 0) {
        int64_t left = spec.deadline_ns - now;
        if (left < 0) left = 0;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        tsp = &ts;
      }
      ++counters_->blocked_waits;
      CoreLock::unlock();
      // (A call with its own signal mask, ppoll or epoll_pwait, is ended
      // only by what its ppoll() lets in: a handler that ran outside it may
      // be for a signal the call's mask blocks, which Linux would have kept
      // pending until the call returned.)
      const bool handler_ran = !spec.mask && signal_mark().caught != mark.caught;
      if (handler_ran) {
        rc = -1;
        err = EINTR;
      } else {
        // A thread the program cancels in this sleep (ppoll() is a
        // cancellation point, as the call it stands for is; the lock is
        // held with cancellation off) ends in it: leave_cancelled_sleep()
        // takes it out of every queue first, so that nothing later wakes
        // a waiter that is gone (with its stack, perhaps the program's
        // own). (A cleanup handler: the library is built without
        // exceptions, so the frames it unwinds run no destructors.)
        rc = sleep_cancellable(fds, nfds_t(n), tsp, spec.mask, &reg);
        reg.big = nullptr;
        err = errno;
        if (rc >= 0 && !spec.mask && signal_mark().caught != mark.caught) {
          rc = -1;
          err = EINTR;
        }
      }
      relock();
      // (Left already if a handler ran: the watch may be another's now.)
      if (stack_ && !reg.left) drop_frame_watch(me, watching);
      for (int i = 0; i < spec.nkernel; ++i) spec.kernel[i].revents = fds[first_kernel + i].revents;
      // Wake-ups from other processes of the family (left unread, they
      // would only cost one spurious turn of this loop).
      if (fds[1].revents) me->drain_remote();
    }
    t_sleeping_waiter = nullptr;
    t_sleep_exit = nullptr;
    if (!reg.left) {
      for (int i = 0; i < spec.nsockets; ++i) spec.sockets[i]->waiters.remove(me);
      if (spec.queue) spec.queue->remove(me);
      if (spec.watches_sets) sh_->set_watchers.remove(me);
    }
    me->consume();
    if (done) return done_waiting(0);
    if (rc < 0 && err == EINTR) {
      if (!spec.restartable || !restart_after_signal(mark)) {
        // An exclusive waiter may have been the one woken for what it waits
        // for, the others left asleep: it takes it (Linux's accept() takes
        // a queued connection before it looks at signals).
        if (spec.exclusive) {
          poll_stack();
          if (ready(ctx)) return done_waiting(0);
        }
        return done_waiting(-EINTR);
      }
      restarted(signal_mark());  // (later handlers count anew)
    }
    // Sockets closed meanwhile by another thread: the top of the loop
    // sees it.
  }
}

bool Runtime::let_go_of_waited(WaitSpec& spec) {
  for (int i = 0; i < spec.nsockets; ++i) --spec.sockets[i]->holds;
  // Leaving while nobody watches the frames and others sleep: one of them
  // takes the watch (it wakes, finds the watch free and takes it).
  hand_frame_watch();
  bool gone = false;
  for (int i = 0; i < spec.nsockets; ++i) {
    Socket* s = spec.sockets[i];
    // (The same socket twice, as poll() on two duplicated descriptors
    // lists it: looked at once, before it may be freed.)
    bool listed_before = false;
    for (int j = 0; j < i; ++j) listed_before |= spec.sockets[j] == s;
    if (listed_before || s->fd_refs != 0) continue;
    gone = true;
    maybe_delete(s);
  }
  return gone;
}

// (Apart from block_impl: the handler's setjmp would make the caller's
// locals suspect to the compiler.)
int Runtime::sleep_cancellable(pollfd* fds, nfds_t n, const timespec* timeout,
                               const sigset_t* mask, SleepRegistration* reg) {
  int rc;
  pthread_cleanup_push(leave_cancelled_sleep, reg);
  rc = libc::ppoll(fds, n, timeout, mask);
  pthread_cleanup_pop(0);
  return rc;
}

void Runtime::spin_cancellation_point(WaitSpec* spec) {
  pthread_cleanup_push(leave_cancelled_spin, spec);
  pthread_testcancel();
  pthread_cleanup_pop(0);
}

// A thread cancelled while it spins in block_impl: the sockets it held
// are let go of (it holds no lock, and is in no queue).
void Runtime::leave_cancelled_spin(void* arg) {
  CoreLock::lock();
  get().let_go_of_waited(*static_cast<WaitSpec*>(arg));
  run_cancel_undos();
  CoreLock::unlock();
}

// A thread cancelled asleep in block_impl: what it was registered in, and
// what it held, let go under the lock; then the lock too, which none of
// the frames the cancellation unwinds lets go of.
void Runtime::leave_cancelled_sleep(void* arg) {
  auto* reg = static_cast<SleepRegistration*>(arg);
  CoreLock::lock();
  t_sleeping_waiter = nullptr;
  t_sleep_exit = nullptr;
  // (A handler's pthread_exit() comes here with the list hidden.)
  t_cancel_undo = reg->undo;
  leave_sleep_queues(reg);
  reg->me->consume();
  reg->rt->let_go_of_waited(*reg->spec);
  if (reg->big) std::vector<pollfd>().swap(*reg->big);
  run_cancel_undos();
  CoreLock::unlock();
}

// A handler of the program runs on a thread asleep in block_impl (called
// from shim/wait/signals.cc, the lock not held): the thread leaves its
// queues now. (Its sockets stay held: the sleep goes on using them if
// the handler returns. One that leaves by siglongjmp leaves them held,
// each such socket's memory kept once its descriptor closes.)
void Runtime::leave_interrupted_sleep(SleepExit* e) {
  CoreLock::lock();
  leave_sleep_queues(static_cast<SleepRegistration*>(e));
  CoreLock::unlock();
}

void Runtime::leave_sleep_queues(SleepRegistration* reg) {
  if (reg->left) return;
  reg->left = true;
  Runtime* rt = reg->rt;
  WaitSpec& spec = *reg->spec;
  if (rt->stack_) {
    rt->drop_frame_watch(reg->me, reg->watching);
    rt->hand_frame_watch();
  }
  // An exclusive waiter (accept()) no longer in its queue was the one
  // woken for a connection, the others left asleep: the next one is
  // woken for it.
  for (int i = 0; i < spec.nsockets; ++i)
    if (!spec.sockets[i]->waiters.remove(reg->me) && spec.exclusive)
      spec.sockets[i]->waiters.wake_exclusive();
  if (spec.queue) spec.queue->remove(reg->me);
  if (spec.watches_sets) reg->rt->sh_->set_watchers.remove(reg->me);
  run_leave_undos(reg->undo);
}

// ---- the frame watcher ----

bool Runtime::take_frame_watch(ThreadWaiter* me) {
  // (Already ours: a sleep this thread left without dropping the watch, by
  // a handler's siglongjmp, or a handler's own blocking call inside it.)
  if (sh_->frame_watcher_tid == me->tid() && sh_->frame_watcher_pid == process_id()) return true;
  if (sh_->frame_watcher_tid == 0) {
    sh_->frame_watcher_pid = process_id();
    sh_->frame_watcher_tid = me->tid();
    return true;
  }
  sh_->idle_sleepers.add(me, /*exclusive=*/true);
  return false;
}

void Runtime::drop_frame_watch(ThreadWaiter* me, bool watching) {
  if (!watching) {
    sh_->idle_sleepers.remove(me);  // (nothing when a hand-over took it off)
    return;
  }
  if (sh_->frame_watcher_tid == me->tid() && sh_->frame_watcher_pid == process_id())
    sh_->frame_watcher_pid = sh_->frame_watcher_tid = 0;
}

void Runtime::hand_frame_watch(pid_t passed_over) {
  if (!stack_ || sh_->frame_watcher_tid != 0 || sh_->idle_sleepers.empty()) return;
  // (Every idle sleeper is an exclusive entry: the first one still there
  // is woken and leaves the queue.)
  counters_->remote_wakes += uint64_t(sh_->idle_sleepers.wake_exclusive(passed_over));
}

void Runtime::reclaim_frame_watch() {
  XLOG(kLogDecision,
       "the frame watcher (process %d, thread %d) took no frame in for %d ms while frames "
       "arrived (stopped?): the watch goes to another sleeper",
       int(sh_->frame_watcher_pid), int(sh_->frame_watcher_tid), int(kWatchStallNs / 1000000));
  ++counters_->watch_reclaims;
  const pid_t stalled = sh_->frame_watcher_pid;
  sh_->frame_watcher_pid = sh_->frame_watcher_tid = 0;
  // (Not to another sleeper of the same process: stopped, it would not
  // answer either. With none left, this progress thread watches.)
  hand_frame_watch(stalled);
}

void Runtime::forget_frame_watch_of(pid_t pid) {
  sh_->idle_sleepers.forget_process(pid);
  if (sh_->frame_watcher_tid != 0 && sh_->frame_watcher_pid == pid)
    sh_->frame_watcher_pid = sh_->frame_watcher_tid = 0;
  hand_frame_watch();
}

// ---- progress thread ----

namespace {

// The progress thread's way into the stack: it gives up once a fatal
// signal is pending (the process must end by it: die_of_signal), so that a
// holder that never lets go (a livelock: a bug) cannot keep the signal
// from ending the program.
bool take_stack_unless_signal() {
  for (;;) {
    if (CoreLock::lock_within(50)) return true;
    if (fatal_signal_pending()) return false;
  }
}

}  // namespace

void Runtime::progress_loop(bool in_forked_child) {
  t_progress_thread = true;
  host_.place_progress_thread();
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  uint64_t seen_app_polls = 0;
  WatchStall stall;
  if (in_forked_child && test_first_hold_ms_ == 0) {
    // A forked child's: the family's stack has its progress thread
    // already, and this one only watches for the members that die (taking
    // over if the one that runs the stack goes). It waits a little first,
    // so that a child that ends at once (a fork before exec) finds it
    // outside; a parent that ends at once (a daemon's fork) leaves the
    // timers to it that much later.
    pollfd wake{progress_wake_fd_, POLLIN, 0};
    timespec ts{0, kChildProgressDelayNs};
    libc::ppoll(&wake, 1, &ts, nullptr);
  }
  for (;;) {
    progress_enter();
    if (fatal_signal_pending()) die_of_signal();
    int64_t timer_ms;
    uint64_t polls;
    bool unkicked;
    size_t family_members;
    bool mine;
    bool watcher_free;
    {
      if (!take_stack_unless_signal()) continue;
      CoreGuard g(std::adopt_lock);
      if (test_first_hold_ms_ > 0) {  // (test seam: a forked child's first look, made long)
        usleep(useconds_t(test_first_hold_ms_) * 1000);
        test_first_hold_ms_ = 0;
      }
      // One progress thread of the family runs the stack (the first to
      // look); the others only watch for dead members, and one of them
      // takes over when the owner leaves or dies.
      if (sh_->progress_owner == 0 && !leaving_) sh_->progress_owner = process_id();
      mine = sh_->progress_owner == process_id();
      timer_ms = stack_->next_timer_ms();
      uint64_t all = sh_->app_polls + sh_->quiet_polls.load(std::memory_order_relaxed);
      polls = all - seen_app_polls;
      seen_app_polls = all;
      unkicked = sh_->tx_unkicked != 0;
      family_members = sh_->members.size();
      // A watcher whose thread is gone without leaving the watch (a thread
      // cancelled in its sleep): the watch is free again.
      if (mine && sh_->frame_watcher_tid != 0 &&
          syscall(SYS_tgkill, sh_->frame_watcher_pid, sh_->frame_watcher_tid, 0) != 0 &&
          errno == ESRCH) {
        sh_->frame_watcher_pid = sh_->frame_watcher_tid = 0;
        hand_frame_watch();
      }
      watcher_free = sh_->frame_watcher_tid == 0;
    }
    if (!mine) {
      stall = WatchStall{};
      pollfd wake{progress_wake_fd_, POLLIN, 0};
      timespec ts{0, kReapIntervalNs};
      progress_inside_.store(false);
      libc::ppoll(&wake, 1, &ts, nullptr);
      if (wake.revents) drain_progress_wake();
      if (forked_child_) return;
      progress_enter();
      if (!take_stack_unless_signal()) continue;
      CoreGuard g(std::adopt_lock);
      reap_dead_members();
      take_progress_from_stalled_owner();
      continue;
    }
    bool app_active = polls != 0;
    // Watch for frames only when no program thread does: the one asleep
    // that holds the family's watch (block_impl), or one that polls and
    // has just done it. Otherwise come back within 10 ms to see whether that changed; or
    // within 50 ms when the program is spinning (thousands of polls since
    // the last look): it runs the timers itself, and every wake-up of this
    // thread, on a machine whose cores the spinning threads occupy, is a
    // preemption that shows in the tail of the program's round trips.
    bool watch = watcher_free && !app_active;
    int64_t timeout = timer_ms;
    if (polls > 10000) timeout = 50;
    else if (!watch && (timeout < 0 || timeout > 10)) timeout = 10;
    // The statistics are refreshed about once a second; the family's
    // members are looked at five times a second.
    if (timeout < 0 || timeout > 1000) timeout = 1000;
    if (timeout > kReapIntervalNs / 1000000 && family_members > 1)
      timeout = kReapIntervalNs / 1000000;
    // Datagrams waiting for their batch to fill go within a millisecond
    // even when the program makes no further call.
    if (unkicked) timeout = 1;
    // A broker's connection reports only its hang-up (no events asked):
    // its replies are read by the thread that made the request.
    pollfd fds[3 + rings::kMaxQueues] = {{progress_wake_fd_, POLLIN, 0},
                                         {stack_->events_fd(), POLLIN, 0},
                                         {broker_watch_fd_, 0, 0}};
    for (int i = 0; i < nwait_; ++i) fds[3 + i] = pollfd{wait_fds_[i], POLLIN, 0};
    timespec ts{timeout / 1000, (timeout % 1000) * 1000000};
    progress_inside_.store(false);
    libc::ppoll(fds, nfds_t(watch ? 3 + nwait_ : 3), timeout < 0 ? nullptr : &ts, nullptr);
    if (fds[0].revents) drain_progress_wake();
    if (forked_child_) return;
    progress_enter();
    if (!take_stack_unless_signal()) continue;
    CoreGuard g(std::adopt_lock);
    ++counters_->progress_wakeups;
    // Another process took the stack over while this one was stopped
    // (take_progress_from_stalled_owner): from now on this one only watches.
    if (sh_->progress_owner != process_id()) continue;
    if (fds[2].revents & (POLLHUP | POLLERR)) broker_lost();
    if (int64_t now = mono_ns(); now >= next_stats_ns_ || stats_.refresh_asked()) {
      next_stats_ns_ = now + 1000000000;
      counters_->polls_locked = sh_->app_polls;
      counters_->polls_lockfree = sh_->quiet_polls.load(std::memory_order_relaxed);
      stats_.refresh();
      sweep_handed_flows();
      look_at_group_sharing();
    }
    if (fds[1].revents) stack_->driver().kernel_events();
    if (sh_->tx_unkicked) kick();
    if (forked_.load(std::memory_order_relaxed)) hand_unserved_listeners_to_kernel();
    if (sh_->members.size() > 1) {
      int64_t now = mono_ns();
      if (now >= next_reap_ns_) {
        next_reap_ns_ = now + kReapIntervalNs;
        reap_dead_members();
      }
    }
    if (watcher_stalled(&stall)) reclaim_frame_watch();
    // A program thread that polled meanwhile has done the work.
    if (sh_->app_polls + sh_->quiet_polls.load(std::memory_order_relaxed) != seen_app_polls && !fds[1].revents)
      continue;
    const uint64_t taken_before = stack_->rx_frames_taken();
    counters_->progress_rx_packets += stack_->poll();
    ++counters_->progress_polls;
    stall.own_frames += stack_->rx_frames_taken() - taken_before;
  }
}

// A watcher that does not answer: the same thread has held the watch for
// kWatchStallNs, in which frames arrived (this thread's polls took some
// in, or some wait now) and no other thread took one in. A process
// stopped by SIGSTOP, a debugger or job control, or a thread kept off the
// CPU that long: its frames would otherwise wait for this thread's looks,
// 10 ms apart, for as long as it stays so. (A watcher that answers takes
// each frame in microseconds after it arrives; to be passed over it would
// have to see none in that time but one arriving at the instant of a look:
// the watch then moves to another sleeper, and nothing is lost.)
bool Runtime::watcher_stalled(WatchStall* st) {
  const int64_t now = mono_ns();
  const uint64_t others = stack_->rx_frames_taken() - st->own_frames;
  if (sh_->frame_watcher_tid == 0 || sh_->frame_watcher_tid != st->tid ||
      sh_->frame_watcher_pid != st->pid || others != st->others_taken) {
    *st = WatchStall{sh_->frame_watcher_pid, sh_->frame_watcher_tid, others, now, st->own_frames,
                     st->own_frames};
    return false;
  }
  const uint64_t arrived = st->own_frames - st->own_at_sample + stack_->rx_frames_waiting();
  return arrived >= 2 && now - st->since_ns >= kWatchStallNs;
}

void Runtime::die_of_signal() {
  // A thread of this process that never lets the stack go (a livelock in
  // it: a bug) must not make the signal hang the program. The holder of a
  // sound stack lets go within microseconds (and a thread of ours the
  // signal stopped inside it stops at its release); after kStuckHolderMs
  // the process dies by the signal at once, its connections unfinished,
  // as without the library.
  constexpr int kStuckHolderMs = 2000;
  if (!CoreLock::lock_within(kStuckHolderMs)) {
    log_at(kLogError, "a thread holds the stack and does not let go: the process dies by "
           "signal %d without finishing its connections", fatal_signal_pending());
    die_by_pending_signal();
  }
  CoreLock::unlock();
  // What exit() would have done, then the signal's own default action.
  leave_family();
  shutdown_stats();
  report_clock();
  die_by_pending_signal();
}

// ---- fork ----

void Runtime::fork_prepare() {
  Runtime& r = get();
  if (t_family_fork) return;
  if (r.start_state_.load() > 0) CoreLock::lock();
}

void Runtime::fork_parent() {
  Runtime& r = get();
  if (t_family_fork) return;
  if (r.start_state_.load() > 0) {
    r.last_fork_ns_ = mono_ns();  // under the CoreLock, taken in fork_prepare
    r.forked_.store(true, std::memory_order_relaxed);
    CoreLock::unlock();
  }
}

void Runtime::hand_unserved_listeners_to_kernel() {
  // A forked child cannot use the parent's stack (yet): when the children
  // are the ones that accept (nginx's and apache's workers, pre-forked
  // servers), connections the stack completes wait on the parent's
  // listener forever. One that has had connections waiting for a second,
  // with no accept() by this process meanwhile, goes to the kernel, which
  // listens on the same port and is shared with the children; the waiting
  // connections are reset (they cannot move). A parent that accepts itself
  // (redis after a BGSAVE fork) has accepted since the fork, or does not
  // leave them waiting that long.
  constexpr int64_t kUnservedNs = 1'000'000'000;
  const int64_t now = mono_ns();
  std::vector<TcpSocket*> unserved;
  for (Socket* s = sh_->live; s; s = s->live_next) {
    if (s->kind != Socket::Kind::Tcp) continue;
    auto* t = static_cast<TcpSocket*>(s);
    if (t->state == TcpSocket::State::Listening && !t->accept_queue.empty() &&
        now - t->queued_since_ns > kUnservedNs && t->last_accept_ns < last_fork_ns_)
      unserved.push_back(t);
  }
  for (TcpSocket* t : unserved) {
    log_at(kLogError,
           "port %u: no process has accepted the %zu connection(s) waiting on this accelerated "
           "listener for a second since it forked (forked children cannot use the stack yet); the "
           "listener is handed to the kernel so that they can, and those connections are reset",
           t->local.port, t->accept_queue.size());
    t->reset_waiting_connections();
    hand_to_kernel(t);
  }
}

bool Runtime::reattach_broker() {
  if (!broker_lost_.load(std::memory_order_acquire) || forked_child_) return false;
  std::lock_guard<std::mutex> start(start_mutex_);
  if (!broker_lost_.load(std::memory_order_relaxed)) return enabled();
  int64_t now = mono_ns();
  if (now < next_broker_try_ns_) return false;
  next_broker_try_ns_ = now + 1'000'000'000;
  rings::BrokerGrant grant;
  ErrorText why;
  ++t_inside;
  int rc = rings::broker_connect(config_.iface.c_str(), program_invocation_short_name, &grant, &why);
  std::unique_ptr<rings::XskPort> port;
  if (rc == 0) {
    CoreGuard g;
    rc = rings::XskPort::open_brokered(config_.iface, &grant, &port, &why);
    if (rc == 0) {
      rings::XskPort* old = stack_->port();
      stack_->replace_port(std::move(port));
      rings::XskPort* now_port = stack_->port();
      if (&old->counters() != &now_port->counters()) now_port->place_counters(&old->counters());
      nwait_ = stack_->wait_fds(wait_fds_, int(rings::kMaxQueues));
      wait_fds_port_ = stack_->port_generation();
      broker_watch_fd_ = now_port->broker_conn();
      broker_lost_.store(false, std::memory_order_release);
      enabled_ = true;
    }
  }
  grant.close_unused();
  --t_inside;
  if (rc == 0)
    log_at(kLogError, "the xdpload broker of %s is back: new sockets are accelerated again",
           iface_.name.c_str());
  return rc == 0;
}

void Runtime::broker_lost() {
  broker_watch_fd_ = -1;
  enabled_ = false;
  broker_lost_.store(true, std::memory_order_release);
  // Sorted first, then handled listeners last: handing a listener to the
  // kernel may free the connections waiting in its queue.
  std::vector<TcpSocket*> connections, listeners;
  std::vector<Socket*> datagrams;
  for (Socket* s = sh_->live; s; s = s->live_next) {
    if (s->kind != Socket::Kind::Tcp) {
      datagrams.push_back(s);
      continue;
    }
    auto* t = static_cast<TcpSocket*>(s);
    if (t->state == TcpSocket::State::Listening) listeners.push_back(t);
    else if (t->pcb) connections.push_back(t);
  }
  for (TcpSocket* t : connections) t->reset_connection();
  // Their datagrams reach the kernel sockets now that nothing steers them.
  for (Socket* s : datagrams) hand_to_kernel(s);
  for (TcpSocket* t : listeners) {
    // The kernel listens on the same port: new connections go there.
    // Those the stack completed and nobody accepted are reset.
    for (TcpSocket* c : t->accept_queue) {
      c->opt.linger = true;
      c->opt.linger_s = 0;
    }
    hand_to_kernel(t);
  }
  const size_t reset = connections.size(), moved = datagrams.size() + listeners.size();
  // The sockets are closed last: the resets above may still leave through
  // them (the link, not the broker, carries them).
  stack_->flush();
  stack_->port()->broker_lost();
  nwait_ = 0;
  log_at(kLogError,
         "the xdpload broker of %s is gone: %zu accelerated connection%s reset, %zu socket%s "
         "moved to the kernel path; new sockets use the kernel path",
         iface_.name.c_str(), reset, reset == 1 ? "" : "s", moved, moved == 1 ? "" : "s");
}

void Runtime::fork_child() {
  // The child shares the parent's AF_XDP rings (mapped from the socket) and
  // must never touch them: it gives up its copies of the socket and the XDP
  // link (so that the program goes away when the parent dies, whatever the
  // child does), and runs every socket of its own on the kernel path.
  // Accelerated sockets inherited from the parent can only be closed.
  Runtime& r = get();
  r.host_.after_fork();
  stack::LinkNetif::set_test_die_in_burst(false);  // (the parent's seam)
  // This thread's lock flags came with the copy of the forking thread,
  // which held the lock (fork_prepare, fork_process): not the child's. Left
  // set, an exec before any use of the stack skipped the hand-over of the
  // sockets the new program inherits, and a fatal signal's handler took
  // the thread for one inside the stack.
  stack::t_core_held = 0;
  stack::t_core_stop_at_release = 0;
  // ...and the signals it had put back blocked (none is pending in the
  // child: the kernel gives a child none of its parent's pending signals).
  stack::CoreLock::let_deferred_signals_in();
  // ...and its cancellability, off while the lock was held: the program's.
  int ignored;
  pthread_setcancelstate(stack::t_cancel_state_was, &ignored);
  t_cancel_undo = nullptr;
  fatal_signals_after_fork();
  if (t_family_fork) return;  // fork_process() does the rest
  r.forked_child_ = true;
  // Not the family's: the family's statistics are not kept alive by it.
  r.stats_.keep_private_copy();
  // No stack of its own, no progress thread: a fatal signal's default
  // action is the child's own again (our catcher would stop the thread
  // and wait for ever for a progress thread it does not have).
  release_fatal_signals();
  r.pid_ = getpid();
  waiting_after_fork();
  if (r.start_state_.load() > 0) {
    // The lock is the parent's (shared, released by its thread), or a
    // private copy held by that thread.
    family::reset_private_lock_in_child();
    stack::Stack::stop_kicks_after_release();
    r.stack_->port()->abandon();
    // An inherited listener is the kernel's listening socket to the child:
    // it accepts whatever the kernel gets on that port, which is every
    // connection once the parent has handed the listener over
    // (hand_unserved_listeners_to_kernel), as pre-forked servers need.
    for (Socket* s = r.sh_->live; s; s = s->live_next)
      if (s->kind == Socket::Kind::Tcp &&
          static_cast<TcpSocket*>(s)->state == TcpSocket::State::Listening)
        for (const Descriptor& d : s->descriptors) r.fds_.take(d.fd);
  }
}

}  // namespace xdpload::shim
