// PcapLink: a Link that passes everything to another one and records each
// frame received and sent in a pcap file (XDPLOAD_PCAP). A packet spread over
// several frames (multi-buffer) is one record.
#pragma once

#include "family/arena.h"
#include <iterator>
#include <map>
#include <memory>

#include "stack/link.h"
#include "stack/pcap_writer.h"

namespace xdpload::stack {

class PcapLink final : public Link {
 public:
  PcapLink(std::unique_ptr<Link> inner, std::unique_ptr<PcapWriter> writer)
      : inner_(std::move(inner)), writer_(std::move(writer)) {}

  uint32_t rx_burst(LinkFrame* out, uint32_t max) override {
    uint32_t n = inner_->rx_burst(out, max);
    for (uint32_t i = 0; i < n; ++i) {
      if (nrx_ < kMaxPieces) rx_[nrx_++] = PcapWriter::Piece{out[i].data, out[i].len};
      if (!out[i].more) {
        writer_->record(rx_, nrx_);
        nrx_ = 0;
      }
    }
    // A packet whose last frame is in the next burst: its first frames are
    // still the stack's (it holds a chain until the end), so they stay valid.
    return n;
  }
  void release(uint64_t token) override {
    tx_data_.erase(token);  // a transmit frame given back unsent
    inner_->release(token);
  }
  void refill() override { inner_->refill(); }
  uint64_t rx_hw_stamp(const LinkFrame& f) const override { return inner_->rx_hw_stamp(f); }
  bool rx_hw_stamps() const override { return inner_->rx_hw_stamps(); }

  uint8_t* tx_frame(uint64_t* token, uint32_t* room) override {
    uint8_t* p = inner_->tx_frame(token, room);
    if (p) tx_data_[*token] = p;
    return p;
  }
  bool tx_send(uint64_t token, uint32_t len, TxChecksum csum) override {
    // The packet may start after where tx_frame() said: find the frame
    // whose token is the closest at or below this one.
    auto it = tx_data_.upper_bound(token);
    if (it != tx_data_.begin() && token - std::prev(it)->first < kMaxOffset) {
      --it;
      PcapWriter::Piece piece{it->second + (token - it->first), len};
      writer_->record(&piece, 1);
      tx_data_.erase(it);
    }
    return inner_->tx_send(token, len, csum);
  }
  bool tx_send_kept(uint64_t token, uint32_t len, TxChecksum csum) override {
    // The frame stays the stack's (sent again if lost): recorded, not forgotten.
    auto it = tx_data_.upper_bound(token);
    if (it != tx_data_.begin() && token - std::prev(it)->first < kMaxOffset) {
      --it;
      PcapWriter::Piece piece{it->second + (token - it->first), len};
      writer_->record(&piece, 1);
    }
    return inner_->tx_send_kept(token, len, csum);
  }
  bool tx_kept_busy(uint64_t token) const override { return inner_->tx_kept_busy(token); }
  bool tx_checksum_offload() const override { return inner_->tx_checksum_offload(); }
  uint8_t* frame_memory(size_t* len) const override { return inner_->frame_memory(len); }
  void* tx_scratch(uint64_t token) override { return inner_->tx_scratch(token); }
  void flush() override { inner_->flush(); }
  bool tx_blocked() const override { return inner_->tx_blocked(); }
  bool rx_quiet() const override { return inner_->rx_quiet(); }

  int wait_fds(int* out, int max) const override { return inner_->wait_fds(out, max); }
  uint32_t held_frames() const override { return inner_->held_frames(); }
  uint32_t total_frames() const override { return inner_->total_frames(); }
  uint32_t spare_frames() const override { return inner_->spare_frames(); }

  PcapWriter& writer() { return *writer_; }

 private:
  static constexpr uint32_t kMaxPieces = 32;
  // How far after tx_frame()'s token a packet may start (alignment slack).
  static constexpr uint64_t kMaxOffset = 256;
  std::unique_ptr<Link> inner_;
  std::unique_ptr<PcapWriter> writer_;
  PcapWriter::Piece rx_[kMaxPieces];
  uint32_t nrx_ = 0;
  std::map<uint64_t, uint8_t*, std::less<uint64_t>, family::Allocator<std::pair<const uint64_t, uint8_t*>>> tx_data_;  // transmit frames held: token -> data
};

}  // namespace xdpload::stack
