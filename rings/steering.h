// XdpSteering: the XDP program on one interface that sends xdpload's ports to
// its AF_XDP sockets and everything else to the kernel.
//
// Attached through a bpf_link, never through netlink: the kernel detaches a
// link when its last file descriptor closes, so the program goes away with the
// process even when it dies by SIGKILL and the interface is left as found.
// An interface that already has an XDP program is refused, not taken over.
#pragma once

#include <cstdint>

#include "rings/error_text.h"
#include "rings/steer_maps.h"

struct bpf_object;

namespace xdpload::rings {

enum class XdpMode { Auto, Driver, Skb };
const char* xdp_mode_name(XdpMode m);

struct SteeringStats {
  uint64_t redirected = 0;  // frames handed to an AF_XDP socket
  uint64_t passed = 0;      // frames left to the kernel
  uint64_t no_socket = 0;   // ours, but arrived on a queue with no socket
  uint64_t over_quota = 0;  // dropped: a broker's program over its frame quota
};

class XdpSteering {
 public:
  XdpSteering() = default;
  ~XdpSteering();
  XdpSteering(const XdpSteering&) = delete;
  XdpSteering& operator=(const XdpSteering&) = delete;

  // Loads the program and attaches it in `mode` (Driver or Skb).
  // hw_stamps: in driver mode, the stamping variant, bound to the device
  // (it writes each redirected frame's hardware receive stamp before it);
  // when the kernel refuses that one, the plain program, and
  // hw_stamp_refusal() says why.
  int attach(int ifindex, const char* ifname, XdpMode mode, ErrorText* why,
             bool hw_stamps = false);
  void detach();
  // Closes this process's link descriptor only (a forked child's copy).
  void abandon();

  // Registers the AF_XDP socket that serves `queue` (for the process alone
  // on the interface: slot 0), or program `slot`'s socket for `queue` (a
  // broker's programs).
  int add_socket(uint32_t queue, int xsk_fd, ErrorText* why) {
    return add_socket(0, queue, xsk_fd, why);
  }
  int add_socket(uint32_t slot, uint32_t queue, int xsk_fd, ErrorText* why);
  void remove_socket(uint32_t slot, uint32_t queue);

  // The interface MTU: UDP packets longer than this are GSO super-packets
  // and stay with the kernel.
  int set_mtu(uint32_t mtu);

  // Starts or stops steering (protocol, local port) to the sockets: a bit
  // in the mmap-ed port map, no system call (it works after the process has
  // dropped its privileges).
  int steer(uint8_t proto, uint16_t port);
  int unsteer(uint8_t proto, uint16_t port);
  bool steered(uint8_t proto, uint16_t port) const;
  // Whose sockets a steered port's frames go to (a broker's programs).
  // Set the slot before steering the port, clear it after unsteering.
  void set_slot(uint8_t proto, uint16_t port, uint8_t slot);
  uint8_t slot(uint8_t proto, uint16_t port) const;
  // Drops (or stops dropping) the frames of program `slot`.
  void set_paused(uint32_t slot, bool paused);
  // A steered port shared with a kernel socket (shared) sends the stack only
  // the flows add_flow() lists, the rest to the kernel; or all its frames
  // again. Addresses and ports in network order, as in the frames.
  int share_port(uint8_t proto, uint16_t port, bool shared);
  bool port_shared(uint8_t proto, uint16_t port) const;
  // A steered UDP port's multicast and broadcast frames go to the kernel
  // (shared: another program's kernel socket holds the port too), or to
  // the stack again. Unicast is unchanged.
  int share_group_frames(uint16_t udp_port, bool shared);
  // whose: STEER_FLOW_STACK (on a shared port) or STEER_FLOW_KERNEL (a
  // connection of a port of the stack's handed to the kernel: the port
  // then has exceptions, until it is unsteered).
  int add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip, uint16_t remote_port_be,
               uint8_t whose = STEER_FLOW_STACK);
  // 0 also when the flow was not listed (the XDP program unlists a flow
  // whose addresses a new SYN reuses).
  int remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                  uint16_t remote_port_be);

  XdpMode mode() const { return mode_; }
  // The key of the stamping variant's metadata records (steer_rx_meta);
  // 0: the plain program runs, frames carry no stamps.
  uint64_t rx_meta_key() const { return rx_meta_key_; }
  // Why hardware stamps were asked for and the plain program runs ("" when
  // they were not asked for or the stamping variant runs).
  const char* hw_stamp_refusal() const { return hw_stamp_refusal_; }
  SteeringStats stats() const;
  // Frames redirected to the socket of `queue`, summed over the CPUs.
  uint64_t queue_redirected(uint32_t queue) const;

 private:
  bpf_object* obj_ = nullptr;
  int link_fd_ = -1;
  int bits_fd_ = -1;
  uint64_t* bits_ = nullptr;  // the mmap-ed steer_bits array
  int slots_fd_ = -1;
  uint8_t* slots_ = nullptr;  // the mmap-ed steer_slots array, a byte per port
  int xsks_fd_ = -1;
  int stats_fd_ = -1;
  int conf_fd_ = -1;
  int queue_redirected_fd_ = -1;
  int paused_fd_ = -1;
  int flow_ports_fd_ = -1;
  uint64_t* flow_ports_ = nullptr;  // the mmap-ed steer_flow_ports array
  int flows_fd_ = -1;
  // The map descriptors above are our private copies and the object is
  // closed (false: they are libbpf's, the object stays open).
  bool own_map_fds_ = false;
  XdpMode mode_ = XdpMode::Auto;
  uint64_t rx_meta_key_ = 0;
  char hw_stamp_refusal_[200] = {};

  // Opens one of the two embedded objects and loads its program (the
  // stamping one bound to `ifindex`, its records carrying `key`). 0, or
  // -errno with the object closed.
  int load(int ifindex, bool stamping, uint64_t key);
  void keep_private_fds();
};

}  // namespace xdpload::rings
