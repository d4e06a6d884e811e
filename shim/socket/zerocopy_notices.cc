#include "shim/socket/zerocopy_notices.h"

#include <linux/errqueue.h>
#include <netinet/in.h>

#include "shim/socket/cmsg_writer.h"

namespace xdpload::shim {

void ZeroCopyNotices::sent() {
  const uint32_t id = next_id++;
  // Linux merges into the queued notification when the ids follow on
  // (skb_zerocopy_notify_extend), whatever the code.
  if (pending && id == hi + 1) {
    hi = id;
    return;
  }
  // (A second range while one waits cannot happen here: every send's
  // notification is due at once, so the ids always follow on.)
  pending = true;
  lo = hi = id;
}

bool ZeroCopyNotices::take(msghdr* msg, bool v6) {
  if (!pending) return false;
  pending = false;
  sock_extended_err ee{};
  ee.ee_errno = 0;
  ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
  ee.ee_code = SO_EE_CODE_ZEROCOPY_COPIED;
  ee.ee_info = lo;
  ee.ee_data = hi;
  msg->msg_flags = MSG_ERRQUEUE;
  msg->msg_namelen = 0;
  CmsgWriter w(msg);
  if (v6) {
    struct {
      sock_extended_err ee;
      sockaddr_in6 offender;
    } e{ee, {}};
    w.put(IPPROTO_IPV6, IPV6_RECVERR, &e, sizeof e);
  } else {
    struct {
      sock_extended_err ee;
      sockaddr_in offender;
    } e{ee, {}};
    w.put(IPPROTO_IP, IP_RECVERR, &e, sizeof e);
  }
  w.finish();
  return true;
}

}  // namespace xdpload::shim
