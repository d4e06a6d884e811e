// XskLink: a Link over an AF_XDP port (rings::XskPort).
#pragma once

#include <memory>

#include "rings/xsk_port.h"
#include "stack/link.h"

namespace xdpload::stack {

class XskLink final : public Link {
 public:
  explicit XskLink(std::unique_ptr<rings::XskPort> port) : port_(std::move(port)) {}

  uint32_t rx_burst(LinkFrame* out, uint32_t max) override {
    rings::RxFrame rx[64];
    if (max > 64) max = 64;
    uint32_t n = port_->rx_burst(rx, max);
    const rings::Umem& umem = port_->umem();
    for (uint32_t i = 0; i < n; ++i) {
      // The first bytes of every frame are ours (XskPort::kUserHeadroom).
      out[i] = LinkFrame{rx[i].data, rx[i].len, rx[i].addr | gen_bits(),
                         umem.data(umem.frame_of(rx[i].addr)), rx[i].more};
    }
    return n;
  }
  void release(uint64_t token) override {
    if (rings::XskPort* p = port_of(token)) p->free_frame(token & kAddrMask);
  }
  void refill() override { port_->refill_when_due(); }
  uint64_t rx_hw_stamp(const LinkFrame& f) const override { return port_->rx_hw_stamp(f.data); }
  bool rx_hw_stamps() const override { return port_->rx_meta_key() != 0; }

  uint8_t* tx_frame(uint64_t* token, uint32_t* room) override {
    uint8_t* p = port_->alloc_tx(token);
    if (p) {
      *room = port_->umem().frame_size() - rings::XskPort::kTxHeadroom;
      *token |= gen_bits();
    }
    return p;
  }
  bool tx_send(uint64_t token, uint32_t len, TxChecksum csum) override {
    // A frame of a retired port is not sent (its sockets are closed).
    return (token >> kGenShift) == gen_ &&
           port_->send(token & kAddrMask, len, csum.start, csum.offset);
  }
  bool tx_checksum_offload() const override { return port_->tx_checksum_offload(); }
  uint8_t* frame_memory(size_t* len) const override {
    *len = port_->umem().length();
    return port_->umem().base();
  }
  bool tx_send_kept(uint64_t token, uint32_t len, TxChecksum csum) override {
    return (token >> kGenShift) == gen_ &&
           port_->send_kept(token & kAddrMask, len, csum.start, csum.offset);
  }
  bool tx_kept_busy(uint64_t token) const override {
    // A frame of a retired port cannot be sent again in place (its port
    // sends nothing): copied into the current port's frames.
    if ((token >> kGenShift) != gen_) return true;
    return port_->kept_in_flight(token & kAddrMask);
  }
  // The frame's first XskPort::kUserHeadroom bytes: a transmit packet starts
  // at kTxHeadroom, and the kernel reads only the packet.
  void* tx_scratch(uint64_t token) override {
    rings::XskPort* p = port_of(token);
    if (!p) return nullptr;
    const rings::Umem& umem = p->umem();
    return umem.data(umem.frame_of(token & kAddrMask));
  }
  void flush() override { port_->flush(); }
  bool tx_blocked() const override { return port_->tx_blocked(); }
  bool rx_quiet() const override { return port_->rx_quiet(); }

  int wait_fds(int* out, int max) const override { return port_->wait_fds(out, max); }
  uint32_t held_frames() const override { return port_->held_frames(); }
  uint32_t total_frames() const override { return port_->frame_budget(); }
  // The pool's own free frames; a broker's program may ask the broker for
  // more, up to its quota.
  uint32_t spare_frames() const override {
    return port_->brokered() ? port_->frame_budget() - port_->held_frames()
                             : port_->free_frames();
  }

  rings::XskPort& port() { return *port_; }

  // A broker's program whose broker died and came back: the new broker's
  // sockets and UMEM replace the old ones. The old port stays (its UMEM
  // mapped) until the frames lwIP still holds from it are released: a
  // token names its port's generation, so that they go back to it, never
  // into the new port's pool. Lock held.
  rings::XskPort* replace_port(std::unique_ptr<rings::XskPort> port) {
    retired_.push_back(std::move(port_));
    port_ = std::move(port);
    ++gen_;
    return port_.get();
  }
  // How many times the port was replaced.
  uint32_t generation() const { return gen_; }

 private:
  // A UMEM address is below 2^32 (4 GiB of frames); the generation of the
  // port it belongs to is kept above bit 48 of the token.
  static constexpr int kGenShift = 48;
  static constexpr uint64_t kAddrMask = (uint64_t(1) << kGenShift) - 1;
  uint64_t gen_bits() const { return uint64_t(gen_) << kGenShift; }
  rings::XskPort* port_of(uint64_t token) const {
    uint64_t g = token >> kGenShift;
    if (g == gen_) return port_.get();
    return g < retired_.size() ? retired_[g].get() : nullptr;
  }

  std::unique_ptr<rings::XskPort> port_;
  family::vector<std::unique_ptr<rings::XskPort>> retired_;
  uint32_t gen_ = 0;
};

}  // namespace xdpload::stack
