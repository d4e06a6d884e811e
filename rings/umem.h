// Umem: the packet memory an AF_XDP socket shares with the kernel.
//
// `count` frames of `frame_size` bytes in one mapping: 2 MiB hugepages when
// the system has them reserved (fewer TLB misses on a large UMEM), else normal
// pages; on the interface's NUMA node when it has one, else the node we run
// on; locked in memory so that the rx/tx path never takes a page fault.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rings/error_text.h"

namespace xdpload::rings {

struct UmemConfig {
  uint32_t frame_count = 16384;  // the whole interface's: half go to the fill rings
  uint32_t frame_size = 4096;  // power of two, 2048..4096 (kernel's limits)
  int numa_node = -1;          // -1: the node this thread runs on
  // Backed by a memfd that other processes can map (a broker's UMEM, which
  // its programs map from the descriptor it hands them).
  bool shareable = false;
};

class Umem {
 public:
  Umem() = default;
  ~Umem();
  Umem(const Umem&) = delete;
  Umem& operator=(const Umem&) = delete;

  static constexpr uint32_t kMinFrames = 64;
  static constexpr uint32_t kMaxFrames = 1u << 20;  // 4 GiB of 4 KiB frames

  // Validates the configuration and maps the memory.
  int create(const UmemConfig& config, ErrorText* why);
  // Maps another process's shareable UMEM from its memfd (a program of a
  // broker). Takes `fd` (closed here once mapped, or on failure).
  int adopt(int fd, uint32_t frame_count, uint32_t frame_size, size_t map_bytes, ErrorText* why);
  size_t mapped_bytes() const { return mapped_; }
  // The memfd behind a shareable UMEM, -1 otherwise.
  int fd() const { return fd_; }

  uint8_t* base() const { return base_; }
  size_t length() const { return length_; }
  uint32_t frame_count() const { return frame_count_; }
  uint32_t frame_size() const { return frame_size_; }
  uint32_t frame_shift() const { return frame_shift_; }
  bool hugepages() const { return hugepages_; }
  bool locked() const { return locked_; }
  int numa_node() const { return numa_node_; }

  uint8_t* data(uint64_t addr) const { return base_ + addr; }
  uint64_t addr_of(const void* p) const { return static_cast<const uint8_t*>(p) - base_; }
  bool owns(const void* p) const {
    auto* b = static_cast<const uint8_t*>(p);
    return b >= base_ && b < base_ + length_;
  }
  // Start of the frame that holds `addr`.
  uint64_t frame_of(uint64_t addr) const { return addr & ~uint64_t(frame_size_ - 1); }

 private:
  uint8_t* base_ = nullptr;
  size_t length_ = 0;
  size_t mapped_ = 0;
  uint32_t frame_count_ = 0;
  uint32_t frame_size_ = 0;
  uint32_t frame_shift_ = 0;
  bool hugepages_ = false;
  bool locked_ = false;
  int numa_node_ = -1;
  int fd_ = -1;
};

}  // namespace xdpload::rings
