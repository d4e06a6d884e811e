// XskPort: the AF_XDP sockets of one interface, one per receive queue, all
// sharing one UMEM (XDP_SHARED_UMEM), with a pool of free frames and the XDP
// program that steers our ports to them.
//
// A NIC spreads incoming flows over its receive queues by hash (RSS), and a
// frame can only reach an AF_XDP socket bound to the queue it arrived on: a
// port that serves some queues only loses the flows hashed to the others.
// So every queue gets a socket. The first owns the UMEM; each other socket
// has its own fill and completion ring (kernel 5.10+), and receives on its
// own rx ring. A process transmits through one socket, the first's unless
// it is a forked child of the family given another (see send() and
// transmit_on_queue()).
//
// Frame ownership: every UMEM frame is at any time in exactly one place: the
// pool, one queue's fill ring, one queue's rx ring (kernel side), with the
// caller (received, or being built for tx), a tx ring, or a completion
// ring. rx_burst() hands frames to the caller, who gives them back with
// free_frame(); send() hands a frame from the caller to the tx ring; reap()
// brings completed ones back; refill() lends free frames to the fill rings,
// never more than fill_target() to one queue, so that one busy queue cannot
// take every frame from the others.
//
// Under a broker (open_brokered(), rings/xsk_port_broker.cc) the port has
// no fill or completion ring and no XDP program: the broker drives those,
// shared by every program on a queue; the pool holds the frames the broker
// gave, refill() and reap() trade frames with it, and in copy mode a sent
// frame comes back to the pool once the kernel has consumed its descriptor.
//
// Not thread-safe: the owner (a Stack, a test) serializes calls.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "family/arena.h"
#include "rings/broker_protocol.h"
#include "rings/error_text.h"
#include "rings/frame_pool.h"
#include "rings/port_counters.h"
#include "rings/ring.h"
#include "rings/stage_trace.h"
#include "rings/steering.h"
#include "rings/umem.h"

namespace xdpload::rings {

struct PortConfig {
  std::string iface;
  // Receive queues to serve; empty: every queue of the interface.
  std::vector<uint32_t> queues;
  UmemConfig umem;
  uint32_t ring_size = 2048;  // rx, tx, fill and completion; a power of two
  XdpMode mode = XdpMode::Auto;
  bool allow_zero_copy = true;
  // The interface MTU, for the steering program (0: unknown, no UDP limit).
  uint32_t mtu = 0;
  // Hardware receive stamps: the steering program's stamping variant, in
  // driver mode (XdpSteering::attach).
  bool hw_stamps = false;
  // Tests: behave as a kernel or driver that cannot share a UMEM between
  // queues (before 5.10), which this machine's cannot show.
  bool test_refuse_shared_umem = false;
  // A broker's port (tools/broker/): the UMEM is a memfd its programs map,
  // and the pool starts empty: the broker keeps its own ledger of frames and
  // drives the fill and completion rings itself (fill_ring(), ...).
  bool broker_owner = false;
};

// A received frame: UMEM address of the data, its length, and a pointer.
// `more`: the packet continues in the next frame (a packet larger than one
// frame arrives as consecutive frames, the last without `more`).
struct RxFrame {
  uint64_t addr;
  uint32_t len;
  uint8_t* data;
  bool more;
};

#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

// AF_XDP transmit metadata (kernels from 6.8; the UMEM flag that makes
// tx_metadata_len count, from 6.11): Debian 12's headers predate it, so the
// ABI is spelt here. The metadata lies right before a descriptor's packet.
#ifndef XDP_TX_METADATA
#define XDP_TX_METADATA (1 << 1)  // xdp_desc.options
#endif
#ifndef XDP_UMEM_TX_METADATA_LEN
#define XDP_UMEM_TX_METADATA_LEN (1 << 2)  // xdp_umem_reg.flags
#endif
#ifndef XDP_UMEM_TX_SW_CSUM
#define XDP_UMEM_TX_SW_CSUM (1 << 1)  // xdp_umem_reg.flags: the kernel sums in software
#endif
#ifndef XDP_TXMD_FLAGS_CHECKSUM
#define XDP_TXMD_FLAGS_CHECKSUM (1 << 1)
#endif

// The kernel's struct xsk_tx_metadata, as far as checksum offload uses it.
struct TxMetadata {
  uint64_t flags;
  uint16_t csum_start;   // from the packet's first byte
  uint16_t csum_offset;  // from csum_start: where the checksum goes
  uint32_t pad;
  uint64_t launch_time;  // (6.14's XDP_TXMD_FLAGS_LAUNCH_TIME; unused)
};
static_assert(sizeof(TxMetadata) == 24, "struct xsk_tx_metadata's size");
// xdp_umem_reg with 6.8's tx_metadata_len (Debian 12's has no such field).
struct UmemRegV3 {
  uint64_t addr;
  uint64_t len;
  uint32_t chunk_size;
  uint32_t headroom;
  uint32_t flags;
  uint32_t tx_metadata_len;
};

struct BrokerGrant;

class XskPort : public family::Object {
 public:
  // Bytes at the start of every frame that the kernel and drivers never
  // touch (registered as UMEM headroom): the user's per-frame state.
  static constexpr uint32_t kUserHeadroom = 64;
  // Where an outgoing packet starts in its frame: after the user's area and
  // room for encapsulation.
  static constexpr uint32_t kTxHeadroom = 256;

  static int open(const PortConfig& config, std::unique_ptr<XskPort>* out, ErrorText* why);
  // A port on sockets a broker made for this program (rings/broker_client.h):
  // no XDP program or fill ring of its own. Takes the grant's descriptors.
  // `test_hoard_until` (tests only): give no frame back to the broker
  // until that file exists, as a program that leaks frames would.
  static int open_brokered(const std::string& iface, BrokerGrant* grant,
                           std::unique_ptr<XskPort>* out, ErrorText* why,
                           const char* test_hoard_until = nullptr);
  ~XskPort();
  XskPort(const XskPort&) = delete;
  XskPort& operator=(const XskPort&) = delete;

  // ---- receive ----
  // Takes up to `max` received frames off the rx ring.
  inline uint32_t rx_burst(RxFrame* frames, uint32_t max);
  // Gives a frame (any address inside it) back; it is lent to the kernel
  // again at the next refill().
  inline void free_frame(uint64_t addr);
  // Moves free frames onto the fill ring. Returns how many.
  uint32_t refill();
  // refill() once it is due: a quarter of a fill ring's worth of frames
  // received since the last one (each took a fill slot), or the last one
  // could not top every ring up. In between, a poll that received frames
  // leaves the fill rings alone: looking at one reads the kernel's consumer
  // index, a cache line the receiving CPU has just written (about 20 ns of
  // a 64-byte ping-pong's message, and on its critical path).
  uint32_t refill_when_due() { return control_ || refill_due() ? refill() : 0; }

  // ---- transmit ----
  // A free frame to build a packet in, or nullptr when none is free. The
  // packet starts at the returned pointer; *addr is its UMEM address.
  inline uint8_t* alloc_tx(uint64_t* addr);
  // Queues `len` bytes at `addr` (from alloc_tx, or a received frame being
  // sent back) for transmission. False when the tx ring is full; the frame is
  // then still the caller's.
  // `csum_start` (non-zero) asks for the packet's L4 checksum to be
  // completed as it leaves (tx_checksum_offload()): from that byte of the
  // packet to its end, stored `csum_offset` bytes further, where the
  // caller has put the pseudo-header sum (Linux's CHECKSUM_PARTIAL).
  inline bool send(uint64_t addr, uint32_t len, uint16_t csum_start = 0,
                   uint16_t csum_offset = 0);
  // Queues a frame that the caller keeps while it is sent: a TCP segment's
  // data, read into the frame, sent again if it is lost. Its completion
  // does not return it to the pool; free_frame() does (at once, or when a
  // send still in flight completes). False when the tx ring is full or the
  // frame is still in flight from its last send_kept() (the caller then
  // sends a copy); the frame is still the caller's either way.
  inline bool send_kept(uint64_t addr, uint32_t len, uint16_t csum_start = 0,
                        uint16_t csum_offset = 0);
  // The kernel completes L4 checksums of frames sent with csum_start: the
  // UMEM carries transmit metadata (kernel 6.11+) and the port is in copy
  // mode, where the kernel makes each frame an skb with CHECKSUM_PARTIAL,
  // which any device then completes (in hardware, or in software before
  // the driver sees it). Zero-copy would need a driver that implements the
  // request (mlx5, stmmac...) and ignores it otherwise: not used there;
  // nor on a driver whose copy mode builds skbs from UMEM pages
  // (IFF_TX_SKB_NO_LINEAR: virtio_net), a path that ignores the metadata.
  bool tx_checksum_offload() const { return tx_checksum_offload_; }
  // Is the frame holding `addr` in flight from a send_kept()?
  bool kept_in_flight(uint64_t addr) const {
    if (!kept_in_flight_) return false;
    uint64_t i = addr >> umem_.frame_shift();
    return i < kept_state_.size() && (kept_state_[i] & kKeptInFlight);
  }
  // Publishes queued frames and asks the kernel to send them if it wants to
  // be asked (or notes it, with kicks after release). Returns frames still
  // waiting in this process's ring afterwards.
  uint32_t flush();
  // Kicks after the release of the caller's lock: flush() only notes that
  // the kernel must be asked to send, and the thread that releases the
  // lock asks it, outside. In copy mode that system call runs the whole
  // transmission (an skb, a copy, the driver, on veth the receiver's stack
  // too), microseconds every thread and process waiting for the lock paid
  // for. Copy mode only (in zero-copy mode a kick only wakes the driver),
  // not under a broker (its completion ring is the broker's).
  void set_kick_after_release(bool on) { kick_after_release_ = on && !control_ && !zero_copy_; }
  // The noted kick, by a thread that has just released the lock (without
  // it). False when frames are left that only a holder of the lock can get
  // out (the completion ring is full: it must be reaped): the note stays,
  // for the caller to take the lock if it is free and call
  // kick_now_if_noted(), or for the holder's own release.
  bool kick_after_release();
  // Lock held: the noted kick, now (code that needs the frames back). Also
  // when another thread has taken the note and is kicking outside the lock:
  // the kernel serialises the two calls, and this one returns once what was
  // queued is sent, as a flush used to.
  void kick_now_if_noted() {
    uint64_t rings = take_kick_notes();
    if (kick_after_release_)
      for (uint64_t m = tx_used_; m; m &= m - 1)
        if (queues_[__builtin_ctzll(m)].tx.outstanding()) rings |= m & -m;
    each_ring_own_last(rings, [&](uint32_t i) { kick_tx(queues_[i]); });
  }
  // The queue whose tx ring this process transmits on: the n-th served
  // (queues_[0]'s when out of range or without a tx ring, and under a
  // broker). Process memory, not the family's: a forked child is given its
  // own (Runtime::fork_process), so that the processes of a family fill
  // and kick different rings. One ring
  // for all of them made every kick of one wait for another's on the
  // socket's mutex (copy mode transmits inside the kick), 4 % of a forked
  // nginx's CPU spinning there. A process's frames leave in the order it
  // sent them. One connection's segments may leave on two rings (lwIP
  // sends from whichever process holds the lock: the one that took the
  // ACK), and a kick that comes late lets the later ones overtake: the
  // releasing thread kicks the other rings it took notes for first, its
  // own (the newest frames) last.
  static void transmit_on_queue(uint32_t n) { tx_choice_ = n; }
  // The ring for a forked child, the k-th of the family (k from 1): the
  // rings with a transmit queue behind them but queues_[0]'s (the first
  // process's, often a master that forks workers) in turn, or 0.
  uint32_t child_tx_queue(uint32_t k) const {
    const uint64_t others = tx_rings_ & ~uint64_t(1);
    const int count = __builtin_popcountll(others);
    if (count == 0 || control_) return 0;
    uint64_t m = others;
    for (int skip = int((k - 1) % uint32_t(count)); skip > 0; --skip) m &= m - 1;
    return uint32_t(__builtin_ctzll(m));
  }
  // Tests only: this process dies (SIGKILL) in its first kick after a
  // release, holding the note it took, as a process killed there would.
  static void test_die_in_kick() { test_dies_in_kick_ = true; }
  // Brings frames the kernel has finished sending back to the pool.
  uint32_t reap();
  // Lock held, every tenth of a second or so: kicks any tx ring whose
  // frames have waited since the last call. flush() notes only the rings
  // written since the last flush: a ring another process is kicking is
  // left to it. What that leaves behind (a process killed between queueing
  // and kicking, or whose kick gave up) goes out here.
  void kick_stale_rings();

  // ---- state ----
  // The queues' sockets, each readable when a frame arrived on its queue,
  // into out[0..max); returns how many. A sleeper polls them all. (Not one
  // epoll set over them: a socket registered in an epoll set pays the
  // set's callback for every frame it receives, about 0.2 us of a 4 us
  // round trip here, sleeper or not; poll() registers only while it sleeps.)
  int wait_fds(int* out, int max) const {
    int n = 0;
    for (uint32_t i = 0; i < nqueues_ && n < max; ++i) out[n++] = queues_[i].fd;
    return n;
  }
  int ifindex() const { return ifindex_; }
  const std::string& iface() const { return iface_; }
  // The queues served, and how many the interface has.
  uint32_t queue_count() const { return nqueues_; }
  uint32_t queue_id(uint32_t i) const { return queues_[i].id; }
  uint32_t interface_queues() const { return interface_queues_; }
  // "0-3", "0,2": the queues served.
  std::string queue_list() const;
  // Set when the port serves fewer queues than asked because the kernel or
  // driver refused to share the UMEM: why, in one line.
  const std::string& degraded() const { return degraded_; }
  // Frames lent to each queue's fill ring at most.
  uint32_t fill_target() const { return fill_target_; }
  XdpMode xdp_mode() const { return steering_.mode(); }
  // The key of the records the stamping program writes before each frame
  // (steer_rx_meta; the broker's, under a broker); 0: frames carry none.
  uint64_t rx_meta_key() const { return control_ ? brokered_meta_key_ : steering_.rx_meta_key(); }
  // A received frame's hardware stamp (ns, the NIC's clock), 0 when it has
  // none. `data`: RxFrame::data of the packet's first frame. The record is
  // used up: a later frame in the same chunk that comes without one (the
  // driver refused the metadata) cannot pass this one's for its own.
  uint64_t rx_hw_stamp(uint8_t* data) const {
    const uint64_t key = rx_meta_key();
    if (!key) return 0;
    steer_rx_meta m;
    memcpy(&m, data - sizeof m, sizeof m);
    if (m.key != key) return 0;
    memset(data - sizeof m, 0, sizeof m);
    return m.hw_stamp;
  }
  bool zero_copy() const { return zero_copy_; }
  // Packets larger than a frame arrive in several frames (XDP_USE_SG).
  bool multi_buffer() const { return multi_buffer_; }
  const Umem& umem() const { return umem_; }
  uint32_t free_frames() const { return pool_.size(); }
  // Frames the caller holds: received and not freed, or allocated for tx and
  // neither sent nor freed.
  uint32_t held_frames() const { return held_; }
  uint32_t frame_count() const { return umem_.frame_count(); }
  // Frames this port may hold: the UMEM's, or a broker's program's quota.
  uint32_t frame_budget() const { return control_ ? quota_ : umem_.frame_count(); }
  // Frames lent to the kernel for reception, received and waiting, and
  // queued for transmission or completion: with free_frames() and
  // held_frames(), every frame of the UMEM (once the kernel is idle).
  uint32_t fill_frames() const;
  uint32_t rx_frames_waiting() const;  // received, not yet taken by rx_burst()
  uint32_t tx_frames_in_flight() const;
  // A broker's program whose last kick found the shared completion ring
  // full: its frames wait in the tx ring until the broker has emptied it
  // and someone kicks again (the caller should, within a millisecond).
  bool tx_blocked() const { return tx_blocked_; }
  // Nothing to do for a poll on the receive side: no frame waiting on any
  // queue, and no refill due (a poll refills). Any thread, without the
  // port's lock: a hint for a spinning caller deciding whether to poll. It
  // reads the rx rings' producer indexes and our own refill bookkeeping,
  // not the fill rings' consumer indexes, which the kernel writes as frames
  // arrive (a cache miss per queue in every empty call).
  bool rx_quiet() const {
    for (uint32_t i = 0; i < nqueues_; ++i)
      if (queues_[i].rx.unreleased() != 0) return false;
    // A broker's program has no fill ring: the broker keeps them stocked.
    return control_ || !refill_due();
  }
  XdpSteering& steering() { return steering_; }

  // ---- a broker's own port (PortConfig::broker_owner) ----
  int queue_fd(uint32_t i) const { return queues_[i].fd; }
  FillRing& fill_ring(uint32_t i) { return queues_[i].fill; }
  CompletionRing& completion_ring(uint32_t i) { return queues_[i].comp; }
  RxRing& rx_ring(uint32_t i) { return queues_[i].rx; }

  // ---- a broker's program ----
  bool brokered() const { return control_ != nullptr; }
  int broker_conn() const { return broker_conn_; }
  // The broker hung up: its XDP program went with it, nothing reaches our
  // sockets any more; claims fail from now on. Our sockets are closed (a
  // restarted broker could not bind the queues while they hold them) and
  // the port serves no queue; its rings' memory is replaced by zeroed
  // memory rather than unmapped, so that a lock-free reader (rx_quiet())
  // racing with this reads zeros, not a hole. Lock held.
  void broker_lost();
  // Steers (proto, port) to this port: the XDP map when the port owns the
  // interface, the broker (shown `backing_fd`, which holds the port in the
  // kernel) when it is a broker's program.
  int steer(uint8_t proto, uint16_t port, int backing_fd, ErrorText* why);
  void unsteer(uint8_t proto, uint16_t port);
  // A steered port shared with a kernel socket: only the flows listed go to
  // this port (XdpSteering::share_port; a broker's program asks the broker).
  int share_port(uint8_t proto, uint16_t port, bool shared);
  // XdpSteering::share_group_frames; -EOPNOTSUPP for a broker's program
  // (the broker has no message for it yet).
  int share_group_frames(uint16_t udp_port, bool shared);
  int add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip, uint16_t remote_port_be,
               uint8_t whose = STEER_FLOW_STACK);
  // 0 also when the flow was not listed (the XDP program unlists a flow
  // whose addresses a new SYN reuses).
  int remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                  uint16_t remote_port_be);
  // A broker's program: one of its connections built by the broker
  // (broker_handover, broker::HandoverMsg).
  int handover(uint8_t step, const RepairState& state, const uint8_t* in, const uint8_t* out,
               int* conn_fd, ErrorText* why);

  PortCounters& counters() { return *counters_; }
  // Where counters are kept (a shared-memory segment, for xdpload-stat).
  // The current values move with them.
  void place_counters(PortCounters* c) {
    *c = *counters_;
    counters_ = c;
  }
  // The family's last process, at its very end, alone with its progress
  // thread (parked): lets go of the XDP link and every AF_XDP socket at
  // once, from one thread each. The kernel releases each of them behind an
  // RCU grace period (xsk_release, the link's detach from the driver); left
  // to exit_group they come one after another, 70 ms for 4 queues on this
  // VM, which the program's parent waits for. Ring memory is replaced by
  // zeroed memory, not unmapped: a stray late call reads an empty ring. The
  // port serves nothing afterwards. Not for a broker's program (its sockets
  // are the broker's). Lock held.
  void release_at_exit();
  // In a forked child: closes this process's copies of the AF_XDP sockets
  // and the XDP link without touching the rings, which the parent still uses.
  void abandon();
  // Reads the kernel's per-socket statistics and the steering program's
  // per-queue counts into the counters.
  void refresh_kernel_stats();
  // Human-readable mode: "driver/copy", "skb/copy", "driver/zero-copy".
  std::string mode_string() const;

 private:
  // One AF_XDP socket, bound to one receive queue.
  struct Queue {
    uint32_t id = 0;  // the interface's queue number
    int fd = -1;
    FillRing fill;
    CompletionRing comp;
    RxRing rx;
    TxRing tx;  // queues_[0]'s, and each other socket's with a transmit queue (tx_rings_)
    const uint32_t* tx_consumer_ptr() const { return tx.consumer_index(); }
    uint32_t tx_consumed_at_look = 0;  // kick_stale_rings()' last look
    bool tx_waiting_at_look = false;
    void* maps[4] = {};
    size_t map_len[4] = {};
  };

  XskPort() = default;
  int setup(const PortConfig& config, ErrorText* why);
  int choose_queues(const PortConfig& config, std::vector<uint32_t>* ids, ErrorText* why);
  static bool builds_tx_skbs_from_umem_pages(const std::string& iface);
  static uint32_t count_tx_queues(const std::string& iface);
  int make_socket(Queue& q, bool owns_umem, uint32_t ring_size, ErrorText* why);
  int map_rings(Queue& q, uint32_t size, bool fill_comp, bool tx, ErrorText* why);
  int bind_owner(XdpMode mode, ErrorText* why);
  int bind_shared(Queue& q);
  void close_queue(Queue& q);
  // One job of release_at_exit: -1 the steering, else queue `what`.
  void release_one(int what);
  uint32_t rx_burst_queue(Queue& q, QueueCounters& qc, RxFrame* frames, uint32_t max);
  void kick_tx(Queue& q);
  // This process's transmit queue (transmit_on_queue()); 0 under a broker,
  // whose programs have one tx ring each.
  uint32_t tx_queue() const {
    return control_ || tx_choice_ >= nqueues_ || !((tx_rings_ >> tx_choice_) & 1) ? 0 : tx_choice_;
  }
  // f(i) for each ring i in `rings`, this process's last: the others' frames
  // were queued before its own (transmit_on_queue() says why it matters).
  template <typename F>
  void each_ring_own_last(uint64_t rings, F f) const {
    const uint64_t own = uint64_t(1) << tx_queue();
    for (uint64_t m = rings & ~own; m; m &= m - 1) f(uint32_t(__builtin_ctzll(m)));
    if (rings & own) f(tx_queue());
  }
  // Sends what waits on a ring with one system call (kick_stale_rings).
  void kick_once(Queue& q);
  static inline uint32_t tx_choice_ = 0;  // (a static: each process's own)
  static inline bool test_dies_in_kick_ = false;
  int adopt_broker_sockets(BrokerGrant* g, ErrorText* why);
  // A broker's program: gives frames beyond its keep back, takes what the
  // broker gave.
  uint32_t trade_with_broker();
  // A broker's program in copy mode: frames whose descriptors the kernel
  // has consumed from our tx ring (their data is copied by then) go back to
  // the pool; the completion ring, shared by every program on the queue,
  // is the broker's (tools/broker/broker.h says why its addresses are not
  // used).
  uint32_t reclaim_sent();
  void wake_broker();
  // A frame whose transmission completed (any of the three ways it comes
  // back): to the pool, unless its sender keeps it (send_kept()).
  inline void sent_frame_done(uint64_t addr);
  // Reserves a tx ring slot for one descriptor (send() and send_kept()).
  inline bool queue_tx(uint64_t addr, uint32_t len, uint16_t csum_start, uint16_t csum_offset);

  std::string iface_;
  int ifindex_ = 0;
  uint32_t interface_queues_ = 0;
  Queue queues_[kMaxQueues];
  uint32_t nqueues_ = 0;
  uint32_t next_rx_ = 0;      // the queue rx_burst() looks at first (round robin)
  uint32_t next_fill_ = 0;    // the queue refill() tops up first (round robin)
  uint32_t fill_target_ = 0;
  uint32_t rx_since_refill_ = 0;  // frames received since refill() (refill_when_due)
  uint32_t refill_batch() const { return fill_target_ >= 4 ? fill_target_ / 4 : 1; }
  // What refill_when_due() and rx_quiet() ask (the latter without the lock).
  bool refill_due() const {
    return __atomic_load_n(&refill_short_, __ATOMIC_RELAXED) ||
           __atomic_load_n(&rx_since_refill_, __ATOMIC_RELAXED) >= refill_batch();
  }
  bool refill_short_ = false;     // refill() left some ring below fill_target_
  std::string degraded_;
  bool zero_copy_ = false;
  bool allow_zero_copy_ = true;
  bool multi_buffer_ = false;
  bool tx_metadata_ = false;  // the UMEM was registered with TxMetadata room
  bool tx_checksum_offload_ = false;
  bool copy_mode_ignores_tx_metadata_ = false;  // the driver builds skbs from UMEM pages
  Umem umem_;
  FramePool pool_;
  uint32_t tx_unsubmitted_ = 0;  // descriptors reserved on tx rings, not yet published
  uint64_t tx_dirty_ = 0;        // the rings that hold them (a bit per queue)
  uint64_t tx_used_ = 0;         // the rings ever transmitted on: reaped, counted
  uint64_t tx_rings_ = 0;        // the sockets with a tx ring (a transmit queue behind them)
  uint32_t tx_queues_ = 0;       // the interface's transmit queues (count_tx_queues)
  uint32_t held_ = 0;
  XdpSteering steering_;
  PortCounters own_counters_;
  PortCounters* counters_ = &own_counters_;
  // A broker's program: the shared control segment, the connection, the
  // broker's wake eventfd, our slot, and how many free frames we keep.
  broker::Control* control_ = nullptr;
  size_t control_bytes_ = 0;
  int broker_conn_ = -1;
  // The last request's number on broker_conn_ (broker_client.h). Here, in
  // the family's memory, as the connection is every member's: a number is
  // never used twice, whichever process asks.
  uint32_t broker_seq_ = broker::kHelloSeq;
  uint32_t next_broker_seq() { return ++broker_seq_; }
  int broker_kick_fd_ = -1;
  uint32_t slot_ = 0;
  uint32_t keep_frames_ = 0;
  bool driver_mode_ = false;
  uint64_t brokered_meta_key_ = 0;  // Welcome::rx_meta_key
  bool broker_gone_ = false;
  bool tx_blocked_ = false;
  bool kick_after_release_ = false;
  // Rings to kick after release, a bit per queue (atomic: set under the
  // lock, taken after release).
  uint64_t kick_noted_ = 0;
  // Takes the notes, if there are any (any thread; only one of them gets
  // each).
  uint64_t take_kick_notes() {
    return __atomic_load_n(&kick_noted_, __ATOMIC_RELAXED)
               ? __atomic_exchange_n(&kick_noted_, 0, __ATOMIC_ACQ_REL)
               : 0;
  }
  void note_kick(uint64_t rings) { __atomic_fetch_or(&kick_noted_, rings, __ATOMIC_RELEASE); }
  uint32_t quota_ = 0;
  char test_hoard_until_[128] = {};
  uint32_t returned_since_kick_ = 0;
  uint64_t rx_at_kick_ = 0;      // counters_->rx_frames when the broker was last woken
  uint32_t kick_after_rx_ = 32;  // half the broker's fill target
  // Copy mode under a broker: the frame sent at each tx ring index, and how
  // far the kernel's consumption has been reclaimed.
  bool reclaim_on_consume_ = false;
  family::vector<uint64_t> tx_sent_;
  uint32_t tx_reclaimed_ = 0;
  // Frames sent with send_kept(), per frame number (sized at the first):
  // kKeptInFlight while the kernel has it, kKeptByCaller while the caller
  // has not freed it. A frame in flight is not counted in held_.
  static constexpr uint8_t kKeptInFlight = 1, kKeptByCaller = 2;
  family::vector<uint8_t> kept_state_;
  uint32_t kept_in_flight_ = 0;  // frames with kKeptInFlight (0: skip the lookups)
};

// ---- hot path, inline ----

inline uint32_t XskPort::rx_burst_queue(Queue& q, QueueCounters& qc, RxFrame* frames,
                                        uint32_t max) {
  uint32_t idx;
  uint32_t n = q.rx.peek(max, &idx);
  if (!n) return 0;
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc& d = q.rx.at(idx + i);
    frames[i] = RxFrame{d.addr, d.len, umem_.data(d.addr), (d.options & XDP_PKT_CONTD) != 0};
    bytes += d.len;
  }
  q.rx.release(n);
  qc.rx_frames += n;
  counters_->rx_bytes += bytes;
  return n;
}

inline uint32_t XskPort::rx_burst(RxFrame* frames, uint32_t max) {
  // Every queue, starting one further each call so that a busy queue cannot
  // starve the others of the budget. An empty queue costs one load of its
  // producer index. A packet in several frames (`more`) never spans queues:
  // its frames are consecutive on one rx ring, and a queue's burst is taken
  // whole, up to `max`; a burst cut short by `max` resumes on the same queue
  // next call because the loop starts there only when it had room left.
  uint32_t got = 0;
  uint32_t start = next_rx_;
  for (uint32_t k = 0; k < nqueues_ && got < max; ++k) {
    uint32_t i = start + k;
    if (i >= nqueues_) i -= nqueues_;
    uint32_t n = rx_burst_queue(queues_[i], counters_->queue[i], frames + got, max - got);
    got += n;
    if (got == max && n) {
      // Out of budget inside this queue: it may hold the rest of a packet.
      next_rx_ = i;
      break;
    }
    next_rx_ = i + 1 == nqueues_ ? 0 : i + 1;
  }
  held_ += got;
  rx_since_refill_ += got;
  counters_->rx_frames += got;
  if (got) trace::mark(trace::kRxFrames);
  return got;
}

inline void XskPort::free_frame(uint64_t addr) {
  if (kept_in_flight_) {
    uint64_t i = addr >> umem_.frame_shift();
    if (i < kept_state_.size() && (kept_state_[i] & kKeptInFlight)) {
      // Still being sent: it goes to the pool when the send completes (it
      // left held_ when it was queued).
      kept_state_[i] = kKeptInFlight;
      return;
    }
  }
  if (pool_.free(umem_.frame_of(addr))) {
    --held_;
  } else {
    ++counters_->bad_frees;
  }
}

inline uint8_t* XskPort::alloc_tx(uint64_t* addr) {
  uint64_t frame;
  if (!pool_.alloc(&frame)) {
    kick_now_if_noted();  // (frames sent and not yet kicked come back once kicked)
    reap();
    if (!pool_.alloc(&frame)) {
      if (control_) {
        __atomic_store_n(&control_->wants_frames, 1, __ATOMIC_RELEASE);
        wake_broker();
      }
      ++counters_->tx_no_frame;
      return nullptr;
    }
  }
  ++held_;
  *addr = frame + kTxHeadroom;
  return umem_.data(*addr);
}

// A process transmits through one socket (tx_queue(): the UMEM owner's,
// queues_[0], unless it is a forked child given another): one tx ring means
// one kick per flush however many queues receive, and frames leave in the
// order the stack sent them (a retransmission cannot overtake the segment
// before it on another ring). Which transmit queue a frame leaves on does
// not decide where the peer receives it: the receiver's own hash does.
// With one thread polling the whole port, spreading one process's
// transmission over queues would buy nothing but more system calls.
inline bool XskPort::send(uint64_t addr, uint32_t len, uint16_t csum_start,
                          uint16_t csum_offset) {
  if (!queue_tx(addr, len, csum_start, csum_offset)) return false;
  --held_;
  return true;
}

inline bool XskPort::send_kept(uint64_t addr, uint32_t len, uint16_t csum_start,
                               uint16_t csum_offset) {
  uint64_t i = addr >> umem_.frame_shift();
  if (kept_state_.empty()) kept_state_.assign(umem_.frame_count(), 0);
  if (i >= kept_state_.size() || (kept_state_[i] & kKeptInFlight)) return false;
  if (!queue_tx(addr, len, csum_start, csum_offset)) return false;
  kept_state_[i] = kKeptInFlight | kKeptByCaller;
  ++kept_in_flight_;
  --held_;
  return true;
}

inline void XskPort::sent_frame_done(uint64_t addr) {
  if (kept_in_flight_) {
    uint64_t i = addr >> umem_.frame_shift();
    if (i < kept_state_.size() && (kept_state_[i] & kKeptInFlight)) {
      --kept_in_flight_;
      if (kept_state_[i] & kKeptByCaller) {
        kept_state_[i] = kKeptByCaller;  // the caller's again, to send once more
        ++held_;
        return;
      }
      kept_state_[i] = 0;
    }
  }
  if (!pool_.free(umem_.frame_of(addr))) ++counters_->bad_frees;
}

inline bool XskPort::queue_tx(uint64_t addr, uint32_t len, uint16_t csum_start,
                              uint16_t csum_offset) {
  const uint32_t qi = tx_queue();
  Queue& q = queues_[qi];
  uint32_t idx;
  if (!q.tx.reserve(1, &idx)) {
    // The kernel has not consumed what we queued: let it, then retry once.
    flush();
    kick_now_if_noted();
    if (!q.tx.reserve(1, &idx)) {
      ++counters_->tx_ring_full;
      return false;
    }
  }
  uint32_t options = 0;
  if (csum_start && tx_checksum_offload_) {
    // (Every transmit packet starts at least kTxHeadroom into its frame, a
    // received one further: the metadata's room is always in the frame.)
    TxMetadata m{XDP_TXMD_FLAGS_CHECKSUM, csum_start, csum_offset, 0, 0};
    memcpy(umem_.data(addr) - sizeof m, &m, sizeof m);
    options = XDP_TX_METADATA;
  }
  q.tx.at(idx) = xdp_desc{addr, len, options};
  if (reclaim_on_consume_) {
    // The slot's previous frame must be reclaimed before its record goes.
    if (idx - tx_reclaimed_ >= q.tx.size()) reclaim_sent();
    tx_sent_[idx & (q.tx.size() - 1)] = addr;
  }
  ++tx_unsubmitted_;
  tx_dirty_ |= uint64_t(1) << qi;
  tx_used_ |= uint64_t(1) << qi;
  ++counters_->tx_frames;
  ++counters_->queue[qi].tx_frames;
  counters_->tx_bytes += len;
  return true;
}

}  // namespace xdpload::rings
