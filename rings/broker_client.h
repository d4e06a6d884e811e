// The program's side of a broker (rings/broker_protocol.h): connecting,
// receiving the resources it hands over, and claiming ports.
#pragma once

#include <cstdint>

#include "rings/broker_protocol.h"
#include "rings/error_text.h"

namespace xdpload::rings {

// What a broker handed a program. The descriptors are the program's private
// ones (rings/private_fd.h) once received.
struct BrokerGrant {
  broker::Welcome welcome;
  int conn = -1;  // the connection: the broker's view of this program's life
  int umem_fd = -1;
  int control_fd = -1;
  int kick_fd = -1;
  int xsk_fds[broker::kMaxQueues];
  BrokerGrant() {
    for (int& fd : xsk_fds) fd = -1;
  }
  // Closes whatever was not taken (set to -1 by whoever takes it).
  void close_unused();
};

// One message on a broker connection, with descriptor `fd` (SCM_RIGHTS)
// unless it is -1; `flags` added to sendmsg's (the broker's MSG_DONTWAIT).
// 0, or -errno (-EPROTO when the message went short).
int send_with_fd(int conn, const void* buf, size_t len, int fd, int flags = 0);

// Requests are numbered (broker::Header::seq) by whoever owns the
// connection: the Hello is broker::kHelloSeq, and every later request takes
// the next number (XskPort keeps the count in the family's memory, as every
// process of a family shares the connection).

// Connects to the broker of `iface` and asks to be served. Returns 0 with
// the grant filled; -ENOENT when no broker runs for the interface in this
// network namespace; another -errno, with why, when one runs but refused or
// failed (the text is the broker's when it refused).
int broker_connect(const char* iface, const char* program, BrokerGrant* grant, ErrorText* why);

// Claim: asks the broker to steer (proto, port) to this program, proving
// with `backing_fd` (the kernel socket that holds the port) that it may.
// Release: stops steering it. 0, or -errno with the broker's reason.
int broker_claim(int conn, uint32_t seq, uint8_t proto, uint16_t port, int backing_fd,
                 ErrorText* why);
int broker_release(int conn, uint32_t seq, uint8_t proto, uint16_t port);
// A claimed port shared with a kernel socket (or not), and one of the
// program's flows on it: broker::FlowMsg. whose: 0 removes the flow,
// STEER_FLOW_STACK lists it for the stack (a shared port),
// STEER_FLOW_KERNEL for the kernel (a connection handed over).
int broker_share(int conn, uint32_t seq, uint8_t proto, uint16_t port, bool shared,
                 ErrorText* why);
int broker_flow(int conn, uint32_t seq, uint8_t proto, uint16_t port, uint32_t remote_ip,
                uint16_t remote_port, uint8_t whose, ErrorText* why);
// A connection built by the broker (broker::HandoverMsg). Build sends
// `in` and `out` (state.in_len and out_len bytes); Finish gives the
// socket in *conn_fd (-1 when none came). 0, or -errno with the reason.
int broker_handover(int conn, uint32_t seq, uint8_t step, const RepairState& state,
                    const uint8_t* in, const uint8_t* out, int* conn_fd, ErrorText* why);

}  // namespace xdpload::rings
