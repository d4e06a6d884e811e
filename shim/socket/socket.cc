#include "shim/socket/socket.h"

#include "shim/wait/epoll_set.h"
#include "shim/runtime/runtime.h"

namespace xdpload::shim {

Socket::~Socket() { Runtime::get().untrack(this); }

void Socket::notify() {
  ++seq;
  waiters.wake_all();
  for (EpollItem* item : watchers) item->set->item_ready(item);
}

}  // namespace xdpload::shim
