#include "shim/socket/socket.h"

#include <algorithm>

#include "shim/wait/epoll_set.h"
#include "shim/runtime/runtime.h"

namespace xdpload::shim {

Socket::~Socket() {
  Runtime::get().untrack(this);
  // (Named as the socket the lock's holder is changing: a block reused for
  // another socket must not be taken for it.)
  if (family::core_subject() == this) family::core_subject() = nullptr;
}

int Socket::forget_descriptors(pid_t pid, int fd) {
  auto& d = descriptors;
  size_t before = d.size();
  d.erase(std::remove_if(d.begin(), d.end(),
                         [&](const Descriptor& x) { return x.pid == pid && (fd < 0 || x.fd == fd); }),
          d.end());
  int n = int(before - d.size());
  fd_refs -= n;
  return n;
}

void Socket::count_stamp_user(bool want) {
  if (want == stamp_user) return;
  stamp_user = want;
  Runtime::get().stack()->driver().add_rx_stamp_users(want ? 1 : -1);
}

bool Socket::set_rx_option(int level, int name, const void* value, socklen_t len) {
  if (!rx_cmsg.apply(level, name, value, len)) return false;
  if (accelerated) count_stamp_user(rx_cmsg.wants_stamps());
  return true;
}

void Socket::notify() {
  ++seq;
  waiters.wake_all();
  for (EpollItem* item : watchers) item->set->item_ready(item);
}

}  // namespace xdpload::shim
