// Internet checksum (RFC 1071) and TCP/UDP checksum verification.
//
// Sums are kept in memory byte order ("native" 16-bit loads): a one's
// complement sum commutes with byte swapping, so the folded result can be
// compared to, or stored into, a header field directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace xdpload::stack {

// One's complement sum of `len` bytes, folded to 16 bits, not inverted.
inline uint16_t csum_fold(uint64_t sum) {
  sum = (sum & 0xffffffffull) + (sum >> 32);
  sum = (sum & 0xffffffffull) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

inline uint64_t csum_add(uint64_t sum, uint64_t v) {
  sum += v;
  return sum + (sum < v);  // end-around carry
}

inline uint64_t csum_partial(const void* data, size_t len, uint64_t sum = 0) {
  auto* p = static_cast<const uint8_t*>(data);
  while (len >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    memcpy(&c, p + 16, 8);
    memcpy(&d, p + 24, 8);
    sum = csum_add(sum, a);
    sum = csum_add(sum, b);
    sum = csum_add(sum, c);
    sum = csum_add(sum, d);
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    uint64_t a;
    memcpy(&a, p, 8);
    sum = csum_add(sum, a);
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t a;
    memcpy(&a, p, 4);
    sum = csum_add(sum, a);
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t a;
    memcpy(&a, p, 2);
    sum = csum_add(sum, a);
    p += 2;
    len -= 2;
  }
  if (len) sum = csum_add(sum, *p);  // the odd byte is the high-order byte of its word
  return sum;
}

// The IPv4 pseudo-header sum for TCP/UDP (addresses in network order).
inline uint64_t csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t l4_len) {
  uint64_t sum = uint64_t(saddr) + daddr;
  // proto and length as big-endian 16-bit words, in memory order.
  sum += uint16_t(proto << 8);
  sum += uint16_t((l4_len >> 8) | (l4_len << 8));
  return sum;
}

enum class L4Checksum {
  kGood,     // complete and correct (or UDP without checksum)
  kPartial,  // only the pseudo-header sum: a local sender left it to offload
  kBad,
};

// Adds the sum of a block that starts `offset` bytes into the summed data:
// a block at an odd offset has its bytes in the other halves of the words.
inline uint64_t csum_block_add(uint64_t sum, uint64_t block_sum, size_t offset) {
  if (offset & 1) {
    uint16_t f = csum_fold(block_sum);
    block_sum = uint16_t((f >> 8) | (f << 8));
  }
  return csum_add(sum, block_sum);
}

// Classifies a TCP/UDP checksum from the pseudo-header sum, the sum over the
// whole segment (field included) and the field itself.
inline L4Checksum classify_l4(uint64_t pseudo, uint64_t segment_sum, uint16_t field, bool udp) {
  if (udp && field == 0) return L4Checksum::kGood;  // UDP without checksum
  if (csum_fold(csum_add(pseudo, segment_sum)) == 0xffff) return L4Checksum::kGood;
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not
  // inverted, and the rest was left to hardware that never ran.
  if (field == csum_fold(pseudo)) return L4Checksum::kPartial;
  return L4Checksum::kBad;
}

// Verifies the TCP or UDP checksum of `l4` (l4_len bytes in one buffer,
// checksum field at `field_offset`).
inline L4Checksum check_l4(uint32_t saddr, uint32_t daddr, uint8_t proto, const uint8_t* l4,
                           uint16_t l4_len, size_t field_offset) {
  uint16_t field;
  memcpy(&field, l4 + field_offset, 2);
  return classify_l4(csum_pseudo(saddr, daddr, proto, l4_len), csum_partial(l4, l4_len), field,
                     proto == 17);
}

}  // namespace xdpload::stack
