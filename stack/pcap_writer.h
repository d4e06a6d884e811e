// PcapWriter: frames to a pcap file (nanosecond timestamps, Ethernet), for
// XDPLOAD_PCAP. tcpdump on the interface cannot see what goes through the
// AF_XDP socket: the steered frames never reach the kernel's stack and the
// frames xdpload sends leave from the socket's TX ring, so the capture is
// taken where they enter and leave the stack.
//
// Records are buffered and written when the buffer fills, when the oldest
// buffered record is over 200 ms old (checked as records arrive), and on
// flush(). Not thread-safe: the caller serialises (the CoreLock).
#pragma once

#include "family/arena.h"
#include <cstdint>
#include <vector>

#include "rings/error_text.h"

namespace xdpload::stack {

class PcapWriter : public family::Object {
 public:
  ~PcapWriter();
  // Creates (truncates) `path` and writes the file header.
  int open(const char* path, uint32_t snaplen, ErrorText* why);
  // One record of `len` bytes gathered from `nparts` pieces.
  struct Piece {
    const uint8_t* data;
    uint32_t len;
  };
  void record(const Piece* pieces, uint32_t nparts);
  void flush();
  uint64_t records() const { return records_; }
  // Write errors (disk full...) stop the capture; the traffic goes on.
  bool failed() const { return failed_; }

 private:
  void append(const void* p, size_t n);
  int fd_ = -1;
  uint32_t snaplen_ = 0;
  family::vector<uint8_t> buf_;
  int64_t oldest_ns_ = 0;
  uint64_t records_ = 0;
  bool failed_ = false;
};

}  // namespace xdpload::stack
