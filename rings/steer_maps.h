// Shared between the XDP program (steer.bpf.c) and user space (steering.cc):
// the layout of the steering maps.
#ifndef XDPLOAD_STEER_MAPS_H
#define XDPLOAD_STEER_MAPS_H

#include <linux/types.h>

#define STEER_MAX_QUEUES 64

// Programs on one interface. Slot 0 is a process that owns the interface
// alone (no broker); a broker gives each program it serves a slot 1..63.
// The socket for (slot, queue) is entry slot * STEER_MAX_QUEUES + queue of
// the `xsks` map.
#define STEER_MAX_SLOTS 64
#define STEER_XSKS (STEER_MAX_SLOTS * STEER_MAX_QUEUES)

// `steer_bits`: one bit per (protocol, local port), TCP ports first then
// UDP, 64 bits per array element. The array is mmap-able: user space sets
// and clears bits with atomic operations, no system call, which keeps
// working after the process dropped the privileges bpf() needs.
#define STEER_BITS (2 * 65536)
#define STEER_WORDS (STEER_BITS / 64)
static inline __u32 steer_bit(__u8 proto, __u16 port_host_order) {
  return (proto == 17 /* IPPROTO_UDP */ ? 65536u : 0u) + port_host_order;
}

// `steer_slots`: the slot of the program a steered (protocol, port) belongs
// to, one byte per port bit, eight to an array element (mmap-able: only the
// broker writes it). Ports of a process alone on the interface stay 0.
#define STEER_SLOT_WORDS (STEER_BITS / 8)
static inline __u32 steer_slot_of(__u64 word, __u32 bit) {
  return (__u32)(word >> ((bit % 8) * 8)) & 0xff;
}

// `steer_flow_ports`: three bit maps laid out as `steer_bits` (mmap-able),
// one after the other, one bit per (protocol, local port) in each:
// - the first, shared ports: a steered port whose bit is set is shared with
//   a kernel socket (a TCP listener the kernel took over while the stack's
//   connections on the port went on): only the flows listed for the stack
//   in `steer_flows` go to the stack, every other frame of the port to the
//   kernel;
// - the second (from word STEER_WORDS), ports with exceptions: the port is
//   the stack's, but the flows listed for the kernel go to the kernel
//   (connections the stack handed to the kernel with their state);
// - the third (from word 2 * STEER_WORDS), UDP ports whose group frames
//   (multicast and broadcast: the Ethernet destination's group bit) go to
//   the kernel: another program's kernel socket holds the port too, and
//   Linux gives every socket on the port its copy of such a datagram,
//   which XDP cannot split between the stack and the kernel. The kernel
//   delivers to them and to the stack socket's kernel twin, which the
//   stack socket reads too.
#define STEER_FLOW_PORT_WORDS (3 * STEER_WORDS)
//
// `steer_flows`: flows of such ports, by the fields of an arriving frame
// (addresses and ports in network order); the value says whose.
struct steer_flow {
  __u32 remote_ip;
  __u16 remote_port;
  __u16 local_port;
  __u8 proto;
  __u8 pad[3];
};
#define STEER_MAX_FLOWS 65536
#define STEER_FLOW_STACK 1
#define STEER_FLOW_KERNEL 2

// Indices of the per-cpu `steer_stats` counters.
enum steer_stat {
  STEER_STAT_REDIRECTED = 0,  // frames redirected to the socket
  STEER_STAT_PASSED = 1,      // frames left to the kernel
  STEER_STAT_NO_SOCKET = 2,   // ours, but no socket bound on that queue
  STEER_STAT_OVER_QUOTA = 3,  // dropped: its program holds more frames than its quota
  STEER_STAT_COUNT = 4,
};

// `queue_redirected`, per cpu: [q] frames of our ports redirected to the
// socket of receive queue q. (Frames of our ports on a queue without a
// socket are STEER_STAT_NO_SOCKET.)

// `steer_paused`: per slot, nonzero while the broker has paused a program
// that holds more UMEM frames than its quota: its frames are dropped (as a
// full rx ring would drop them) so that the fill rings stay stocked for the
// others.

// Indices of `steer_conf`.
enum steer_conf {
  STEER_CONF_MTU = 0,  // interface MTU: longer UDP goes to the kernel
  STEER_CONF_COUNT = 1,
};

// What the stamping variant of the program (xdpload_stamp, loaded bound to
// the device in driver mode, XDPLOAD_HW_STAMPS) writes into the metadata
// area just before every frame it redirects: the driver's hardware receive
// stamp (bpf_xdp_metadata_rx_timestamp; 0: none) and the key user space
// chose before loading it (its read-only `meta_key`). The bytes before a received frame are whatever the UMEM
// chunk last held when the driver gave no metadata (a transmitted frame's
// bytes, which a peer can choose): only a record carrying the key is read.
struct steer_rx_meta {
  __u64 hw_stamp;  // nanoseconds, the NIC clock's
  __u64 key;
};

// The stamping variant's settings, its read-only data, written by user
// space before the load (the verifier then sees constants).
struct steer_stamp_conf {
  __u64 meta_key;
  // Tests only (XL_TEST_FAKE_HW_STAMP): a frame the driver gave no hardware
  // stamp gets CLOCK_MONOTONIC's time instead, so that a test on veth, whose
  // frames from a kernel sender never carry one, sees the stamp travel from
  // the metadata to the program's control message.
  __u32 test_fake_hw_stamp;
  __u32 pad;
};

#endif
