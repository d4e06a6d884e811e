// Link: what the netif driver needs from whatever carries Ethernet frames.
// XskLink (an AF_XDP port) is the real one; tests plug in a fake.
//
// Frames are named by tokens that are addresses (UMEM addresses for
// XskLink): token + n names the byte n bytes further in the same frame, and
// any of them names the frame for release(). A received frame belongs to the
// stack until release(token); a transmit frame from tx_frame() belongs to the
// stack until tx_send() takes it (the packet may start anywhere in the frame)
// or release() gives it back.
#pragma once

#include "family/arena.h"
#include <cstddef>
#include <cstdint>

namespace xdpload::stack {

struct LinkFrame {
  uint8_t* data;    // the Ethernet frame (or, after a `more` frame, its continuation)
  uint32_t len;
  uint64_t token;
  void* scratch;    // Link::kScratch bytes the stack may use while it holds the frame
  bool more;        // the packet continues in the next frame
};

// A packet whose L4 checksum the link is to complete as it leaves
// (Link::tx_checksum_offload()): the checksum covers the packet from byte
// `start` to its end and goes `offset` bytes after `start`; the field holds
// the pseudo-header sum (Linux's CHECKSUM_PARTIAL). start 0: complete as it is.
struct TxChecksum {
  uint16_t start = 0;
  uint16_t offset = 0;
};

class Link : public family::Object {
 public:
  // Space beside every received frame for the stack's per-frame state (the
  // custom pbuf that points into the frame).
  static constexpr uint32_t kScratch = 64;

  virtual ~Link() = default;

  virtual uint32_t rx_burst(LinkFrame* out, uint32_t max) = 0;
  virtual void release(uint64_t token) = 0;
  // The hardware receive stamp of a packet whose first frame rx_burst()
  // just gave (ns, the NIC's clock); 0: it has none.
  virtual uint64_t rx_hw_stamp(const LinkFrame&) const { return 0; }
  // Whether received frames can carry hardware stamps at all.
  virtual bool rx_hw_stamps() const { return false; }
  // Makes released frames available for reception again.
  virtual void refill() = 0;

  // A frame to build an outgoing packet in (nullptr when none is free);
  // *room is how many bytes fit.
  virtual uint8_t* tx_frame(uint64_t* token, uint32_t* room) = 0;
  virtual bool tx_send(uint64_t token, uint32_t len, TxChecksum csum) = 0;
  // Whether tx_send() and tx_send_kept() honour a TxChecksum; when not,
  // every packet must leave complete.
  virtual bool tx_checksum_offload() const { return false; }
  // The kScratch bytes of a transmit frame the stack may use while it holds
  // it (for a pbuf that lets lwIP build the packet in the frame itself);
  // nullptr when the link has none, and every packet is copied.
  virtual void* tx_scratch(uint64_t token) {
    (void)token;
    return nullptr;
  }
  // A transmit frame the stack keeps after sending it (a TCP segment's
  // data, sent again if lost; it stays the stack's until release()):
  // tx_send_kept() queues `len` bytes at `token` like tx_send() without
  // taking the frame. tx_kept_busy(): the frame's last tx_send_kept() has
  // not completed, so its bytes must not be touched (the caller sends a
  // copy). Links without it copy every packet.
  virtual bool tx_send_kept(uint64_t token, uint32_t len, TxChecksum csum) {
    (void)token, (void)len, (void)csum;
    return false;
  }
  virtual bool tx_kept_busy(uint64_t token) const {
    (void)token;
    return true;
  }
  // The memory every frame lies in (to register it for I/O straight into
  // frames); nullptr and 0 when there is none to name.
  virtual uint8_t* frame_memory(size_t* len) const {
    *len = 0;
    return nullptr;
  }
  // Hands queued frames to the wire.
  virtual void flush() = 0;
  // Frames wait in the tx ring that the last flush could not hand over:
  // flush again soon.
  virtual bool tx_blocked() const { return false; }
  // True when a poll would find nothing to receive and nothing to refill;
  // callable from any thread without the CoreLock (a hint). False: poll.
  virtual bool rx_quiet() const { return false; }

  // Descriptors readable when frames arrive (one per receive queue of an
  // AF_XDP port), written to out[0..max); returns how many (0 if the link
  // has none). Poll them together to sleep until any queue has work.
  virtual int wait_fds(int* out, int max) const = 0;
  // Frames the stack holds, and frames in all: when it holds many, the stack
  // copies received data out of frames it would otherwise keep for long.
  virtual uint32_t held_frames() const = 0;
  virtual uint32_t total_frames() const = 0;
  // Frames the stack could still take for sending: not held, and not lent
  // to the kernel for reception (by default, all it does not hold).
  virtual uint32_t spare_frames() const { return total_frames() - held_frames(); }
};

}  // namespace xdpload::stack
