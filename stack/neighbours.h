// NeighbourTable: next-hop MAC addresses, as the kernel knows them.
//
// The kernel owns ARP. We read its neighbour table for our interface once,
// then follow its changes (RTM_NEWNEIGH/DELNEIGH events), so a peer whose MAC
// changes is followed as soon as the kernel learns it. For an address the
// kernel has no entry for, we ask it to resolve one (RTM_NEWNEIGH with
// NTF_USE, as if the kernel itself wanted to send there) and wait for the
// event. Entries we use are re-asked periodically, so that the kernel
// re-confirms them even though our traffic never passes through it.
//
// A table without a kernel behind it (a test's fake link) holds only the
// entries set with set_static().
#pragma once

#include "family/arena.h"
#include <cstdint>
#include <cstring>
#include <unordered_map>

#include "stack/netlink.h"

namespace xdpload::stack {

struct NeighbourCounters {
  uint64_t resolve_requests = 0;  // NTF_USE requests sent to the kernel
  uint64_t updates = 0;           // entries whose MAC the kernel set or changed
  uint64_t removals = 0;          // entries the kernel deleted or marked failed
};

class NeighbourTable {
 public:
  // Reads the kernel's table for `ifindex`; the owner then feeds changes to
  // apply(). Subscribe to events before calling this, so none is missed.
  int open_kernel(int ifindex, ErrorText* why);
  void set_static(uint32_t ip, const uint8_t mac[6]);

  // ip in network order. True, with the MAC, when known.
  bool lookup(uint32_t ip, uint8_t mac[6], uint64_t now_ms) {
    if (ip == cached_ip_ && cached_gen_ == gen_) {
      memcpy(mac, cached_mac_, 6);
      cached_entry_->last_used_ms = now_ms;
      return true;
    }
    auto it = entries_.find(ip);
    if (it == entries_.end() || !it->second.valid) return false;
    it->second.last_used_ms = now_ms;
    memcpy(mac, it->second.mac, 6);
    cached_ip_ = ip;
    cached_gen_ = gen_;
    cached_entry_ = &it->second;
    memcpy(cached_mac_, it->second.mac, 6);
    return true;
  }

  // Asks the kernel to resolve `ip` (at most every 200 ms per address).
  void resolve(uint32_t ip, uint64_t now_ms);
  // True when some entry gained or changed its MAC since the last call.
  bool take_changed() {
    bool c = changed_;
    changed_ = false;
    return c;
  }
  // Re-asks the kernel about entries used in the last `window_ms`.
  void refresh_used(uint64_t now_ms, uint64_t window_ms);

  bool kernel_backed() const { return ifindex_ != 0; }
  const NeighbourCounters& counters() const { return counters_; }

  // Applies one RTM_NEWNEIGH/RTM_DELNEIGH message: from the initial dump or
  // from the owner's event socket (subscribed to RTMGRP_NEIGH).
  void apply(const nlmsghdr* m);

 private:
  struct Entry {
    uint8_t mac[6] = {};
    bool valid = false;
    uint64_t last_request_ms = 0;
    uint64_t last_used_ms = 0;
  };
  void send_use(uint32_t ip);

  family::unordered_map<uint32_t, Entry> entries_;
  int ifindex_ = 0;
  Netlink requests_;
  NeighbourCounters counters_;
  bool changed_ = false;
  // One-entry cache: most traffic goes to one next hop.
  uint32_t cached_ip_ = 0;
  uint64_t cached_gen_ = ~0ull;
  uint64_t gen_ = 0;
  Entry* cached_entry_ = nullptr;
  uint8_t cached_mac_[6] = {};
};

}  // namespace xdpload::stack
