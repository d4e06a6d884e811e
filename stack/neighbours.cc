#include "stack/neighbours.h"

#include <linux/neighbour.h>
#include <netinet/in.h>

namespace xdpload::stack {

namespace {
constexpr uint16_t kUsable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT |
                             NUD_NOARP;

void apply_cb(const nlmsghdr* m, void* ctx) { static_cast<NeighbourTable*>(ctx)->apply(m); }
}  // namespace

int NeighbourTable::open_kernel(int ifindex, ErrorText* why) {
  ifindex_ = ifindex;
  if (int rc = requests_.open(0, why); rc < 0) return rc;
  struct {
    nlmsghdr h;
    ndmsg n;
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  req.h.nlmsg_type = RTM_GETNEIGH;
  req.h.nlmsg_flags = NLM_F_DUMP;
  req.n.ndm_family = AF_INET;
  req.n.ndm_ifindex = ifindex;
  if (int rc = requests_.request(&req.h, apply_cb, this); rc < 0)
    return why->set(-rc, "cannot read the kernel's neighbour table: %s", strerror(-rc));
  return 0;
}

void NeighbourTable::set_static(uint32_t ip, const uint8_t mac[6]) {
  Entry& e = entries_[ip];
  memcpy(e.mac, mac, 6);
  e.valid = true;
  ++gen_;
  changed_ = true;
}

void NeighbourTable::apply(const nlmsghdr* m) {
  if (m->nlmsg_type != RTM_NEWNEIGH && m->nlmsg_type != RTM_DELNEIGH) return;
  auto* nd = static_cast<const ndmsg*>(NLMSG_DATA(m));
  if (nd->ndm_family != AF_INET || nd->ndm_ifindex != ifindex_) return;
  uint32_t ip = 0;
  const uint8_t* mac = nullptr;
  bool have_ip = false;
  nl_for_each_attr(reinterpret_cast<const rtattr*>(nd + 1), int(m->nlmsg_len - NLMSG_LENGTH(sizeof *nd)),
                   [&](const rtattr* a) {
                     if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 4) {
                       memcpy(&ip, RTA_DATA(a), 4);
                       have_ip = true;
                     } else if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
                       mac = static_cast<const uint8_t*>(RTA_DATA(a));
                     }
                   });
  if (!have_ip) return;
  ++gen_;
  if (m->nlmsg_type == RTM_DELNEIGH) {
    if (entries_.erase(ip)) ++counters_.removals;
    return;
  }
  Entry& e = entries_[ip];
  if ((nd->ndm_state & kUsable) && mac) {
    if (!e.valid || memcmp(e.mac, mac, 6) != 0) {
      memcpy(e.mac, mac, 6);
      e.valid = true;
      ++counters_.updates;
      changed_ = true;
    }
  } else if (nd->ndm_state & NUD_FAILED) {
    if (e.valid) ++counters_.removals;
    e.valid = false;
  }
  // INCOMPLETE: resolution under way; keep what we had.
}

void NeighbourTable::send_use(uint32_t ip) {
  struct {
    nlmsghdr h;
    ndmsg n;
    char attrs[32];
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  req.h.nlmsg_type = RTM_NEWNEIGH;
  req.h.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  req.n.ndm_family = AF_INET;
  req.n.ndm_ifindex = ifindex_;
  req.n.ndm_state = NUD_NONE;
  req.n.ndm_flags = NTF_USE;
  nl_add_attr(&req.h, sizeof req, NDA_DST, &ip, 4);
  ++counters_.resolve_requests;
  requests_.request(&req.h, [](const nlmsghdr*, void*) {}, nullptr);
}

void NeighbourTable::resolve(uint32_t ip, uint64_t now_ms) {
  if (!ifindex_) return;
  Entry& e = entries_[ip];
  if (e.last_request_ms && now_ms - e.last_request_ms < 200) return;
  e.last_request_ms = now_ms;
  send_use(ip);
}

void NeighbourTable::refresh_used(uint64_t now_ms, uint64_t window_ms) {
  if (!ifindex_) return;
  for (auto& [ip, e] : entries_) {
    if (e.valid && e.last_used_ms && now_ms - e.last_used_ms < window_ms) {
      e.last_request_ms = now_ms;
      send_use(ip);
    }
  }
}

}  // namespace xdpload::stack
