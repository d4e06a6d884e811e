#include "shim/socket/socket.h"

#include <algorithm>

#include "shim/wait/epoll_set.h"
#include "shim/runtime/log.h"
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

void Socket::count_stamp_user(bool on) {
  stack::LinkNetif& driver = Runtime::get().stack()->driver();
  const bool want = on && rx_cmsg.wants_stamps();
  if (want != stamp_user) {
    stamp_user = want;
    driver.add_rx_stamp_users(want ? 1 : -1);
  }
  // Hardware stamps are read for every packet when the link has them; a
  // socket that asks for them when it has none is told once how to get
  // them (XDPLOAD_HW_STAMPS asked and refused: the start-up said why).
  if (on && rx_cmsg.wants_hw_stamps() && !driver.rx_hw_stamps() &&
      !Runtime::get().hw_stamps_asked()) {
    static bool said = false;
    if (!said) {
      said = true;
      log_at(kLogError,
             "a socket asks for hardware receive stamps; xdpload reads them only with "
             "XDPLOAD_HW_STAMPS=1 (XDP in driver mode, a driver that gives them): "
             "its data comes without");
    }
  }
}

bool Socket::set_rx_option(int level, int name, const void* value, socklen_t len) {
  if (!rx_cmsg.apply(level, name, value, len)) return false;
  if (accelerated) count_stamp_user(true);
  return true;
}

void Socket::notify() {
  ++seq;
  Runtime::get().counters().remote_wakes += waiters.wake_all();
  notify_watchers();
}

void Socket::notify_connection() {
  ++seq;
  wake_next_acceptor();
  notify_watchers();
}

void Socket::wake_next_acceptor() {
  Runtime::get().counters().remote_wakes += waiters.wake_exclusive();
}

void Socket::notify_watchers() {
  // EPOLLEXCLUSIVE, as Linux's exclusive wait entries: for a listener's
  // new connection, the sets that asked for it, in the order they
  // registered, get the event until one that watches for input has a live
  // thread waiting, and the rest are not told. One worker of a forking
  // server (nginx's default shape) wakes for a new connection, not every
  // worker only for all but one to find accept() empty. Any other change
  // (a close, an error) is every set's, as Linux wakes all for those.
  const bool one_wake = connections_waiting();
  bool exclusive_woken = false;
  for (EpollItem* item : watchers) {
    if (one_wake && (item->events & EPOLLEXCLUSIVE)) {
      if (exclusive_woken) continue;
      exclusive_woken = (item->events & EPOLLIN) && item->set->has_live_waiter();
    }
    item->set->item_ready(item);
  }
}

}  // namespace xdpload::shim
