#include "stack/kernel_routes.h"

#include <netinet/in.h>

#include <cstring>

namespace xdpload::stack {

namespace {
void parse_route(const nlmsghdr* m, void* ctx) {
  if (m->nlmsg_type != RTM_NEWROUTE) return;
  auto* out = static_cast<Route*>(ctx);
  auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(m));
  out->type = rt->rtm_type;
  nl_for_each_attr(RTM_RTA(rt), int(RTM_PAYLOAD(m)), [&](const rtattr* a) {
    switch (a->rta_type) {
      case RTA_OIF: memcpy(&out->oif, RTA_DATA(a), 4); break;
      case RTA_GATEWAY: memcpy(&out->gateway, RTA_DATA(a), 4); break;
      case RTA_PREFSRC: memcpy(&out->prefsrc, RTA_DATA(a), 4); break;
    }
  });
}
}  // namespace

int KernelRoutes::lookup(uint32_t dst, Route* out) {
  struct {
    nlmsghdr h;
    rtmsg r;
    char attrs[64];
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  req.h.nlmsg_type = RTM_GETROUTE;
  req.r.rtm_family = AF_INET;
  req.r.rtm_dst_len = 32;
  nl_add_attr(&req.h, sizeof req, RTA_DST, &dst, 4);
  *out = Route{};
  return nl_.request(&req.h, parse_route, out);
}

}  // namespace xdpload::stack
