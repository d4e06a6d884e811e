// LinkNetif: the lwIP network interface driver over a Link.
//
// In: frames become custom pbufs that point into the frame itself (no copy);
// freeing the pbuf gives the frame back to the link. A packet larger than a
// frame (a GRO or GSO super-packet seen by generic XDP) arrives in several
// frames and becomes a pbuf chain. TCP and UDP checksums are
// verified here (lwIP's own check is off) so that partial checksums can be
// accepted on a link that has no wire.
//
// Out: lwIP hands us IP packets with a destination; the next hop comes from
// the kernel's routes and its MAC from the kernel's neighbour table. A packet
// whose neighbour is not resolved yet waits (a few, for a few seconds) while
// the kernel resolves it. Frames are copied into a transmit frame, except
// packets built in one (UDP) and TCP segments whose data was read into one
// (sendfile): those go from where they lie.
//
// Every method is called with the CoreLock held.
#pragma once

#include "family/arena.h"
#include <cstdint>
#include <ctime>
#include <sys/uio.h>
#include <unordered_map>
#include <vector>

#include "rings/error_text.h"
#include "stack/kernel_routes.h"
#include "stack/link.h"
#include "stack/neighbours.h"
#include "stack/netif_counters.h"
#include "stack/netlink.h"

extern "C" {
#include "lwip/netif.h"
#include "lwip/pbuf.h"
}

namespace xdpload::stack {

struct NetifAddress {
  uint32_t addr = 0;     // network order
  uint32_t netmask = 0;  // network order
  uint32_t gateway = 0;  // used only without a kernel behind (tests)
  uint32_t mtu = 1500;
  uint8_t mac[6] = {};
  // Frames may carry partial TCP/UDP checksums (a link without a wire).
  bool accept_partial_checksums = false;
};


class LinkNetif {
 public:
  LinkNetif() = default;
  ~LinkNetif();
  LinkNetif(const LinkNetif&) = delete;
  LinkNetif& operator=(const LinkNetif&) = delete;

  // Adds the interface to lwIP. kernel_ifindex != 0: next hops follow that
  // kernel interface's routes and neighbours.
  int open(Link* link, const NetifAddress& address, int kernel_ifindex, ErrorText* why);

  // Feeds up to `budget` received frames to lwIP; returns how many.
  uint32_t input(uint32_t budget, uint64_t now_ms);
  // A pbuf for `len` bytes of UDP payload that lives in a transmit frame,
  // with room in front for the UDP, IP and Ethernet headers: lwIP builds the
  // packet in place and it goes to the link without a copy. nullptr when the
  // link cannot (no scratch area, no free frame, too long): the caller
  // allocates an ordinary pbuf.
  struct pbuf* alloc_tx_pbuf(uint16_t len);
  // A pbuf for up to `max` bytes of one TCP segment's data that lives in a
  // transmit frame, behind room for the headers. The caller fills it (a
  // file read straight into it), trims it to what it holds (pbuf_realloc)
  // and gives it to tcp_write_pbuf(); each time lwIP sends the segment, the
  // headers are written in front of the data and the frame goes as it is.
  // The frame is the segment's until lwIP frees the pbuf. nullptr when the
  // link cannot (no scratch area, no free frame, a frame too small).
  struct pbuf* alloc_tcp_data_pbuf(uint16_t max);
  // Room in front of such data for the Ethernet, IP and TCP headers.
  static constexpr uint32_t kSegmentHeadroom = 128;
  // The UDP fast path (link_netif_udp.cc): a unicast datagram that fits one
  // frame, its headers written here rather than by udp_sendto and
  // ip4_output (the same headers). False, with nothing sent, when it needs
  // lwIP: broadcast or multicast, too long, no free frame, a next hop not
  // resolved yet, a transmit tap set; the caller then sends through lwIP.
  struct UdpHeaderFields {
    uint32_t src_ip, dst_ip;      // network order
    uint16_t src_port, dst_port;  // host order
    uint8_t ttl, tos;
    bool checksum;  // false: UDP_FLAGS_NOCHKSUM (SO_NO_CHECK)
    bool dont_fragment = false;  // DF (IP_PMTUDISC_DO, _PROBE)
  };
  bool send_udp(const UdpHeaderFields& h, const iovec* iov, int iovcnt, size_t len);
  // DF on the IPv4 packets lwIP hands to output() while set (lwIP never
  // sets it): a UDP socket sets it around its own udp_sendto when the
  // program asked for DF (IP_PMTUDISC_DO or _PROBE, which also keep its
  // datagrams within one frame: never fragmented).
  void set_dont_fragment(bool on) { dont_fragment_ = on; }
  // Applies the kernel's neighbour and route changes; sends held packets
  // whose neighbour became known.
  void kernel_events();
  // Housekeeping at least every 100 ms: held packets expire, neighbours in
  // use are re-confirmed.
  void periodic(uint64_t now_ms);
  // A TCP connection handed to the kernel with its state (shim
  // tcp_handover.cc): the XDP program sends its frames to the kernel from
  // now on, but those already in the receive rings must not reach lwIP,
  // which no longer knows the connection and would reset it. They are
  // dropped for a second (the peer sends them again, to the kernel).
  // Network order. At most kForgottenFlows at once (the oldest goes).
  void forget_tcp_flow(uint32_t remote_ip, uint16_t remote_port, uint16_t local_port);
  static constexpr uint32_t kForgottenFlows = 8;
  // A process killed holding the CoreLock may have held frames that are in
  // no ring, pool or pbuf: the rest of a receive burst not yet given to
  // lwIP, a transmit frame it was filling. Each is noted here (in the
  // family's memory) while held; the next holder of the lock gives them
  // back. Returns how many. Lock held.
  uint32_t recover_frames_in_hand();
  // Transmit-data frames (alloc_tcp_data_pbuf) a send is filling, each
  // noted as it is taken, until lwIP has queued them (settled):
  // recover_frames_in_hand() gives them back if the process dies
  // meanwhile. At most kMaxDataInHand at a time.
  static constexpr int kMaxDataInHand = 16;
  void data_frame_in_hand(struct pbuf* p);
  void data_frames_settled() { data_in_hand_n_ = 0; }
  // Test seam (XL_TEST_DIE_HOLDING_LOCK=-2): this process dies by SIGKILL
  // inside the next receive burst of more than one frame, once the first
  // is lwIP's. Per process.
  static void set_test_die_in_burst(bool on);
  // Packets waiting for a neighbour: the caller should watch kernel events.
  bool holding() const { return !held_.empty(); }
  // Readable when the kernel reports a change (-1 without a kernel).
  int events_fd() const { return events_.fd(); }

  // Software receive timestamps (SO_TIMESTAMP*, SOF_TIMESTAMPING_RX_SOFTWARE):
  // read once per burst, right after its frames leave the receive ring and
  // before lwIP sees them, while any socket wants them (Linux too stamps
  // every packet once some socket has asked). rx_stamp() is the stamp of the
  // burst being fed to lwIP ({0, 0}: none taken); valid inside input().
  using RxClock = void (*)(timespec*);
  void set_rx_clock(RxClock clock) { rx_clock_ = clock; }
  void add_rx_stamp_users(int delta) { rx_stamp_users_ += delta; }
  const timespec& rx_stamp() const { return rx_stamp_; }
  // Hardware receive stamps (SOF_TIMESTAMPING_RAW_HARDWARE): the NIC's, as
  // the steering program found them (XDPLOAD_HW_STAMPS). Read for every
  // packet when the link has them, as a NIC stamps every packet once
  // configured: a datagram queued before its socket asked has one too.
  // rx_hw_stamp() is the packet's being fed to lwIP ({0, 0}: none).
  bool rx_hw_stamps() const { return link_->rx_hw_stamps(); }
  const timespec& rx_hw_stamp() const { return rx_hw_stamp_; }

  // Transmit timestamps (SOF_TIMESTAMPING_TX_SOFTWARE): while a tap is set,
  // every frame handed to the transmit ring is shown to it, with the time
  // it was handed (the receive clock). The sending socket sets it around
  // its own output.
  using TxTap = void (*)(void* ctx, const uint8_t* frame, uint32_t len, const timespec& stamp);
  // A packet sent while the tap is set that must wait for its neighbour to
  // be resolved: the tap's owner is told (and returns a cookie), and the
  // tap sees the frame when it finally goes, with flushing_held() true and
  // held_cookie() that cookie. forget_tap_ctx(): the owner is gone.
  using TxHeld = uint64_t (*)(void* ctx);
  void set_tx_tap(TxTap tap, void* ctx, TxHeld held = nullptr) {
    tx_tap_ = tap;
    tx_tap_ctx_ = ctx;
    tx_held_ = held;
  }
  bool flushing_held() const { return flushing_held_; }
  uint64_t held_cookie() const { return held_cookie_; }
  void forget_tap_ctx(const void* ctx) {
    for (Held& h : held_)
      if (h.tap_ctx == ctx) h.tap = nullptr, h.tap_ctx = nullptr;
  }
  // A standing watch on the same frames (TCP transmit stamps: a
  // connection's segments leave whenever lwIP sends them, not only inside
  // the program's send), set while some connection waits for one.
  void set_tx_watch(TxTap watch, void* ctx) {
    tx_watch_ = watch;
    tx_watch_ctx_ = ctx;
  }
  // The time as the taps and receive stamps read it (REALTIME).
  void read_clock(timespec* ts) const {
    *ts = timespec{};
    if (rx_clock_) rx_clock_(ts);
  }

  struct netif* nif() { return &nif_; }
  Link* link() { return link_; }
  NeighbourTable& neighbours() { return neighbours_; }
  KernelRoutes* routes() { return kernel_ifindex_ ? &routes_ : nullptr; }
  const NetifAddress& address() const { return address_; }
  NetifCounters& counters() { return *counters_; }
  // Where counters are kept (a shared-memory segment); values move with them.
  void place_counters(NetifCounters* c) {
    *c = *counters_;
    counters_ = c;
  }

 private:
  static err_t init_cb(struct netif* n);
  static err_t output_cb(struct netif* n, struct pbuf* p, const ip4_addr_t* dst);
  static err_t linkoutput_cb(struct netif* n, struct pbuf* p);
  static void rx_pbuf_free(struct pbuf* p);
  static void tx_pbuf_free(struct pbuf* p);
  static void tcp_data_free(struct pbuf* p);

  void input_packet(const LinkFrame* frames, uint32_t count);
  void drop_chain();
  err_t output(struct pbuf* p, uint32_t dst);
  err_t linkoutput(struct pbuf* p);
  // lwIP leaves TCP checksums to the driver (lwipopts.h): completes the
  // one of the TCP segment in `frame`, or has the link complete it.
  TxChecksum finish_tcp_checksum(uint8_t* frame, uint32_t len);
  bool next_hop(uint32_t dst, uint32_t* hop);
  // The limited broadcast or the interface's subnet broadcast (network order).
  bool broadcast(uint32_t dst) const;
  void hold(struct pbuf* p, uint32_t hop);
  void send_held();

  struct Held {
    uint32_t hop;
    struct pbuf* p;
    uint64_t since_ms;
    TxTap tap = nullptr;  // the transmit tap set when it was held, if any
    void* tap_ctx = nullptr;
    uint64_t cookie = 0;
  };

  struct netif nif_ {};
  bool added_ = false;
  Link* link_ = nullptr;
  NetifAddress address_;
  int kernel_ifindex_ = 0;
  NeighbourTable neighbours_;
  KernelRoutes routes_;
  Netlink events_;
  family::unordered_map<uint32_t, uint32_t> route_cache_;  // destination -> next hop
  family::vector<Held> held_;
  // Frames of a packet whose last frame has not arrived yet. A 64 KiB
  // super-packet in frames of 2 KiB minus headroom needs at most 40.
  static constexpr uint32_t kMaxChain = 48;
  LinkFrame chain_[kMaxChain];
  uint32_t chain_len_ = 0;
  uint64_t clock_ms_ = 0;
  uint64_t last_refresh_ms_ = 0;
  RxClock rx_clock_ = nullptr;
  TxTap tx_tap_ = nullptr;
  void* tx_tap_ctx_ = nullptr;
  TxHeld tx_held_ = nullptr;
  bool flushing_held_ = false;
  uint64_t held_cookie_ = 0;
  TxTap tx_watch_ = nullptr;
  void* tx_watch_ctx_ = nullptr;
  void tap_tx(const uint8_t* frame, uint32_t len);
  int rx_stamp_users_ = 0;
  timespec rx_stamp_{};
  timespec rx_hw_stamp_{};
  bool rx_hw_stamps_now_ = false;  // the link has hardware stamps (this burst)
  bool dont_fragment_ = false;
  static constexpr uint32_t kMaxBurst = 64;
  static constexpr uint64_t kNoFrame = ~uint64_t(0);
  uint64_t rx_in_hand_[kMaxBurst];
  uint32_t rx_in_hand_n_ = 0;     // frames of the burst being fed to lwIP
  uint32_t rx_in_hand_next_ = 0;  // ... of which the ones from here on are still ours
  uint64_t tx_in_hand_ = kNoFrame;  // a transmit frame being filled
  uint64_t data_in_hand_[kMaxDataInHand];  // data_frame_in_hand()
  int data_in_hand_n_ = 0;
  struct ForgottenFlow {
    uint32_t remote_ip = 0;
    uint16_t remote_port = 0, local_port = 0;  // network order
    uint64_t until_ms = 0;                     // 0: a free slot
  };
  ForgottenFlow forgotten_[kForgottenFlows];
  uint32_t forgotten_live_ = 0;  // slots with until_ms != 0
  bool forgotten(const uint8_t* ip, uint32_t ihl);
  NetifCounters own_counters_;
  NetifCounters* counters_ = &own_counters_;
};

}  // namespace xdpload::stack
