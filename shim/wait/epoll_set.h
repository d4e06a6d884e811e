// EpollSet: an epoll instance that watches accelerated sockets.
//
// The program's epoll descriptor stays a real epoll instance: kernel
// descriptors are registered in it as usual, and so is the kernel side of
// listeners and UDP sockets (local peers, kernel-delivered datagrams). Our
// sockets are watched by EpollItems: a socket that changes (Socket::notify)
// puts its items on their set's ready list, and epoll_wait() reports from
// that list, then from the real instance, one entry per descriptor.
//
// The set's own eventfd is registered in the real instance under a private
// tag and written when a socket becomes ready while a thread sleeps on the
// set, or while the set is itself watched by another poll or epoll (nested):
// the real descriptor is then readable exactly when there is something to
// report. Created lazily: an epoll instance that never sees one of our
// sockets costs nothing.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "shim/socket/socket.h"
#include "shim/wait/waiting.h"

namespace xdpload::shim {

class EpollSet;

class EpollItem : public family::Object {
 public:
  EpollSet* set;
  Socket* sock;
  int fd;
  uint32_t events;     // as registered: EPOLLIN... | EPOLLET | EPOLLONESHOT...
  epoll_data_t data;
  uint64_t seen_seq = ~0ull;  // edge-triggered: the socket's seq last reported
  bool disabled = false;      // EPOLLONESHOT fired; re-armed by EPOLL_CTL_MOD
  bool queued = false;        // on the set's ready list
  bool in_kernel = false;     // the descriptor is registered in the real epoll too (or queued to be)
};

class EpollSet : public family::Object {
 public:
  explicit EpollSet(int epfd) : epfd_(epfd) {}
  // Descriptors of this epoll instance in every process of the family
  // (fork copies them); the set goes with the last.
  int refs = 1;
  ~EpollSet();

  int epfd() const { return epfd_; }
  // Lock held for all of these.
  int ctl(int op, int fd, Socket* s, epoll_event* ev);
  int wait(epoll_event* events, int max, int64_t timeout_ns, const sigset_t* mask);
  void item_ready(EpollItem* item);
  // A thread is in wait() on it (spinning or asleep), and the process of
  // the last one to enter is alive (a process killed while waiting leaves
  // the count up: its set must not take every exclusive wake-up).
  bool has_live_waiter() const;
  void forget(EpollItem* item);  // the socket is gone
  // The set is watched by another poll/epoll: keep its descriptor readable
  // whenever it has something to report.
  void set_nested() { nested_ = true; }
  bool has_ready();
  // The socket became an accelerated TCP connection: its kernel descriptor
  // must leave the real instance (it would report HUP).
  void leave_kernel(EpollItem* item);
  void join_kernel(EpollItem* item);
  // The changes to the real instance that another process of the family
  // asked for (join_kernel/leave_kernel there, for a set it does not hold:
  // one made here after the fork, or a vfork child's), made now, in their
  // order. epoll_wait, epoll_ctl and poll() on the set make them first,
  // and epoll_wait or poll() on a set that nests it; the process that asked woke the
  // set's epoll_wait sleepers, and, if the set is watched from outside,
  // the sleepers in poll() or select() on a set and in epoll_wait on a
  // set that nests one (Runtime::wake_set_watchers). Lock held.
  void apply_kernel_changes();
  bool kernel_changes_pending() const { return kernel_changes_pending_.load(std::memory_order_acquire); }
  // Queued changes this process can make (it holds the set; not a vfork
  // child): what ends a sleep to make them.
  bool changes_to_make_here() const { return kernel_changes_pending() && held_here(); }
  // Another epoll set of ours was added to this one (EPOLL_CTL_ADD of its
  // descriptor; DEL forgets it): its queued changes are made by this set's
  // epoll_wait, whose sleepers another process's change wakes
  // (Runtime::wake_set_watchers). Made in the process that holds the inner
  // set: a sleeper elsewhere (an outer set made before a fork, an inner
  // one after it) is woken but leaves them to the holder's next call.
  // Lock held.
  void note_nested_set(int fd, bool added);
  // The nested sets' queued changes, made (apply) or looked for, down to
  // Linux's depth of nesting (EP_MAX_NESTS). Lock held.
  void apply_nested_changes(int depth = 0);
  bool nested_changes_pending(int depth = 0) const;
  bool nests_sets() const { return !nested_sets_.empty(); }

 private:
  int ensure_efd();
  int collect(epoll_event* out, int max);
  void signal_efd();
  // Does this process hold the set at epfd_? A set made after a fork is
  // only in the process that made it (and the children it forked since):
  // in another, the number is some other descriptor or none.
  bool held_here() const;
  void change_kernel(int op, EpollItem* item);

  int epfd_;
  // The eventfd registered in the real instance, valid in the process that
  // made it (and the children it forked since): another process of the
  // family wakes this set's sleepers through `waiters_` instead.
  int efd_ = -1;
  pid_t efd_owner_ = 0;
  WaitQueue waiters_;
  uint64_t tag_ = 0;
  bool efd_signaled_ = false;
  bool nested_ = false;
  int sleepers_ = 0;
  pid_t waiter_pid_ = 0;  // the process of the last thread to enter wait()
  family::vector<EpollItem*> items_;
  family::vector<EpollItem*> ready_;
  // An interest is its descriptor number and its socket, as Linux keys one
  // by number and file: in a set shared across fork, a child that closed
  // an inherited socket may give its number to a socket of its own and add
  // that too, while the parent's interest in the first stays.
  struct ItemKey {
    int fd;
    const Socket* sock;  // (only compared)
    bool operator==(const ItemKey& o) const { return fd == o.fd && sock == o.sock; }
  };
  struct ItemKeyHash {
    size_t operator()(const ItemKey& k) const {
      return std::hash<const void*>()(k.sock) ^ (size_t(unsigned(k.fd)) * 0x9e3779b97f4a7c15ull);
    }
  };
  family::unordered_map<ItemKey, EpollItem*, ItemKeyHash> index_;
  // Asked by a process that does not hold the set (apply_kernel_changes).
  struct KernelChange {
    int op;  // EPOLL_CTL_ADD or EPOLL_CTL_DEL
    int fd;
    uint32_t events;
    epoll_data_t data;
    uint64_t ino;  // the socket's inode, checked before the change (0: not)
    const Socket* sock;  // the item's key with fd (only compared: it may be gone)
  };
  family::vector<KernelChange> kernel_changes_;
  // Our sets added to this one: the descriptor in the process that added
  // it, and the set it named then. Linux drops an inner set at its last
  // close, the program need not DEL it: an entry whose descriptor no longer
  // names that set (closed, or a number reused) goes at the next
  // apply_nested_changes.
  struct NestedSet {
    int fd;
    const EpollSet* set;
  };
  family::vector<NestedSet> nested_sets_;
  std::atomic<bool> kernel_changes_pending_{false};
};

// epfd -> EpollSet, like the FdTable.
EpollSet* epoll_set_of(int epfd);
EpollSet* epoll_set_create(int epfd);
// close() of an epoll descriptor: true if it was ours.
bool epoll_set_forget(int epfd);
// This process forked into the family: every set it holds gains the child's
// descriptor. Lock held.
void epoll_sets_forked();
// This process leaves the family: it gives up all its sets. Lock held.
void epoll_sets_forget_all();

// Removes a socket from every set that watches it (it is closed, or left
// the shim for the kernel). Lock held.
void detach_from_epolls(Socket* s);
// The socket's kernel descriptor must no longer be in any real epoll.
void leave_kernel_epolls(Socket* s);
// ...and back in them (a socket on the stack that listens again).
void join_kernel_epolls(Socket* s);
// The socket's watchers changed: whether an edge-triggered one is among
// them (Socket::edge_watched). Lock held.
void note_watchers(Socket* s);

}  // namespace xdpload::shim
