// Stage marks: where a message's time goes inside one process, to the
// nanosecond, for latency work (issue: latency to the raw floor).
//
// A mark records (stage, TSC) in a per-process buffer; bench/stage_report.py
// prints the median time between consecutive stages. Compiled out unless
// the build says STAGE_TRACE=1 (make BUILD=build-trace STAGE_TRACE=1): then
// marks are taken when XDPLOAD_STAGE_TRACE names the stages to record
// ("all", or numbers such as 0,3) and written to
// XDPLOAD_STAGE_TRACE_DIR/stages-PID.txt (/tmp by default) when the buffer
// is full (XDPLOAD_STAGE_TRACE_EVENTS, 2M) or the process exits normally.
// A mark costs one TSC read (about 10 ns on the VMs measured): take few.
//
// Both xdpload's library and bench/xsk_pingpong (the raw floor) carry
// the rings/ marks, so the floor's stages read beside xdpload's.
#pragma once

#include <cstdint>

namespace xdpload::trace {

enum Stage : uint32_t {
  kRxFrames = 0,      // rx_burst() returned frames (rings/)
  kRecvReturns = 1,   // recv*() returns data to the program (shim/)
  kSendEnters = 2,    // send*() on an accelerated socket entered (shim/)
  kKickEnters = 3,    // the transmit kick's system call starts (rings/)
  kKickReturns = 4,   // ... and returned
  kSendReturns = 5,   // send*() returns to the program (shim/)
  kRecvLocked = 6,    // a receive call took the core lock to poll (shim/)
  kRecvQueued = 7,    // the datagram reached the socket's queue (shim/)
  kStackDelivered = 8,  // the stack's poll handed the burst to lwIP and back (stack/)
  kSendLocked = 9,    // a UDP send holds the lock, before lwIP (shim/)
  kSendBuilt = 10,    // lwIP built and queued the frame (shim/)
};

#if XDPLOAD_STAGE_TRACE
void mark_slow(uint32_t stage);
extern uint64_t g_stage_mask;  // bit per stage to record; 0: off
inline void mark(Stage s) {
  if (__builtin_expect(g_stage_mask >> s & 1, 0)) mark_slow(s);
}
#else
inline void mark(Stage) {}
#endif

}  // namespace xdpload::trace
