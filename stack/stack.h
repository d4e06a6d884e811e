// Stack: lwIP running over one link, polled.
//
// Whoever holds the CoreLock may call poll(): it takes received frames to
// lwIP (which calls the application's callbacks), runs lwIP's due timers,
// applies the kernel's neighbour and route changes when some are pending, and
// sends what lwIP queued. Between polls nothing moves: a caller that waits
// for the network sleeps on wait_fds() and events_fd() until next_timer_ms().
#pragma once

#include "family/arena.h"
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "rings/error_text.h"
#include "rings/broker_client.h"
#include "rings/xsk_port.h"
#include "stack/interface_info.h"
#include "stack/link_netif.h"
#include "stack/lwip_port.h"
#include "stack/pcap_writer.h"
#include "stack/tcp_events.h"

namespace xdpload::stack {

class XskLink;

struct StackConfig {
  rings::PortConfig port;
  // When set, every frame received and sent is written there as pcap.
  std::string pcap_path;
  // Resources a broker handed this program (rings/broker_client.h): the port
  // runs on them instead of owning the interface. Taken by open().
  rings::BrokerGrant* broker = nullptr;
  const char* test_broker_hoard_until = nullptr;  // see XskPort::open_brokered
};

// What lwIP has allocated: every pool and the heap, for leak checks.
struct LwipUsage {
  uint32_t tcp_pcbs = 0;         // all TCP PCBs, TIME_WAIT included
  uint32_t tcp_time_wait = 0;    // of which in TIME_WAIT
  uint32_t tcp_listen_pcbs = 0;
  uint32_t udp_pcbs = 0;
  uint32_t tcp_segments = 0;
  uint32_t ref_pbufs = 0;        // PBUF_REF/ROM headers (custom rx pbufs not included)
  uint32_t pool_pbufs = 0;
  uint64_t heap_bytes = 0;
  uint32_t timeouts = 0;
};
LwipUsage lwip_usage();

// The counters of TcpEvents (stack/tcp_events.h), read now.
TcpEvents tcp_events();

// How many TCP connections may be in TIME-WAIT (the namespace's
// net.ipv4.tcp_max_tw_buckets): one more leaves it at once.
void set_tcp_timewait_limit(uint32_t n);

// TCP connections whose own data or FIN the peer has not acknowledged yet
// (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK): what is lost if
// the process ends now. FIN_WAIT_2 and TIME_WAIT have delivered everything.
struct TcpUndelivered {
  uint32_t connections = 0;
  uint64_t bytes = 0;  // written by the program, not yet acknowledged
  uint32_t awaiting_fin = 0;  // FIN_WAIT_2: ours is acknowledged, the peer's to come
};
TcpUndelivered tcp_undelivered();  // CoreLock held

class Stack : public family::Object {
 public:
  // On a real interface: an AF_XDP port; address, netmask, MTU and MAC from
  // the kernel; next hops from the kernel's routes and neighbours.
  static int open(const StackConfig& config, std::unique_ptr<Stack>* out, ErrorText* why);
  // On any link, with a given address and static neighbours (tests).
  static int open_on(std::unique_ptr<Link> link, const NetifAddress& address,
                     std::unique_ptr<Stack>* out, ErrorText* why);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // ---- with the CoreLock held ----
  uint32_t poll(uint32_t budget = 64);
  // ---- from any thread ----
  // A poll now would do nothing: no frame arrived and lwIP's timers were
  // looked at within this millisecond (a hint; false means poll).
  bool quiet() const {
    return link_->rx_quiet() && now_ms() == last_timer_check_ms_.load(std::memory_order_relaxed);
  }
  // ---- with the CoreLock held ----
  void flush() { link_->flush(); }
  bool tx_blocked() const { return link_->tx_blocked(); }
  // Milliseconds until lwIP's next timer; -1 when none is pending.
  int64_t next_timer_ms();
  // Milliseconds since any thread of the family last ran lwIP's timers.
  int64_t ms_since_timers_ran() const {
    return int64_t(now_ms() - last_timer_check_ms_.load(std::memory_order_relaxed));
  }
  // Steers (protocol, local port) to this stack; no-op on a link without
  // steering. `backing_fd`, the kernel socket holding the port, is the
  // proof a broker asks for.
  int steer(uint8_t proto, uint16_t port, int backing_fd, ErrorText* why);
  void unsteer(uint8_t proto, uint16_t port);
  // A steered port shared with a kernel socket: the stack gets only the
  // flows listed (rings::XdpSteering::share_port; a broker's program asks
  // the broker). -EOPNOTSUPP on a link without steering.
  int share_port(uint8_t proto, uint16_t port, bool shared);
  // A UDP port's multicast and broadcast frames to the kernel, or back
  // (rings::XdpSteering::share_group_frames).
  int share_group_frames(uint16_t udp_port, bool shared);
  // whose: STEER_FLOW_STACK or STEER_FLOW_KERNEL (rings/steering.h).
  int add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip, uint16_t remote_port_be,
               uint8_t whose = STEER_FLOW_STACK);
  // 0 also when the flow was not listed (the XDP program unlists a flow
  // whose addresses a new SYN reuses).
  int remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                  uint16_t remote_port_be);

  struct netif* nif() { return driver_.nif(); }
  LinkNetif& driver() { return driver_; }
  Link& link() { return *link_; }
  rings::XskPort* port() { return port_; }  // nullptr on a non-AF_XDP link
  // How many times the port was replaced (replace_port): descriptors of
  // the port taken at another generation are not its own.
  uint32_t port_generation() const;
  // Frames received and not yet taken in, and how many were ever taken in
  // (with the CoreLock held): whether the family's frame watcher answers.
  uint32_t rx_frames_waiting() const { return port_ ? port_->rx_frames_waiting() : 0; }
  uint64_t rx_frames_taken() const { return port_ ? port_->counters().rx_frames : 0; }
  // A new AF_XDP port in place of the current one (a broker's program whose
  // broker came back). Lock held.
  void replace_port(std::unique_ptr<rings::XskPort> port);
  // The transmit kick is made after the lock's release (open() arranges it
  // for the port: XskPort::set_kick_after_release). A forked child that
  // does not share the stack stops it: the port is its parent's.
  static void stop_kicks_after_release();
  // The pcap capture (nullptr without one); flush it before exit.
  PcapWriter* capture() { return capture_; }
  const InterfaceInfo& interface() const { return info_; }
  uint32_t addr() const { return driver_.address().addr; }

  // Descriptors to sleep on: frames arrived / the kernel changed a route or
  // neighbour.
  int wait_fds(int* out, int max) const { return link_->wait_fds(out, max); }
  int events_fd() const { return driver_.events_fd(); }

 private:
  Stack() = default;
  int start(std::unique_ptr<Link> link, const NetifAddress& address, int kernel_ifindex,
            ErrorText* why);

  std::unique_ptr<Link> link_;
  rings::XskPort* port_ = nullptr;
  XskLink* xsk_link_ = nullptr;  // owned by link_ (perhaps inside a PcapLink)
  PcapWriter* capture_ = nullptr;  // owned by the PcapLink
  InterfaceInfo info_;
  LinkNetif driver_;
  std::atomic<uint64_t> last_timer_check_ms_{0};
  uint64_t next_periodic_ms_ = 0;
  uint64_t next_events_ms_ = 0;
};

}  // namespace xdpload::stack
