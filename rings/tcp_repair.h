// A live TCP connection given to a kernel socket with its state, through
// TCP_REPAIR, in CRIU's restore order: the sequence numbers, the options
// and windows both ends agreed on, the bytes the program has not read, the
// bytes the peer has not acknowledged. The peer sees nothing but a window
// probe; no byte is lost or sent twice.
//
// Shared by the preloaded library, which builds the connection in its own
// kernel socket when it has CAP_NET_ADMIN (shim/socket/tcp_handover.cc),
// and the broker, which builds it in a socket of its own for a program
// without the capability and passes it on only once repair mode has ended
// (tools/broker/handover.cc): a program never holds a socket in repair
// mode, which would let it bind over other users' ports.
//
// Two steps, so that the flow's frames can be steered to the kernel in
// between, while no segment of the kernel's can leave yet:
// 1. repair_build: repair mode, queues' sequence numbers, bound (unless it
//    is already, to the same port) and connected without a handshake,
//    options, queued bytes, windows;
// 2. repair_finish: repair mode off (the kernel sends a window probe),
//    then the bytes not yet sent.
// Raw system calls throughout: in the library, the socket's descriptor is
// one the intercepts would route back to the stack.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "rings/error_text.h"

namespace xdpload::rings {

constexpr uint8_t kRepairWindowScale = 1;  // window scaling agreed (snd/rcv_wscale)
constexpr uint8_t kRepairSack = 2;
constexpr uint8_t kRepairTimestamps = 4;   // ts_now: the stamps' clock goes on from it
constexpr uint8_t kRepairShutRd = 8;       // no more to read: the peer's FIN, or shut by the program
constexpr uint8_t kRepairShutWr = 16;      // no more to write: our FIN after the data (sent or not)

// What the other stack knows of the connection. A fixed layout: it crosses
// to the broker (rings/broker_protocol.h, HandoverMsg).
struct RepairState {
  uint32_t local_ip = 0;   // network order
  uint32_t remote_ip = 0;  // network order
  uint16_t local_port = 0;   // host order
  uint16_t remote_port = 0;  // host order
  uint16_t mss = 0;
  uint8_t flags = 0;
  uint8_t snd_wscale = 0;
  uint8_t rcv_wscale = 0;
  uint8_t v6 = 0;  // the socket is AF_INET6 (addresses v4-mapped)
  uint16_t pad = 0;
  uint32_t send_seq = 0;  // the first byte the peer has not acknowledged
  uint32_t recv_seq = 0;  // the first byte the program has not read
  uint32_t ts_now = 0;    // kRepairTimestamps: the stamps' clock
  uint32_t snd_wl1 = 0;
  uint32_t snd_wnd = 0;
  uint32_t max_window = 0;
  uint32_t rcv_wup = 0;
  uint32_t rcv_wnd = 0;
  uint32_t in_len = 0;     // bytes not yet read, from recv_seq
  uint32_t out_len = 0;    // bytes from send_seq: in_flight of them sent, then not yet sent
  uint32_t in_flight = 0;
};

// What repair_build changed, to put back (repair_undo, repair_finish).
struct RepairUndo {
  int reuse = 0;   // SO_REUSEADDR before (repair mode forces reuse, leaving it clears it)
  int sndbuf = 0;  // the buffers' sizes before, where they were forced larger
  int rcvbuf = 0;
  bool forced_snd = false;
  bool forced_rcv = false;
  bool connected = false;
  bool refused = false;  // TCP_REPAIR itself was refused (no CAP_NET_ADMIN): nothing changed
};

// Step 1. 0: the socket is connected in repair mode. -errno (said in why):
// the socket as it came, unconnected and out of repair mode.
int repair_build(int fd, const RepairState& st, const uint8_t* in, const uint8_t* out,
                 RepairUndo* undo, ErrorText* why);
// After step 1, when the connection is not to be the kernel's after all:
// unconnected again without a word to the peer, out of repair mode.
void repair_undo(int fd, const RepairUndo& undo);
// Step 2. Never fails to let the connection run; -errno (said) when some
// of the bytes not yet sent were refused even into the send queue.
// `restore_buffers`: the sizes the program had (a socket of its own), else
// the room made stays.
int repair_finish(int fd, const RepairState& st, const uint8_t* out, const RepairUndo& undo,
                  bool restore_buffers, ErrorText* why);

}  // namespace xdpload::rings
