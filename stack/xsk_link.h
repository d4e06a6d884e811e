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
      out[i] = LinkFrame{rx[i].data, rx[i].len, rx[i].addr,
                         umem.data(umem.frame_of(rx[i].addr)), rx[i].more};
    }
    return n;
  }
  void release(uint64_t token) override { port_->free_frame(token); }
  void refill() override { port_->refill(); }

  uint8_t* tx_frame(uint64_t* token, uint32_t* room) override {
    uint8_t* p = port_->alloc_tx(token);
    if (p) *room = port_->umem().frame_size() - rings::XskPort::kTxHeadroom;
    return p;
  }
  bool tx_send(uint64_t token, uint32_t len) override { return port_->send(token, len); }
  // The frame's first XskPort::kUserHeadroom bytes: a transmit packet starts
  // at kTxHeadroom, and the kernel reads only the packet.
  void* tx_scratch(uint64_t token) override {
    const rings::Umem& umem = port_->umem();
    return umem.data(umem.frame_of(token));
  }
  void flush() override { port_->flush(); }
  bool rx_quiet() const override { return port_->rx_quiet(); }

  int wait_fds(int* out, int max) const override { return port_->wait_fds(out, max); }
  uint32_t held_frames() const override { return port_->held_frames(); }
  uint32_t total_frames() const override { return port_->frame_budget(); }

  rings::XskPort& port() { return *port_; }

 private:
  std::unique_ptr<rings::XskPort> port_;
};

}  // namespace xdpload::stack
