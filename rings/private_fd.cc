#include "rings/private_fd.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace xdpload::rings {

namespace {

// Room for this many private descriptors: one AF_XDP socket per queue (at
// most 64), a dozen BPF and netlink ones, an eventfd per thread that ever
// blocks and one per epoll set the program makes.
constexpr int kSlots = kMaxPrivateFds;
// The kernel's descriptor table grows to hold the highest descriptor, and
// fork() copies (and exit frees) the whole of it: a table of 32768 entries
// (a private range below a limit of 20000) made each fork of a small server
// 90 us slower, one of 4096 15 us (bench/fork_cost with a descriptor held
// at that number, on the kernel). A program with more than 3,584
// descriptors sees its numbers skip the range instead.
constexpr int kCeiling = 4096;

std::atomic<int> g_base{-1};
std::atomic<int> g_slots{kSlots};  // how many of kSlots fit below the limit
std::atomic<uint64_t> g_used[kSlots / 64];

int base() {
  int b = g_base.load(std::memory_order_acquire);
  if (b >= 0) return b;
  rlimit rl{};
  long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? long(rl.rlim_cur) : 1024;
  if (limit > kCeiling) limit = kCeiling;
  // With a small limit the range shrinks to the top quarter; the program
  // keeps the rest.
  int slots = limit / 4 < kSlots ? int(limit / 4) : kSlots;
  b = int(limit) - slots;
  int expected = -1;
  g_slots.store(slots, std::memory_order_relaxed);  // (the same from any racer)
  if (!g_base.compare_exchange_strong(expected, b)) b = expected;
  return b;
}

// System calls, not libc's names: inside the preloaded library those are the
// shim's interposers, which hide exactly these descriptors.
int sys_close(int fd) { return int(syscall(SYS_close, fd)); }

}  // namespace

int to_private_fd(int fd) {
  if (fd < 0) return fd;
  int b = base();
  if (fd >= b && fd < b + kSlots) {
    g_used[(fd - b) / 64].fetch_or(1ull << ((fd - b) % 64));
    return fd;
  }
  int nfd = int(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, b));
  if (nfd < 0 || nfd >= b + kSlots) {
    if (nfd >= 0) sys_close(nfd);
    return fd;  // the range is full or beyond the limit: it stays low
  }
  sys_close(fd);
  g_used[(nfd - b) / 64].fetch_or(1ull << ((nfd - b) % 64));
  return nfd;
}

int dup_to_private(int fd, int keep_free) {
  int b = base();
  if (keep_free > 0) {
    int used = 0;
    for (auto& word : g_used) used += __builtin_popcountll(word.load(std::memory_order_relaxed));
    if (g_slots.load(std::memory_order_relaxed) - used <= keep_free) return -1;
  }
  int nfd = int(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, b));
  if (nfd < 0) return -1;
  if (nfd >= b + kSlots) {
    sys_close(nfd);
    return -1;
  }
  g_used[(nfd - b) / 64].fetch_or(1ull << ((nfd - b) % 64));
  return nfd;
}

void close_private_fd(int fd) {
  if (fd < 0) return;
  int b = base();
  if (fd >= b && fd < b + kSlots) g_used[(fd - b) / 64].fetch_and(~(1ull << ((fd - b) % 64)));
  sys_close(fd);
}

bool is_private_fd(int fd) {
  int b = g_base.load(std::memory_order_acquire);
  if (b < 0 || fd < b || fd >= b + kSlots) return false;
  return g_used[(fd - b) / 64].load(std::memory_order_relaxed) & (1ull << ((fd - b) % 64));
}

int private_fds_in(unsigned first, unsigned last, int* out, int max) {
  int b = g_base.load(std::memory_order_acquire);
  if (b < 0) return 0;
  int n = 0;
  for (int fd = b; fd < b + kSlots && n < max; ++fd)
    if (unsigned(fd) >= first && unsigned(fd) <= last && is_private_fd(fd)) out[n++] = fd;
  return n;
}

}  // namespace xdpload::rings
