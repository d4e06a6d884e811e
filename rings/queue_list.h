// Queue lists: "all", or receive queue numbers and ranges such as "0,2-3",
// as XDPLOAD_QUEUES takes them and xdpload-stat prints them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "rings/port_counters.h"

namespace xdpload::rings {

// Parses `text` into `out` (sorted, without duplicates; empty for "all").
// False for anything else: an empty list, a number beyond kMaxQueues - 1, a
// range that runs backwards, stray characters.
inline bool parse_queue_list(const char* text, std::vector<uint32_t>* out) {
  out->clear();
  if (std::string(text) == "all") return true;
  bool seen[kMaxQueues] = {};
  const char* p = text;
  auto number = [&p](uint32_t* v) {
    if (*p < '0' || *p > '9') return false;
    char* end;
    unsigned long n = strtoul(p, &end, 10);
    if (end - p > 3 || n >= kMaxQueues) return false;
    *v = uint32_t(n);
    p = end;
    return true;
  };
  for (;;) {
    uint32_t lo, hi;
    if (!number(&lo)) return false;
    hi = lo;
    if (*p == '-') {
      ++p;
      if (!number(&hi) || hi < lo) return false;
    }
    for (uint32_t q = lo; q <= hi; ++q) seen[q] = true;
    if (*p == 0) break;
    if (*p++ != ',') return false;
  }
  for (uint32_t q = 0; q < kMaxQueues; ++q)
    if (seen[q]) out->push_back(q);
  return true;
}

// "0-3", "0,2": consecutive numbers as ranges, Linux's list format (CPU
// lists too: host_settings.cc, tools/tune). `ids` ascending.
inline std::string format_queue_list(const uint32_t* ids, uint32_t n) {
  std::string s;
  for (uint32_t i = 0; i < n;) {
    uint32_t j = i;
    while (j + 1 < n && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ',';
    s += std::to_string(ids[i]);
    if (j > i) s += '-' + std::to_string(ids[j]);
    i = j + 1;
  }
  return s;
}

}  // namespace xdpload::rings
