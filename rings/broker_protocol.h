// What a broker (tools/broker/) and its programs (rings/broker_client.h)
// say to each other, and the memory they share.
//
// One broker per interface and network namespace owns what needs privilege:
// the XDP program, the steering maps, the UMEM and, per queue, the socket
// that owns the UMEM's fill and completion rings. A program connects to the
// broker's Unix socket (abstract, so it is per network namespace, like the
// interface), says Hello, and gets back by SCM_RIGHTS the UMEM's memfd, a
// control segment of its own, an eventfd to wake the broker, and one AF_XDP
// socket per queue that the broker made and bound for it (sharing the UMEM).
// From then on the program receives and transmits on its own sockets; the
// broker is on no packet's path.
//
// Frames: every queue's fill and completion rings belong to the broker's
// socket of that queue, shared by every program on the queue, so only the
// broker drives them (one producer, as a ring needs). A program gives frames
// back through its control segment (`to_broker`) and gets frames to send
// with, and its sent frames once the kernel is done with them, through
// `to_program`. The broker records which program holds every frame; a frame
// given back by a program that does not hold it is refused and counted.
//
// Every message is one SOCK_SEQPACKET datagram, a fixed struct, checked for
// size, magic and version by the receiver. Neither side trusts the other's
// indices in the shared segment beyond the ring's size.
//
// A request carries a number (Header::seq) that its answer repeats: a
// program that gave up waiting for an answer (the broker was slow, or the
// process of the family that asked died before reading it) must not take
// that answer for the next request's, nor leave a descriptor it brought
// unclosed.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "rings/tcp_repair.h"

namespace xdpload::rings::broker {

constexpr uint32_t kMagic = 0x524b4258;  // "XBKR"
constexpr uint16_t kVersion = 3;  // 3: Header::seq
constexpr uint32_t kMaxQueues = 64;

// The broker of `ifname`: an abstract Unix socket, so one per network
// namespace, gone when the broker is.
inline socklen_t broker_address(const char* ifname, sockaddr_un* sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "xdpload-broker:%s", ifname);
  return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + n);
}

enum class Op : uint16_t {
  Hello = 1,    // program -> broker: serve me
  Welcome = 2,  // broker -> program: the resources (or a refusal)
  Claim = 3,    // program -> broker: steer (proto, port) to me; fd: my backing socket
  Release = 4,  // program -> broker: stop steering (proto, port)
  Reply = 5,    // broker -> program: status of a Claim or Release (or Share, Flow)
  Share = 6,    // program -> broker: a claimed port is shared with a kernel socket (or not)
  Flow = 7,     // program -> broker: one of its flows on a shared port (added or removed)
  Handover = 8,  // program -> broker: one of its connections, built in a kernel socket of the broker's
};

struct Header {
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  uint16_t op = 0;
  uint32_t seq = 0;  // a request's number; its Welcome or Reply has the same
};

// A connection's first request; the program numbers the later ones on.
constexpr uint32_t kHelloSeq = 1;

struct Hello {
  Header h{kMagic, kVersion, uint16_t(Op::Hello)};
  char program[64] = {};  // for xdpload-stat and the broker's log
};

// Welcome.flags
constexpr uint32_t kZeroCopy = 1;
constexpr uint32_t kMultiBuffer = 2;
constexpr uint32_t kDriverMode = 4;
// The UMEM carries transmit metadata and the sockets are in copy mode: a
// program may ask the kernel to complete its checksums (XskPort::send).
// (A broker that does not set it is served as before: a program computes
// them itself.)
constexpr uint32_t kTxChecksum = 8;

struct Welcome {
  Header h{kMagic, kVersion, uint16_t(Op::Welcome)};
  int32_t status = 0;  // 0, or an errno: refused (text says why)
  char text[200] = {};
  uint32_t slot = 0;
  uint32_t frame_count = 0;
  uint32_t frame_size = 0;
  uint32_t headroom = 0;
  uint64_t umem_bytes = 0;     // the memfd's mapping length
  uint64_t control_bytes = 0;  // the control segment's
  uint32_t ring_size = 0;      // the program's rx and tx rings
  uint32_t nqueues = 0;        // sockets passed, one per queue in queue_ids order
  uint32_t interface_queues = 0;
  uint32_t flags = 0;
  uint32_t quota = 0;  // frames the program may hold at once
  // Frames lent to each queue's fill ring: a program wakes the broker after
  // receiving half that many, so that the broker refills in time without
  // waking by itself more than a few times a second.
  uint32_t fill_target = 0;
  uint32_t queue_ids[kMaxQueues] = {};
  // The key of the stamping steering program's metadata records
  // (steer_rx_meta); 0: the broker runs the plain program.
  uint64_t rx_meta_key = 0;
};
// Descriptors that come with a successful Welcome, in this order: the UMEM
// memfd, the control segment's memfd, the broker's wake eventfd, then
// `nqueues` AF_XDP sockets (the first one also has the tx ring).
constexpr int kWelcomeFixedFds = 3;

struct PortMsg {  // Claim and Release
  Header h;
  uint8_t proto = 0;
  uint8_t pad = 0;
  uint16_t port = 0;
};

// Share and Flow: a TCP listener the program handed to the kernel while its
// stack's connections on the port live. Shared, the port's frames go to the
// program only for its listed flows, the rest to the kernel
// (rings/steering.h, share_port).
struct FlowMsg {
  Header h;
  uint8_t proto = 0;
  uint8_t on = 0;  // Share: shared (0: unshared); Flow: whose (STEER_FLOW_*; 0: removed)
  uint16_t port = 0;         // the local port, host order
  uint32_t remote_ip = 0;    // Flow: network order
  uint16_t remote_port = 0;  // Flow: host order
  uint16_t pad = 0;
};

// Handover: a connection of the program's stack made the kernel's when the
// program lacks CAP_NET_ADMIN, which TCP_REPAIR needs (exec, an option only
// the kernel serves: shim/socket/tcp_handover.cc). The program never holds
// a socket in repair mode (its owner may then bind over other users' ports
// and connect anywhere): the broker builds the connection in a socket of
// its own (tools/broker/handover.cc).
// - kHandoverBuild: `state` says the connection; a memfd comes along with
//   the bytes not yet read (in_len) then not yet acknowledged (out_len).
//   The broker checks the connection is one only this program could have:
//   a TCP port it holds through the broker, that no other user's socket
//   holds now, at the interface's address, to a unicast peer elsewhere.
//   It builds it in repair mode (rings/tcp_repair.h, step 1) and keeps it.
// - kHandoverFinish: repair mode ends (the kernel sends a window probe),
//   the bytes not yet sent go, and the Reply brings the socket (one
//   descriptor, also when its status says some bytes were refused).
// - kHandoverDrop: the built socket is closed, silently (repair mode).
// Finish and Drop name the connection by its state's addresses. Between
// Build and Finish the program steers the flow to the kernel.
// A broker that predates Handover answers "unknown operation" (EPROTO).
constexpr uint8_t kHandoverBuild = 1;
constexpr uint8_t kHandoverFinish = 2;
constexpr uint8_t kHandoverDrop = 3;
// Each of in_len and out_len: lwIP's window and send buffer are 256 KB
// (stack/lwip/lwipopts.h), the socket's queue beside them at most as much.
constexpr uint32_t kMaxHandoverBytes = 512u << 10;
constexpr uint32_t kMaxHandovers = 4;             // built, not yet finished, per program

struct HandoverMsg {
  Header h;
  uint8_t step = 0;
  uint8_t pad[3] = {};
  RepairState state;
};

struct Reply {
  Header h{kMagic, kVersion, uint16_t(Op::Reply)};
  int32_t status = 0;  // 0 or an errno
  char text[200] = {};
};

inline bool valid_header(const Header& h, Op op) {
  return h.magic == kMagic && h.version == kVersion && h.op == uint16_t(op);
}

// ---- the control segment ----

// A single-producer single-consumer ring of UMEM frame addresses in memory
// shared by two processes. The consumer never trusts the producer's index
// beyond the ring's size.
constexpr uint32_t kFrameQueueSize = 16384;

struct FrameQueue {
  alignas(64) uint32_t producer;
  alignas(64) uint32_t consumer;
  alignas(64) uint64_t addr[kFrameQueueSize];

  // Producer side: how many more fit.
  uint32_t room() const {
    return kFrameQueueSize - (producer - __atomic_load_n(&consumer, __ATOMIC_ACQUIRE));
  }
  // Producer side: queues `a` if there is room.
  bool push(uint64_t a) {
    if (!room()) return false;
    addr[producer % kFrameQueueSize] = a;
    __atomic_store_n(&producer, producer + 1, __ATOMIC_RELEASE);
    return true;
  }
  // Consumer side: entries waiting, or UINT32_MAX when the producer's index
  // is impossible (a corrupted or hostile peer).
  uint32_t waiting() const {
    uint32_t n = __atomic_load_n(&producer, __ATOMIC_ACQUIRE) - consumer;
    return n > kFrameQueueSize ? UINT32_MAX : n;
  }
  uint64_t at(uint32_t i) const { return addr[(consumer + i) % kFrameQueueSize]; }
  void consume(uint32_t n) { __atomic_store_n(&consumer, consumer + n, __ATOMIC_RELEASE); }
};

struct Control {
  uint32_t magic;
  uint32_t version;
  // Set by the program when it wants frames to send with (its pool ran
  // low); the broker clears it when it has pushed some.
  uint32_t wants_frames;
  // Set by the broker: the program wakes it after receiving this many
  // frames. The fill rings are shared by every program on a queue, so the
  // more programs, the sooner each wakes it (half a fill ring's worth
  // between them).
  uint32_t kick_every;
  FrameQueue to_broker;   // frames the program gives back
  FrameQueue to_program;  // frames given to the program: grants, sent ones
};

}  // namespace xdpload::rings::broker
