// XskPort: one AF_XDP socket bound to one queue of one interface, with its
// UMEM, its four rings, a pool of free frames and the XDP program that steers
// our ports to it.
//
// Frame ownership: every UMEM frame is at any time in exactly one place: the
// pool, the fill ring, the rx ring (kernel side), with the caller (received,
// or being built for tx), the tx ring, or the completion ring. rx_burst() hands
// frames to the caller, who gives them back with free_frame(); send() hands a
// frame from the caller to the tx ring; reap() brings completed ones back.
//
// Not thread-safe: the owner (a Stack, a test) serializes calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rings/error_text.h"
#include "rings/frame_pool.h"
#include "rings/port_counters.h"
#include "rings/ring.h"
#include "rings/steering.h"
#include "rings/umem.h"

namespace xdpload::rings {

struct PortConfig {
  std::string iface;
  uint32_t queue = 0;
  UmemConfig umem;
  uint32_t ring_size = 2048;  // rx, tx, fill and completion; a power of two
  XdpMode mode = XdpMode::Auto;
  bool allow_zero_copy = true;
  // The interface MTU, for the steering program (0: unknown, no UDP limit).
  uint32_t mtu = 0;
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

class XskPort {
 public:
  // Bytes at the start of every frame that the kernel and drivers never
  // touch (registered as UMEM headroom): the user's per-frame state.
  static constexpr uint32_t kUserHeadroom = 64;
  // Where an outgoing packet starts in its frame: after the user's area and
  // room for encapsulation.
  static constexpr uint32_t kTxHeadroom = 256;

  static int open(const PortConfig& config, std::unique_ptr<XskPort>* out, ErrorText* why);
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

  // ---- transmit ----
  // A free frame to build a packet in, or nullptr when none is free. The
  // packet starts at the returned pointer; *addr is its UMEM address.
  inline uint8_t* alloc_tx(uint64_t* addr);
  // Queues `len` bytes at `addr` (from alloc_tx, or a received frame being
  // sent back) for transmission. False when the tx ring is full; the frame is
  // then still the caller's.
  inline bool send(uint64_t addr, uint32_t len);
  // Publishes queued frames and asks the kernel to send them if it wants to
  // be asked. Returns frames still waiting in the ring afterwards.
  uint32_t flush();
  // Brings frames the kernel has finished sending back to the pool.
  uint32_t reap();

  // ---- state ----
  int fd() const { return fd_; }
  int ifindex() const { return ifindex_; }
  const std::string& iface() const { return iface_; }
  uint32_t queue() const { return queue_; }
  XdpMode xdp_mode() const { return steering_.mode(); }
  bool zero_copy() const { return zero_copy_; }
  // Packets larger than a frame arrive in several frames (XDP_USE_SG).
  bool multi_buffer() const { return multi_buffer_; }
  const Umem& umem() const { return umem_; }
  uint32_t free_frames() const { return pool_.size(); }
  // Frames the caller holds: received and not freed, or allocated for tx and
  // neither sent nor freed.
  uint32_t held_frames() const { return held_; }
  uint32_t frame_count() const { return umem_.frame_count(); }
  uint32_t tx_pending() const { return tx_.outstanding(); }
  bool rx_ready() { return rx_.available(1) != 0; }
  // Nothing to do for a poll on the receive side: no frame waiting, and the
  // fill ring well stocked (a poll refills it). Any thread, without the
  // port's lock: a hint for a spinning caller deciding whether to poll.
  bool rx_quiet() const { return rx_.unreleased() == 0 && fill_.published() >= fill_.size() / 2; }
  XdpSteering& steering() { return steering_; }

  PortCounters& counters() { return *counters_; }
  // Where counters are kept (a shared-memory segment, for xdpload-stat).
  // The current values move with them.
  void place_counters(PortCounters* c) {
    *c = *counters_;
    counters_ = c;
  }
  // In a forked child: closes this process's copies of the AF_XDP socket and
  // the XDP link without touching the rings, which the parent still uses.
  void abandon();
  // Reads the kernel's per-socket statistics into the counters.
  void refresh_kernel_stats();
  // Human-readable mode: "driver/copy", "skb/copy", "driver/zero-copy".
  std::string mode_string() const;

 private:
  XskPort() = default;
  int setup(const PortConfig& config, ErrorText* why);
  int map_rings(uint32_t size, ErrorText* why);
  int bind_socket(XdpMode mode, ErrorText* why);
  void kick_tx();

  std::string iface_;
  int ifindex_ = 0;
  uint32_t queue_ = 0;
  int fd_ = -1;
  bool zero_copy_ = false;
  bool allow_zero_copy_ = true;
  bool multi_buffer_ = false;
  Umem umem_;
  FramePool pool_;
  FillRing fill_;
  CompletionRing comp_;
  RxRing rx_;
  TxRing tx_;
  void* ring_maps_[4] = {};
  size_t ring_map_len_[4] = {};
  uint32_t tx_unsubmitted_ = 0;
  uint32_t held_ = 0;
  XdpSteering steering_;
  PortCounters own_counters_;
  PortCounters* counters_ = &own_counters_;
};

// ---- hot path, inline ----

inline uint32_t XskPort::rx_burst(RxFrame* frames, uint32_t max) {
  uint32_t idx;
  uint32_t n = rx_.peek(max, &idx);
  if (!n) return 0;
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc& d = rx_.at(idx + i);
    frames[i] = RxFrame{d.addr, d.len, umem_.data(d.addr), (d.options & XDP_PKT_CONTD) != 0};
    bytes += d.len;
  }
  rx_.release(n);
  held_ += n;
  counters_->rx_frames += n;
  counters_->rx_bytes += bytes;
  return n;
}

inline void XskPort::free_frame(uint64_t addr) {
  if (pool_.free(umem_.frame_of(addr))) {
    --held_;
  } else {
    ++counters_->bad_frees;
  }
}

inline uint8_t* XskPort::alloc_tx(uint64_t* addr) {
  uint64_t frame;
  if (!pool_.alloc(&frame)) {
    reap();
    if (!pool_.alloc(&frame)) {
      ++counters_->tx_no_frame;
      return nullptr;
    }
  }
  ++held_;
  *addr = frame + kTxHeadroom;
  return umem_.data(*addr);
}

inline bool XskPort::send(uint64_t addr, uint32_t len) {
  uint32_t idx;
  if (!tx_.reserve(1, &idx)) {
    // The kernel has not consumed what we queued: let it, then retry once.
    flush();
    if (!tx_.reserve(1, &idx)) {
      ++counters_->tx_ring_full;
      return false;
    }
  }
  tx_.at(idx) = xdp_desc{addr, len, 0};
  --held_;
  ++tx_unsubmitted_;
  ++counters_->tx_frames;
  counters_->tx_bytes += len;
  return true;
}

}  // namespace xdpload::rings
