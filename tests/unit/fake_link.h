// FakeLink: a test double for stack::Link. Two of them joined back to back
// carry frames between two Stacks in one process, with a memcpy standing in
// for the wire. No kernel, no AF_XDP: for testing lwIP and the netif driver.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <vector>

#include "stack/checksum.h"
#include "stack/link.h"

namespace xdpload::testing {

class FakeLink final : public stack::Link {
 public:
  static constexpr uint32_t kFrameSize = 2048;
  static constexpr uint32_t kDataOffset = 128;  // after the scratch area

  // Tokens are addresses, as UMEM addresses are: frame * kFrameSize + offset.
  explicit FakeLink(uint32_t frames) : memory_(size_t(frames) * kFrameSize), count_(frames) {
    for (uint32_t i = 0; i < frames; ++i) free_.push_back(i);
  }
  void connect(FakeLink* peer) { peer_ = peer; }

  uint32_t rx_burst(stack::LinkFrame* out, uint32_t max) override {
    uint32_t n = 0;
    while (n < max && !rx_.empty()) {
      auto [frame, len] = rx_.front();
      rx_.pop_front();
      uint64_t token = uint64_t(frame) * kFrameSize + kDataOffset;
      out[n++] = stack::LinkFrame{memory_.data() + token, len, token,
                                  memory_.data() + size_t(frame) * kFrameSize, false};
      ++held_;
    }
    return n;
  }
  void release(uint64_t token) override {
    free_.push_back(uint32_t(token / kFrameSize));
    --held_;
  }
  void refill() override {}

  uint8_t* tx_frame(uint64_t* token, uint32_t* room) override {
    if (free_.empty()) return nullptr;
    uint32_t f = free_.back();
    free_.pop_back();
    ++held_;
    *token = uint64_t(f) * kFrameSize + kDataOffset;
    *room = kFrameSize - kDataOffset;
    return memory_.data() + *token;
  }
  void* tx_scratch(uint64_t token) override {
    return memory_.data() + (token / kFrameSize) * kFrameSize;
  }
  // Sees every frame this link sends, and may change it in place; true
  // drops it (a lossy wire, for the loss-recovery tests).
  std::function<bool(uint8_t* frame, uint32_t len)> wire_filter;

  // Checksum offload as AF_XDP copy mode gives it: the "wire" completes a
  // packet's L4 checksum from the pseudo-header sum the sender left
  // (as skb_checksum_help does). Off: a request for it is counted as misuse.
  bool offload_checksums = false;
  bool tx_checksum_offload() const override { return offload_checksums; }

  bool tx_send(uint64_t token, uint32_t len, stack::TxChecksum csum) override {
    // The "wire": copy into a frame of the peer's, or drop when it has none
    // free, as a NIC with an empty fill ring would.
    uint8_t* src = memory_.data() + token;
    release(token);
    if (csum.start) {
      if (!offload_checksums || uint32_t(csum.start) + csum.offset + 2 > len) {
        ++bad_offloads_;
      } else {
        const uint16_t sum =
            uint16_t(~stack::csum_fold(stack::csum_partial(src + csum.start, len - csum.start)));
        memcpy(src + csum.start + csum.offset, &sum, 2);
        ++completed_;
      }
    }
    if (wire_filter && wire_filter(src, len)) {
      ++filtered_;
      return true;
    }
    if (peer_->free_.empty()) {
      ++dropped_;
      return true;
    }
    uint32_t f = peer_->free_.back();
    peer_->free_.pop_back();
    memcpy(peer_->memory_.data() + size_t(f) * kFrameSize + kDataOffset, src, len);
    peer_->rx_.push_back({f, len});
    ++sent_;
    return true;
  }
  // Puts a frame on the wire as if this link had sent it: a test's wire
  // filter holds a frame back and delivers it later (reordering).
  void deliver(const uint8_t* data, uint32_t len) {
    if (peer_->free_.empty()) {
      ++dropped_;
      return;
    }
    uint32_t f = peer_->free_.back();
    peer_->free_.pop_back();
    memcpy(peer_->memory_.data() + size_t(f) * kFrameSize + kDataOffset, data, len);
    peer_->rx_.push_back({f, len});
  }

  void flush() override {}
  int wait_fds(int*, int) const override { return 0; }
  uint32_t held_frames() const override { return held_; }
  uint32_t total_frames() const override { return count_; }

  uint32_t free_frames() const { return uint32_t(free_.size()); }
  uint32_t queued() const { return uint32_t(rx_.size()); }
  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t filtered() const { return filtered_; }
  uint64_t checksums_completed() const { return completed_; }
  uint64_t bad_offloads() const { return bad_offloads_; }

 private:
  std::vector<uint8_t> memory_;
  uint32_t count_;
  std::vector<uint32_t> free_;
  std::deque<std::pair<uint32_t, uint32_t>> rx_;
  FakeLink* peer_ = nullptr;
  uint32_t held_ = 0;
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
  uint64_t filtered_ = 0;
  uint64_t completed_ = 0;
  uint64_t bad_offloads_ = 0;
};

}  // namespace xdpload::testing
