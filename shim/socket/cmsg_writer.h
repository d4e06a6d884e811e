// Control messages written as Linux's put_cmsg writes them: the header and
// as much of the data as fits, MSG_CTRUNC when not all of it did (or when
// there is no room for a header at all), and msg_controllen set to the
// bytes used when done. A control buffer the program cannot write takes
// nothing: put_cmsg's EFAULT, which its callers in the receive paths
// ignore (the data is returned, msg_controllen says 0).
#pragma once

#include <sys/socket.h>

#include <cstring>

#include "shim/socket/user_memory.h"

namespace xdpload::shim {

class CmsgWriter {
 public:
  explicit CmsgWriter(msghdr* msg)
      : msg_(msg),
        cursor_(static_cast<char*>(msg->msg_control)),
        left_(msg->msg_control ? msg->msg_controllen : 0) {}

  void put(int level, int type, const void* data, size_t len) {
    if (!cursor_ || left_ < sizeof(cmsghdr)) {
      msg_->msg_flags |= MSG_CTRUNC;
      return;
    }
    size_t cmlen = CMSG_LEN(len);
    if (left_ < cmlen) {
      msg_->msg_flags |= MSG_CTRUNC;
      cmlen = left_;
    }
    // (MSG_CTRUNC stays set: put_cmsg sets it before it writes.)
    if (!user_writable(cursor_, cmlen)) return;
    cmsghdr h{};
    h.cmsg_len = cmlen;
    h.cmsg_level = level;
    h.cmsg_type = type;
    memcpy(cursor_, &h, sizeof h);
    memcpy(cursor_ + CMSG_LEN(0), data, cmlen - CMSG_LEN(0));
    size_t space = CMSG_SPACE(len);
    if (space > left_) space = left_;
    cursor_ += space;
    left_ -= space;
  }

  // msg_controllen: what was written.
  void finish() {
    msg_->msg_controllen =
        msg_->msg_control ? size_t(cursor_ - static_cast<char*>(msg_->msg_control)) : 0;
  }

 private:
  msghdr* msg_;
  char* cursor_;
  size_t left_;
};

}  // namespace xdpload::shim
