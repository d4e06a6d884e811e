// Runtime: the process-wide state of the preloaded library.
//
// - Start-up reads the configuration; the stack itself starts on the first
//   socket that needs it (a program that never opens a network socket never
//   touches XDP). If it cannot start, one line on stderr says why and every
//   socket stays on the kernel path (XDPLOAD_STRICT=1: exit instead).
// - Decisions: a destination is accelerated when the kernel routes it
//   through the configured interface; a bind is accelerated on the
//   interface's address or the wildcard.
// - Waiting: block() spins for XDPLOAD_SPIN_USEC polling the stack, then
//   sleeps until a socket changes, a frame arrives, a kernel descriptor is
//   ready, the deadline passes or a signal arrives.
// - A progress thread runs lwIP's timers and takes frames while no program
//   thread is polling, so ACKs and retransmissions happen while the program
//   computes; it sleeps when there is nothing to do.
// - fork: parent and children share one stack (family/arena.h): a socket
//   inherited across fork works in every process that holds it, as the
//   kernel's do, and closes when its last descriptor in any process closes
//   (shim/runtime/runtime_family.cc). Where the stack cannot be shared (the
//   library not linked for it), the child runs on the kernel path and its
//   inherited sockets can only be closed (fork_child()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "shim/ext/lent_buffers.h"
#include "shim/runtime/config.h"
#include "shim/runtime/host_settings.h"
#include "shim/socket/fd_table.h"
#include "shim/runtime/rules.h"
#include "shim/stats/shim_counters.h"
#include "shim/socket/socket.h"
#include "shim/stats/stat_publisher.h"
#include "stack/interface_info.h"
#include "stack/kernel_routes.h"
#include "stack/lwip_port.h"
#include "stack/stack.h"

namespace xdpload::shim {

class TcpSocket;

struct PortUse {
  int refs = 0;
  int parked_fd = -1;     // a descriptor of process parked_pid (and of the
  pid_t parked_pid = 0;   // children it forked since): only it closes it
  bool shared = false;    // shared with a kernel listener: the stack's flows only
};
struct PortHash {
  size_t operator()(const PortKey& k) const { return (size_t(k.proto) << 16) | k.port; }
};

// What the processes of a family share besides the stack: the socket list,
// the steered ports, how busy the program threads are, who is alive. In the
// family arena once the stack starts. CoreLock held unless atomic.
// A connection the stack handed to the kernel on a port it keeps: its
// flow is listed as the kernel's until the kernel's socket is gone.
// Addresses in network order, ports in host order.
struct HandedFlow {
  uint32_t local_ip, remote_ip;
  uint16_t local_port, remote_port;
};

struct RuntimeShared : family::Object {
  Socket* live = nullptr;
  family::unordered_map<PortKey, PortUse, PortHash> ports;
  uint64_t app_polls = 0;                 // stack polls by program threads
  std::atomic<uint64_t> quiet_polls{0};   // polls skipped by stack_quiet()
  // One program thread asleep in the library watches the AF_XDP sockets for
  // the family's frames (0: none); the others sleep on their own wake-ups,
  // in idle_sleepers, one of which is woken to watch when the watcher
  // leaves (Runtime::block_impl).
  pid_t frame_watcher_pid = 0;
  pid_t frame_watcher_tid = 0;
  WaitQueue idle_sleepers;
  // Threads asleep on an epoll set's descriptor from outside the set: in
  // poll() or select() on it, or in epoll_wait on a set that nests it. A
  // change another process queued for a set (EpollSet::change_kernel)
  // wakes them: the set's holder makes it as it looks again.
  WaitQueue set_watchers;
  family::vector<HandedFlow> handed_flows;  // (note_handed_flow)
  // UDP ports whose group frames go to the kernel (look_at_group_sharing).
  family::vector<uint16_t> group_shared_ports;
  uint32_t tx_unkicked = 0;               // datagrams queued since the last kick
  family::vector<pid_t> members;          // processes using the stack
  family::vector<pid_t> execing;          // members inside an exec (exec_starts)
  pid_t progress_owner = 0;               // whose progress thread runs the stack
  uint32_t forks = 0;  // children forked into the family: the next one's transmit queue
  family::vector<TcpSocket*> tx_stamping;  // connections waiting for transmit stamps
  LentBuffers lent;  // buffers the programs hold through the zero-copy calls
};

struct WaitSpec {
  Socket** sockets = nullptr;  // wait queues to sleep on
  int nsockets = 0;
  WaitQueue* queue = nullptr;  // one more (an epoll set's)
  // Sleeping on an epoll set's descriptor from outside it: joins the
  // family's set_watchers (RuntimeShared).
  bool watches_sets = false;
  pollfd* kernel = nullptr;    // kernel descriptors to watch as well
  int nkernel = 0;
  int64_t deadline_ns = -1;    // CLOCK_MONOTONIC; -1: none
  bool restartable = true;     // SA_RESTART applies (no socket timeout)
  const sigset_t* mask = nullptr;  // signal mask while asleep (ppoll, pselect, epoll_pwait)
  uint8_t spin_kind = 0;       // SpinKind (shim/ext/thread_spin.h): whose spinning applies
  // On `sockets`, one of the waiters a connection wakes one at a time
  // (accept(): WaitQueue::wake_exclusive).
  bool exclusive = false;
  // The call's own count of handlers run (signal_mark() when it began), for
  // a call that blocks more than once: a handler that ran during an earlier
  // wait that ended without EINTR (woken for what another process then
  // took) still ends the next one. Null: counted from this wait's start.
  SignalMark* call_mark = nullptr;
};

class Runtime {
 public:
  static Runtime& get();

  void init();
  // Configured, not switched off, and this is not a forked child.
  bool enabled() const { return enabled_ && !forked_child_; }
  // ---- the process family (shim/runtime/runtime_family.cc) ----
  // fork() for the program: with a running stack that can be shared, the
  // child joins the family and inherits working sockets.
  pid_t fork_process();
  // _exit() and exit(): this process's descriptors close. Others of the
  // family go on with the stack; the last one finishes the connections.
  void leave_family();
  // The very end of the family's last process, once its connections are
  // finished and its statistics gone: the AF_XDP sockets and the XDP link
  // are let go of all at once (rings::XskPort::release_at_exit), when the
  // program has no other thread left that could be using them; every
  // descriptor still ours is the kernel's from then on.
  void release_port_at_exit();
  // The process is about to end or exec, which stops its other threads
  // wherever they are: the progress thread is kept out of the stack first
  // (it waits, parked, outside the lock), so that the family never finds
  // the lock's holder dead because this process ended normally. Waits (up
  // to kProgressOutWaitNs) while that thread is inside; false when nothing
  // is held (no shared stack, a vfork or unshared child, or this is the
  // progress thread). (One hold at a time: a failed exec in one thread lets
  // the thread in even while another thread is ending the process.)
  bool keep_progress_out(bool for_exec);
  // After a failed exec: the progress thread goes on.
  void let_progress_in();
  // Lock held: the descriptors of family members that died without leaving
  // (SIGKILL, a crash) are closed for them. Called by progress threads;
  // `thorough`: also those now running another image (exec).
  void reap_dead_members(bool thorough = true);
  // Lock held: this process is about to exec (a member whose image is to
  // be looked at in every check), or its exec failed.
  void exec_starts();
  void exec_failed();
  // The socket behind `fd` left the shim in another process of the family:
  // forget it here too (the descriptor is a kernel socket).
  void forget_departed(int fd, Socket* s);
  // Says the deferred configuration lines, once per process family: at the
  // first TCP or UDP socket on AF_INET/AF_INET6.
  void say_deferred();
  bool forked_child() const { return forked_child_; }
  // A vfork() child (Python's subprocess, posix_spawn...) runs in our
  // memory until it execs: the descriptor table, the sockets and the epoll
  // sets it would change are ours. A system call, for the rare paths that
  // change the table (close, dup, socket).
  bool vfork_child() const { return pid_ != 0 && ::getpid() != pid_; }
  // Starts the stack if needed. False when acceleration is off.
  // Call without the CoreLock.
  bool ensure_stack();
  stack::Stack* stack() { return stack_.get(); }

  // ---- decisions ----
  // A destination (network order ip, host order port) for a client or
  // sender: the rules, then the kernel's route (asked again after
  // kRouteRecheckMs, so that route changes count).
  bool accelerate_destination(uint32_t ip, uint16_t port, Role role);
  static constexpr uint64_t kRouteRecheckMs = 2000;
  // A local address a socket binds: the interface's or the wildcard.
  bool accelerate_bind(uint32_t ip);
  // The same, for a server or receiver on a port: the rules too.
  bool accelerate_local(uint32_t ip, uint16_t port, Role role);
  uint32_t iface_addr() const { return iface_.addr; }
  const stack::InterfaceInfo& iface() const { return iface_; }
  // net.ipv4.tcp_congestion_control of the namespace, read when the stack
  // started: what a TCP socket uses unless it asks (TCP_CONGESTION).
  const char* default_congestion() const { return default_cc_; }

  // ---- ports (CoreLock held) ----
  // Steers the port to the stack (its first user). With a broker, the
  // broker may refuse (policy, or the port is another program's): then
  // -EACCES, said once on stderr, and the socket takes the kernel path.
  int port_acquire(PortKey k, int backing_fd);
  void port_release(PortKey k);
  // Some PCB of the family's stack uses the port.
  bool port_in_use(PortKey k) const { return sh_->ports.count(k) != 0; }
  // How many PCBs of the family's stack use it.
  int port_users(PortKey k) const {
    auto it = sh_->ports.find(k);
    return it == sh_->ports.end() ? 0 : int(it->second.refs);
  }
  bool port_shared(PortKey k) const {
    auto it = sh_->ports.find(k);
    return it != sh_->ports.end() && it->second.shared;
  }
  // A TCP listener on `port` went to the kernel: if the stack's connections
  // still use the port, the kernel gets its new connections from now on and
  // the stack keeps those (per-flow steering; said once where it cannot).
  void share_port_with_kernel(uint16_t port);
  // Keeps `fd` (a dup of the program's socket) open until the port's last
  // user is gone, so that the kernel does not hand the port out meanwhile.
  void port_park(PortKey k, int fd);

  // ---- waiting (CoreLock held) ----
  void poll_stack() {
    if (!stack_) return;
    ++sh_->app_polls;
    sh_->tx_unkicked = 0;  // poll() sends what is queued
    stack_->poll();
    // ... unless the broker's completion ring was full: the progress
    // thread kicks again within a millisecond.
    if (stack_->tx_blocked()) sh_->tx_unkicked = 1;
  }
  // Nothing for a poll to do (no frame, no timer due, nothing to send): a
  // spinning caller may answer EAGAIN without the CoreLock. Any thread.
  bool stack_quiet() {
    if (!stack_ || __atomic_load_n(&sh_->tx_unkicked, __ATOMIC_RELAXED) != 0 || !stack_->quiet())
      return false;
    // Counted as a poll for the progress thread's sake (it stays out of the
    // way of a spinning program); a lost increment between threads is fine.
    sh_->quiet_polls.store(sh_->quiet_polls.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    return true;
  }
  // A datagram was queued for sending: the kernel is told now, or with the
  // XDPLOAD_TX_BATCH-th one (see t_defer_kicks).
  void sent_datagram() {
    if (++sh_->tx_unkicked >= config_.tx_batch && !t_defer_kicks) kick();
  }
  void kick() {
    sh_->tx_unkicked = 0;
    stack_->flush();
    if (stack_->tx_blocked()) sh_->tx_unkicked = 1;
  }
  // While set on a thread, its datagrams wait for the kick at the end of the
  // call (sendmmsg: one system call for the lot, as the kernel's).
  static thread_local bool t_defer_kicks;
  template <typename Ready>
  int block(WaitSpec& spec, Ready&& ready) {
    return block_impl(spec, [](void* c) { return (*static_cast<Ready*>(c))(); }, &ready);
  }
  // Wakes the threads asleep with WaitSpec::watches_sets (lock held).
  void wake_set_watchers() { counters_->remote_wakes += sh_->set_watchers.wake_all(); }
  // Deletes a socket nobody refers to any more.
  void maybe_delete(Socket* s);

  // ---- frame pressure ----
  // True when frames run short: the stack holds half of them, or few are
  // left to take. Received data is then copied out of its frames, and
  // sends (plain, sendfile) copy through lwIP's buffer instead of filling
  // frames of their own.
  bool frames_short() const;

  // The list of accelerated sockets (CoreLock held).
  void track(Socket* s);
  void untrack(Socket* s);
  Socket* live_sockets() const { return sh_->live; }
  family::vector<TcpSocket*>& tx_stamping() { return sh_->tx_stamping; }

  Config& config() { return config_; }
  FdTable& fds() { return fds_; }
  // The accelerated socket behind `fd`, or nullptr: not ours (any more).
  Socket* socket_at(int fd) {
    Socket* s = fds_.get(fd);
    if (s && __atomic_load_n(&s->departed, __ATOMIC_ACQUIRE)) [[unlikely]] {
      forget_departed(fd, s);
      return nullptr;
    }
    // A child forked while the stack was not shared (not started yet, say)
    // uses the kernel path: a socket it inherited that was never on the
    // stack is simply the kernel's to it (only an accelerated one is
    // refused, fork_child()).
    if (s && forked_child_ && !s->accelerated) [[unlikely]] return nullptr;
    return s;
  }
  ShimCounters& counters() { return *counters_; }
  // The stack's buffers the family's programs hold (CoreLock held).
  LentBuffers& lent() { return sh_->lent; }
  // The process is about to change its user from root to `uid`: start the
  // stack now, while it can (daemons drop privileges before they open their
  // sockets), and give the statistics segment to the new user.
  void before_privilege_drop(uid_t uid);
  // At exit, first: closes the TCP sockets the program left open and goes
  // on delivering what closed sockets still hold (XDPLOAD_EXIT_LINGER_MS).
  void finish_connections();
  // At exit: flushes the capture, logs the totals.
  void shutdown_stats();
  // At exit, XDPLOAD_LOG=1: how the clock was served.
  void report_clock();
  int64_t spin_ns() const { return config_.spin_usec * 1000; }
  // XDPLOAD_HW_STAMPS (whether they came is the driver's rx_hw_stamps()).
  bool hw_stamps_asked() const { return config_.hw_stamps; }

  // pthread_atfork handlers.
  static void fork_prepare();
  static void fork_parent();
  // After this process forked: listeners whose connections nobody accepts
  // go to the kernel, where the children can accept them. Lock held.
  void hand_unserved_listeners_to_kernel();
  static void fork_child();
  // The broker this process ran through has gone (its connection hung up):
  // accelerated connections are reset, listeners and UDP sockets go to the
  // kernel, new sockets stay there. Lock held.
  void broker_lost();
  // After broker_lost(): a restarted broker is looked for (at most once a
  // second, when a socket asks whether to accelerate); found, its sockets
  // replace the old ones and new sockets are accelerated again.
  bool reattach_broker();
  // Connections handed to the kernel on ports the stack keeps: each listed
  // as the kernel's in the steering map (note) until the progress thread
  // finds the kernel's socket gone, TIME-WAIT included (sweep, about once
  // a second; sock_diag). Lock held.
  void note_handed_flow(const HandedFlow& f) { sh_->handed_flows.push_back(f); }
  void sweep_handed_flows();
  // UDP ports another program's kernel socket holds too: their multicast
  // and broadcast frames go to the kernel while it does, or back to the
  // stack (shim/runtime/group_sharing.cc). Lock held.
  void look_at_group_sharing();
  // The process is about to exec: the family's statistics, if it holds
  // them, go to another process of the family (or away). Lock held.
  void stats_before_exec();

 private:
  int block_impl(WaitSpec& spec, bool (*ready)(void*), void* ctx);
  // What a sleep of block_impl is registered in, for a way out of it other
  // than its end: a cancellation (leave_cancelled_sleep), a handler of the
  // program (leave_interrupted_sleep, through SleepExit).
  struct SleepRegistration : SleepExit {
    Runtime* rt;
    WaitSpec* spec;
    ThreadWaiter* me;
    bool watching;
    // The sleep's descriptor list when it is too long for the frame: a
    // cancelled sleep gives it back (nothing else unwinds it).
    std::vector<pollfd>* big = nullptr;
  };
  static void leave_cancelled_sleep(void* arg);
  static void leave_interrupted_sleep(SleepExit* e);
  // Out of every queue the sleep is registered in, and the frame watch,
  // once (lock held).
  static void leave_sleep_queues(SleepRegistration* reg);
  static void spin_cancellation_point(WaitSpec* spec);
  static void leave_cancelled_spin(void* arg);
  static int sleep_cancellable(pollfd* fds, nfds_t n, const timespec* timeout,
                               const sigset_t* mask, SleepRegistration* reg);
  // Lets go of the sockets a wait held (block_impl), and frees those whose
  // descriptors closed meanwhile: true when one did.
  bool let_go_of_waited(WaitSpec& spec);
  // The family's one frame watcher among sleepers (RuntimeShared). Lock
  // held. take: the watch if it is free (true), else `me` joins the idle
  // sleepers; drop: after the sleep; hand: the watch free and sleepers
  // idle, one of them is woken to take it.
  bool take_frame_watch(ThreadWaiter* me);
  void drop_frame_watch(ThreadWaiter* me, bool watching);
  void hand_frame_watch(pid_t passed_over = 0);
  // Process `pid` (gone) held the watch or slept idle: forgotten.
  void forget_frame_watch_of(pid_t pid);
  // The watch taken from a holder that does not answer (progress_loop),
  // and handed on.
  void reclaim_frame_watch();
  // What progress_loop knows of the watcher since it last changed
  // (watcher_stalled()).
  struct WatchStall {
    pid_t pid = 0, tid = 0;     // the watcher sampled
    uint64_t others_taken = 0;  // frames taken in by other threads then
    int64_t since_ns = 0;       // when
    uint64_t own_frames = 0;    // frames this progress thread took in, ever
    uint64_t own_at_sample = 0; // ...then
  };
  bool watcher_stalled(WatchStall* st);
  // A non-owner's look: the stack's timers run by nobody (its owner
  // stopped) are this process's to run from now on.
  void take_progress_from_stalled_owner();
  void start_clock(bool config_ok);
  void progress_loop(bool in_forked_child);
  // The progress thread, after a fatal signal with the default action.
  [[noreturn]] void die_of_signal();
  bool start_stack();
  // Starts the stack once (and the progress thread, unless asked not to
  // yet): what ensure_stack() and before_privilege_drop() share.
  bool start_stack_now(bool with_progress);
  std::atomic<bool> progress_pending_{false};  // the stack runs, its progress thread not yet
  // One line when some receive queues of the interface have no socket.
  void warn_unserved_queues();
  void read_tcp_sysctls();
  // Acceleration off, said in one line (now, or at the first socket when
  // the configuration is at fault); fatal with XDPLOAD_STRICT=1.
  void disable(const char* why, bool at_first_socket = false);
  // A line about the configuration, kept for the first socket that could
  // have been accelerated.
  void defer_line(const std::string& line);

  Config config_;
  HostSettings host_;  // --rt, --mlock, --numa, --progress-cpu
  Rules rules_;
  // False when a rule says "kernel" (logged at level 2).
  bool rules_allow(Role role, uint32_t ip, uint16_t port);
  FdTable fds_;
  ShimCounters own_counters_;
  ShimCounters* counters_ = &own_counters_;
  // Private until the stack starts, then the family's (start_stack()).
  RuntimeShared own_shared_;
  RuntimeShared* sh_ = &own_shared_;
  // Set while fork_process() is inside the real fork (the atfork handlers
  // then leave it alone).
  static thread_local bool t_family_fork;
  bool family_shares() const;
  void adopt_child(pid_t child);
  void after_fork_in_child();
  void release_descriptors_of(pid_t pid);
  // Takes the waiters of process `pid` out of every socket's queue; a
  // listener with connections waiting for one of them wakes the next.
  void forget_waiters_of(pid_t pid);
  int64_t next_reap_ns_ = 0;
  // keep_progress_out(): asked (0 no, 1 exec, 2 exit), and the progress
  // thread between two of its waits (it may take the lock). Dekker's pair:
  // each side writes its flag, then reads the other's.
  enum ProgressHold : int { kProgressFree, kProgressHeldForExec, kProgressHeldForExit };
  std::atomic<int> progress_hold_{kProgressFree};
  std::atomic<bool> progress_inside_{false};
  std::atomic<bool> progress_parked_{false};  // in progress_enter's wait
  // release_port_at_exit's work, signals blocked (`progress`: the progress
  // thread runs, and is parked first).
  void release_port_now(bool progress);
  static thread_local bool t_progress_thread;
  // The progress thread, at each start of its work: in, or parked while held.
  void progress_enter();
  // Reads the wake-up descriptor's count: a wake-up left unread (a failed
  // exec's, a fatal signal's once handled) would end every later wait at
  // once.
  void drain_progress_wake();
  // Test seam (XL_TEST_CHILD_PROGRESS_HOLD_MS): a forked child's progress
  // thread holds the lock that long at its first look, taken at once, so
  // that the child's end finds it inside (tests/shim/shim-fork-cycles.sh).
  int test_first_hold_ms_ = 0;
  bool leaving_ = false;  // leave_family() ran: the progress thread no longer takes the stack
  bool others_remain_ = false;  // ...and left the stack to other processes of the family
  bool last_of_family_ = false;  // ...and found none (or never had a family)
  StatPublisher stats_;
  int64_t next_stats_ns_ = 0;
  stack::InterfaceInfo iface_;
  char default_cc_[16] = "cubic";
  bool enabled_ = false;
  std::vector<std::string> deferred_;
  // The stack's wait descriptors (one per receive queue), for sleepers.
  int wait_fds_[rings::kMaxQueues] = {};
  int nwait_ = 0;
  uint32_t wait_fds_port_ = 0;  // the port's generation when wait_fds_ were taken
  int broker_watch_fd_ = -1;  // the broker's connection, until it hangs up
  std::atomic<bool> broker_lost_{false};
  int64_t next_broker_try_ns_ = 0;
  std::atomic<bool> deferred_pending_{false};
  bool forked_child_ = false;
  std::atomic<bool> forked_{false};  // this process forked since its stack started
  int64_t last_fork_ns_ = 0;         // when it last did (CoreLock)
  pid_t pid_ = 0;  // the process whose tables these are
  std::mutex start_mutex_;
  std::atomic<int> start_state_{0};  // 0 not tried, 1 running, -1 failed
  std::unique_ptr<stack::Stack> stack_;

  stack::KernelRoutes routes_;
  bool routes_open_ = false;
  struct RouteDecision {
    bool accelerate;
    uint64_t at_ms;
  };
  std::unordered_map<uint32_t, RouteDecision> route_cache_;
  std::mutex route_mutex_;

  int progress_wake_fd_ = -1;
  std::thread progress_;
};

// How often a thread spinning in a blocking call looks whether the
// program has cancelled it (Runtime::block_impl).
constexpr int64_t kCancelLookNs = 1'000'000;
// How often progress threads look for family members that died.
constexpr int64_t kReapIntervalNs = 200'000'000;
// How long the frame watcher may leave arriving frames to the progress
// thread before the watch is taken from it (Runtime::watcher_stalled).
constexpr int64_t kWatchStallNs = 20'000'000;
// How long an ending process waits for its progress thread to leave the
// stack: its work under the lock takes microseconds, but it may be queued
// behind another process's holder.
constexpr int64_t kProgressOutWaitNs = 1'000'000'000;
// How long a forked child's progress thread waits before its first look.
constexpr int64_t kChildProgressDelayNs = 10'000'000;

// exit() may run while another thread is inside the stack (or in a signal
// handler that interrupted it): wait a little for the CoreLock (0.1 s),
// never forever. True when taken.
bool lock_at_exit();

// The current CLOCK_MONOTONIC time in nanoseconds (real clock, not ours).
int64_t mono_ns();

}  // namespace xdpload::shim
