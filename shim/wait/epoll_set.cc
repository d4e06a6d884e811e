#include "shim/wait/epoll_set.h"

#include <signal.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <string>
#include <cstring>
#include <unordered_map>

#include "rings/private_fd.h"
#include "shim/ext/thread_spin.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/user_memory.h"

namespace xdpload::shim {

namespace {

// epfd -> set, a flat array like the FdTable (sized on first use).
std::atomic<EpollSet*>* g_sets = nullptr;
size_t g_sets_size = 0;
size_t g_sets_high = 0;  // no set at or above this descriptor
uint64_t g_tag_secret = 0;

void ensure_table() {
  if (g_sets) return;
  size_t n = Runtime::get().fds().size();
  if (!n) n = 65536;
  void* p = mmap(nullptr, n * sizeof(std::atomic<EpollSet*>), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;
  if (getrandom(&g_tag_secret, sizeof g_tag_secret, 0) != sizeof g_tag_secret)
    g_tag_secret = uint64_t(mono_ns()) * 0x9e3779b97f4a7c15ull;
  g_sets_size = n;
  g_sets = static_cast<std::atomic<EpollSet*>*>(p);
}

constexpr uint32_t kAlways = EPOLLERR | EPOLLHUP;

// Has the kernel's registration of `fd` in `epfd` used up its one shot
// (EPOLLONESHOT)? Linux then keeps only the private bits of its mask
// (EP_PRIVATE_BITS: EPOLLONESHOT, EPOLLET, EPOLLWAKEUP, EPOLLEXCLUSIVE),
// as /proc/self/fdinfo shows ("tfd: FD events: MASK data: D pos: P ino:
// INO"). Read only when a one-shot registration leaves the kernel (a
// connect onto the stack). `ino` (0: any) tells apart two registrations
// under one number: in a set shared across fork, processes may have
// registered different sockets under it.
bool kernel_shot_used(int epfd, int fd, uint64_t ino) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
  int f = ::open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) return false;
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = libc::read(f, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
  libc::close(f);
  constexpr uint32_t kPrivate = EPOLLONESHOT | EPOLLET | EPOLLWAKEUP | EPOLLEXCLUSIVE;
  for (size_t at = 0; at < text.size();) {
    int tfd;
    unsigned mask;
    unsigned long long data;
    long long pos;
    unsigned long tino = 0;
    const int got = sscanf(text.c_str() + at, "tfd: %d events: %x data: %llx pos:%lli ino:%lx", &tfd,
                           &mask, &data, &pos, &tino);
    if (got >= 2 && tfd == fd && (!ino || got < 5 || tino == ino)) return (mask & ~kPrivate) == 0;
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return false;
}

}  // namespace

EpollSet* epoll_set_of(int epfd) {
  if (static_cast<size_t>(epfd) >= g_sets_size) return nullptr;
  return g_sets[epfd].load(std::memory_order_acquire);
}

EpollSet* epoll_set_create(int epfd) {
  ensure_table();
  if (static_cast<size_t>(epfd) >= g_sets_size) return nullptr;
  auto* set = new EpollSet(epfd);
  g_sets[epfd].store(set, std::memory_order_release);
  if (size_t(epfd) >= g_sets_high) g_sets_high = size_t(epfd) + 1;
  return set;
}

bool epoll_set_forget(int epfd) {
  if (static_cast<size_t>(epfd) >= g_sets_size) return false;
  EpollSet* set = g_sets[epfd].exchange(nullptr, std::memory_order_acq_rel);
  if (!set) return false;
  if (--set->refs == 0) delete set;
  return true;
}

void epoll_sets_forget_all() {
  for (size_t i = 0; i < g_sets_high; ++i) epoll_set_forget(int(i));
}

void epoll_sets_forked() {
  for (size_t i = 0; i < g_sets_high; ++i)
    if (EpollSet* set = g_sets[i].load(std::memory_order_relaxed)) ++set->refs;
}

EpollSet::~EpollSet() {
  auto& idx = index_;
  for (auto& [key, item] : idx) {
    auto& w = item->sock->watchers;
    w.erase(std::remove(w.begin(), w.end(), item), w.end());
    note_watchers(item->sock);
    delete item;
  }
  rings::close_private_fd(efd_);
}

int EpollSet::ensure_efd() {
  if (efd_ >= 0) return 0;
  efd_ = rings::to_private_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (efd_ < 0) return -errno;
  efd_owner_ = process_id();
  tag_ = uint64_t(reinterpret_cast<uintptr_t>(this)) ^ g_tag_secret;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag_;
  if (libc::epoll_ctl(epfd_, EPOLL_CTL_ADD, efd_, &ev) != 0) return -errno;
  return 0;
}

void EpollSet::signal_efd() {
  // Our descriptor number means nothing in another process of the family
  // (a set made after the fork); its sleepers are woken through waiters_.
  if (efd_signaled_ || efd_ < 0 || efd_owner_ != process_id()) return;
  efd_signaled_ = true;
  uint64_t one = 1;
  int saved = errno;
  libc::write(efd_, &one, sizeof one);
  errno = saved;
}

void EpollSet::item_ready(EpollItem* item) {
  if (!item->queued) {
    item->queued = true;
    ready_.push_back(item);
  }
  if (sleepers_ > 0 || nested_) signal_efd();
  if (sleepers_ > 0) Runtime::get().counters().remote_wakes += waiters_.wake_all();
  // Watched from outside by another process of the family, whose kernel
  // instance our eventfd signal does not reach (the eventfd is its
  // owner's): its poll() or outer set looks at has_ready() when woken.
  if (nested_ && efd_owner_ != process_id()) Runtime::get().wake_set_watchers();
}

bool EpollSet::has_live_waiter() const {
  if (sleepers_ <= 0) return false;
  if (waiter_pid_ == process_id()) return true;
  const int saved = errno;
  const bool alive = kill(waiter_pid_, 0) == 0 || errno != ESRCH;
  errno = saved;
  return alive;
}

void EpollSet::forget(EpollItem* item) {
  index_.erase(ItemKey{item->fd, item->sock});
  ready_.erase(std::remove(ready_.begin(), ready_.end(), item), ready_.end());
  items_.erase(std::remove(items_.begin(), items_.end(), item), items_.end());
  delete item;
}

bool EpollSet::held_here() const {
  // (A vfork child has the parent's memory, this table included, but its
  // own descriptors: the set's number may be closed or another there.)
  return epoll_set_of(epfd_) == this && !Runtime::get().vfork_child();
}

// The real instance gains or loses the item's descriptor: now where this
// process holds it (after what others asked first), else by the holder at
// its next epoll call, woken for it. The change carries what it needs: the
// item may be gone by then (a socket that left for the kernel is detached
// at once).
void EpollSet::change_kernel(int op, EpollItem* item) {
  const bool here = held_here();
  // The change is for the socket that has the descriptor (its kernel
  // socket's inode, looked at when the change is made): made later, the
  // holder may have closed the number and reused it meanwhile; made now,
  // the number may be another socket's here, where the item's is that of
  // the process that added it (a set shared across fork: each process adds
  // under its own numbers). Made now on this process's own descriptor of
  // the socket, there is nothing to look at.
  const bool own = here && Runtime::get().fds().get(item->fd) == item->sock;
  kernel_changes_.push_back(
      KernelChange{op, item->fd, item->events, item->data, own ? 0 : item->sock->twin_ino, item->sock});
  kernel_changes_pending_.store(true, std::memory_order_release);
  item->in_kernel = op == EPOLL_CTL_ADD;  // (registered, or to be)
  if (here) {
    apply_kernel_changes();
    return;
  }
  if (sleepers_ > 0) Runtime::get().counters().remote_wakes += waiters_.wake_all();
  // Watched from outside (poll() or select() on it, a set that nests it):
  // those sleepers see the change only once the holder has made it.
  if (nested_) Runtime::get().wake_set_watchers();
}

void EpollSet::note_nested_set(int fd, bool added) {
  auto it = std::find_if(nested_sets_.begin(), nested_sets_.end(),
                         [fd](const NestedSet& n) { return n.fd == fd; });
  if (it != nested_sets_.end()) nested_sets_.erase(it);
  if (added) nested_sets_.push_back(NestedSet{fd, epoll_set_of(fd)});
}

namespace {
constexpr int kMaxNesting = 4;  // EP_MAX_NESTS
}  // namespace

void EpollSet::apply_nested_changes(int depth) {
  if (depth >= kMaxNesting) return;
  for (size_t i = 0; i < nested_sets_.size();) {
    EpollSet* inner = epoll_set_of(nested_sets_[i].fd);
    if (inner != nested_sets_[i].set) {  // closed, or the number reused
      nested_sets_.erase(nested_sets_.begin() + ptrdiff_t(i));
      continue;
    }
    ++i;
    if (inner == this) continue;
    inner->apply_kernel_changes();
    inner->apply_nested_changes(depth + 1);
  }
}

bool EpollSet::nested_changes_pending(int depth) const {
  if (depth >= kMaxNesting) return false;
  for (const NestedSet& n : nested_sets_) {
    const EpollSet* inner = epoll_set_of(n.fd);
    if (inner && inner == n.set && inner != this &&
        (inner->changes_to_make_here() || inner->nested_changes_pending(depth + 1)))
      return true;
  }
  return false;
}

void EpollSet::apply_kernel_changes() {
  if (!kernel_changes_pending() || !held_here()) return;
  for (const KernelChange& c : kernel_changes_) {
    struct stat st;
    if (c.ino && (fstat(c.fd, &st) != 0 || uint64_t(st.st_ino) != c.ino)) continue;
    auto it = index_.find(ItemKey{c.fd, c.sock});
    EpollItem* item = it == index_.end() ? nullptr : it->second;
    if (c.op == EPOLL_CTL_DEL) {
      // A one-shot registration the kernel has fired stays disarmed on the
      // stack, until EPOLL_CTL_MOD, as on Linux.
      if (item && (item->events & EPOLLONESHOT) && kernel_shot_used(epfd_, c.fd, item->sock->twin_ino))
        item->disabled = true;
      libc::epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    } else {
      epoll_event ev{};
      ev.events = c.events;
      ev.data = c.data;
      const bool added = libc::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) == 0;
      if (item) item->in_kernel = added;
    }
  }
  kernel_changes_.clear();
  kernel_changes_pending_.store(false, std::memory_order_release);
}

void EpollSet::leave_kernel(EpollItem* item) {
  if (!item->in_kernel) return;
  change_kernel(EPOLL_CTL_DEL, item);
  // What the kernel socket had to report is gone with it. An item ready on
  // the stack now (a shutdown recorded before the connect) is queued, as
  // Linux keeps an item it found ready on its ready list and looks at it
  // again. Edge-triggered ones too: whether the kernel's edge was already
  // collected cannot be told, and an extra report is harmless to a program
  // that reads until EAGAIN where a lost one would leave it waiting.
  if (item->sock->events() & (item->events | kAlways)) item_ready(item);
}

void EpollSet::join_kernel(EpollItem* item) {
  if (item->in_kernel) return;
  change_kernel(EPOLL_CTL_ADD, item);
}

int EpollSet::ctl(int op, int fd, Socket* s, epoll_event* ev) {
  apply_kernel_changes();
  auto& idx = index_;
  auto it = idx.find(ItemKey{fd, s});
  EpollItem* item = it == idx.end() ? nullptr : it->second;
  // A connection on the stack has nothing to say through its kernel socket.
  bool kernel_part = !s->accelerated || s->kernel_side();
  // do_epoll_ctl's order: the event is read first, then EPOLLEXCLUSIVE is
  // judged (ADD only, with in/out/err/hup/wakeup/et alone), then the
  // interest is looked up.
  bool with_event = op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD;
  if (with_event && !ev) return -EFAULT;
  if (with_event && (ev->events & EPOLLEXCLUSIVE)) {
    constexpr uint32_t kExclusiveOk =
        EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
    if (op == EPOLL_CTL_MOD || (ev->events & ~kExclusiveOk)) return -EINVAL;
  }
  switch (op) {
    case EPOLL_CTL_ADD: {
      if (item) return -EEXIST;
      if (int rc = ensure_efd(); rc < 0) return rc;
      if (kernel_part && libc::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, ev) != 0) return -errno;
      item = new EpollItem{{}, this, s, fd, ev->events, ev->data};
      item->in_kernel = kernel_part;
      idx[ItemKey{fd, s}] = item;
      items_.push_back(item);
      s->watchers.push_back(item);
      note_watchers(s);
      // Reported if ready now, and queued only then, as Linux's ep_insert
      // does: an entry queued while not ready was found by this set's next
      // look, so an EPOLLEXCLUSIVE set that was never told of a connection
      // (another set had a live waiter) still reported it.
      if (s->accelerated && (s->events() & (item->events | kAlways))) item_ready(item);
      return 0;
    }
    case EPOLL_CTL_MOD: {
      if (!item) return -ENOENT;
      if (item->events & EPOLLEXCLUSIVE) return -EINVAL;  // an exclusive interest is not modified
      if (item->in_kernel && libc::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, ev) != 0) return -errno;
      item->events = ev->events;
      note_watchers(s);
      item->data = ev->data;
      item->disabled = false;
      item->seen_seq = ~0ull;  // re-evaluated, and reported if ready, as on Linux
      if (s->accelerated) item_ready(item);
      return 0;
    }
    case EPOLL_CTL_DEL: {
      if (!item) return -ENOENT;
      if (item->in_kernel) libc::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
      auto& w = s->watchers;
      w.erase(std::remove(w.begin(), w.end(), item), w.end());
      note_watchers(s);
      forget(item);
      return 0;
    }
    default: return -EINVAL;
  }
}

bool EpollSet::has_ready() {
  for (EpollItem* item : ready_) {
    if (item->disabled || !item->sock->accelerated) continue;
    uint32_t ev = item->sock->events() & (item->events | kAlways);
    if (ev && (!(item->events & EPOLLET) || item->seen_seq != item->sock->seq)) return true;
  }
  return false;
}

namespace {
// For each event the last collect() wrote: its item has a kernel side in
// the real instance (EpollItem::in_kernel), which may report the same
// descriptor again (wait() merges the two).
thread_local std::vector<uint8_t> t_collected_has_twin;
}  // namespace

int EpollSet::collect(epoll_event* out, int max) {
  // Level-triggered items reported now go back behind the rest, as Linux's
  // ep_send_events puts them back at the tail of the ready list: with fewer
  // slots than ready items, each call then names the next ones, not the
  // same first ones again.
  static thread_local std::vector<EpollItem*> again;
  again.clear();
  t_collected_has_twin.clear();
  int n = 0;
  size_t kept = 0;
  // The program's array is written only where it can be: an item that
  // meets memory it cannot give stays ready, unreported, and the call is
  // EFAULT if it reported nothing (ep_send_events). Looked at once a call
  // (a byte a page), when the first item is to be written.
  int writable = -1;  // slots known writable; -1 not looked at yet
  bool faulted = false;
  for (size_t i = 0; i < ready_.size(); ++i) {
    EpollItem* item = ready_[i];
    if (n == max || faulted) {
      ready_[kept++] = item;
      continue;
    }
    if (item->disabled || !item->sock->accelerated) {
      item->queued = false;
      continue;
    }
    uint32_t ev = item->sock->events() & (item->events | kAlways);
    if (!ev || ((item->events & EPOLLET) && item->seen_seq == item->sock->seq)) {
      item->queued = false;
      continue;
    }
    if (writable < 0) {
      // (The slots this call can fill at most, not the whole array: a
      // program may give a large one.)
      const size_t slots = std::min(size_t(max), ready_.size() - i);
      writable = user_faults_recoverable()
                     ? n + int(writable_prefix(out + n, slots * sizeof *out) / sizeof *out)
                     : max;
    }
    if (n >= writable) {
      faulted = true;
      ready_[kept++] = item;
      continue;
    }
    item->queued = false;
    if (item->events & EPOLLET) item->seen_seq = item->sock->seq;
    out[n].events = ev;
    out[n].data = item->data;
    t_collected_has_twin.push_back(item->in_kernel);
    ++n;
    if (item->events & EPOLLONESHOT) {
      item->disabled = true;
    } else if (!(item->events & EPOLLET)) {
      // Level-triggered: still ready next time unless drained.
      item->queued = true;
      again.push_back(item);
    }
  }
  ready_.resize(kept);
  ready_.insert(ready_.end(), again.begin(), again.end());
  return faulted && n == 0 ? -EFAULT : n;
}

int EpollSet::wait(epoll_event* events, int max, int64_t timeout_ns, const sigset_t* mask) {
  Runtime& rt = Runtime::get();
  if (max <= 0 || max > int(INT_MAX / sizeof(epoll_event))) return -EINVAL;  // (EP_MAX_EVENTS)
  int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;
  pollfd kfd{epfd_, POLLIN, 0};
  SignalMark call_mark = signal_mark();
  for (;;) {
    apply_kernel_changes();
    apply_nested_changes();
    rt.poll_stack();
    int n = collect(events, max);
    if (n < 0) return n;
    // The real instance: kernel descriptors, and the kernel side of ours.
    if (n < max) {
      int m = libc::epoll_wait(epfd_, events + n, max - n, 0);
      if (m < 0) return n ? n : -errno;
      for (int i = n; i < n + m; ++i) {
        if (efd_ >= 0 && events[i].data.u64 == tag_) {
          // Our own eventfd: drain it, it is not the program's. (Only once
          // the set has one: before, tag_ is 0, which is also the data of
          // a program's descriptor 0 or null pointer.) Its number is valid
          // in its owner alone (signal_efd): another process drops the
          // event and leaves the eventfd to the owner.
          if (efd_owner_ == process_id()) {
            uint64_t v;
            libc::read(efd_, &v, sizeof v);
            efd_signaled_ = false;
          }
          events[i] = events[n + m - 1];
          --m;
          --i;
          continue;
        }
        // A descriptor reported from both sides (a listener): one entry.
        // (Only an item with a kernel side: another descriptor that has
        // the same data, a pipe beside a connection, is reported apart, as
        // Linux reports each registration.)
        for (int j = 0; j < n; ++j) {
          if (t_collected_has_twin[size_t(j)] && events[j].data.u64 == events[i].data.u64) {
            events[j].events |= events[i].events;
            events[i] = events[n + m - 1];
            --m;
            --i;
            break;
          }
        }
      }
      n += m;
    }
    // An epoll set watched by another one stays readable while it has
    // level-triggered events left, as on Linux; our eventfd was just drained.
    if (nested_ && has_ready()) signal_efd();
    if (n > 0) return n;
    if (timeout_ns == 0) return 0;
    if (deadline >= 0 && mono_ns() >= deadline) return 0;
    WaitSpec spec;
    spec.kernel = &kfd;
    spec.nkernel = 1;
    spec.deadline_ns = deadline;
    spec.mask = mask;
    spec.restartable = false;  // epoll_wait is never restarted (EINTR)
    spec.spin_kind = kSpinEpollWait;
    spec.call_mark = &call_mark;
    spec.queue = &waiters_;
    spec.watches_sets = nests_sets();
    ++sleepers_;
    waiter_pid_ = process_id();
    kfd.revents = 0;
    int rc;
    {
      // Undone at the sleep's leave (a handler's siglongjmp out of the
      // wait would otherwise leave the count up for good: an EPOLLEXCLUSIVE
      // set then taken for one with a live sleeper, new connections
      // reported to it alone, and every change waking the set).
      UndoIfCancelled if_cancelled([](void* n) { --*static_cast<int*>(n); }, &sleepers_,
                                   [](void* n) { ++*static_cast<int*>(n); });
      rc = rt.block(spec, [&] {
        return kfd.revents || has_ready() || changes_to_make_here() || nested_changes_pending();
      });
      if (!if_cancelled.done()) --sleepers_;
    }
    if (rc == -EAGAIN) return 0;
    if (rc < 0) return rc;
  }
}

void detach_from_epolls(Socket* s) {
  for (EpollItem* item : s->watchers) item->set->forget(item);
  s->watchers.clear();
  note_watchers(s);
}

void note_watchers(Socket* s) {
  bool edge = false;
  for (EpollItem* item : s->watchers) edge |= (item->events & EPOLLET) != 0;
  __atomic_store_n(&s->edge_watched, edge, __ATOMIC_RELAXED);
}

void leave_kernel_epolls(Socket* s) {
  for (EpollItem* item : s->watchers) item->set->leave_kernel(item);
}

void join_kernel_epolls(Socket* s) {
  for (EpollItem* item : s->watchers) item->set->join_kernel(item);
}

}  // namespace xdpload::shim
