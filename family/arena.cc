#include "family/arena.h"

#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// Not poisoned under ASan: its shadow memory is private to each process,
// so a block allocated in one process of the family would look poisoned in
// the others. ASan checks the rest (globals, stacks, the private heap).
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))

namespace xdpload::family {

namespace {

// Size classes: multiples of 16 up to 1 KiB, then powers of two.
constexpr int kSmallClasses = 64;
constexpr int kClasses = kSmallClasses + 22;  // up to 4 GiB
constexpr uint32_t kBlockMagic = 0x58464d41;  // "XFMA": handed out
// A block on a free list. A second release of it is refused (said): taken
// again, it would be handed out twice, and two of lwIP's PCBs at one
// address make its lists cyclic (a program spinning in tcp_connect was
// seen once; its cause not found). Best effort: two releases racing from
// two processes can both pass.
constexpr uint32_t kFreeMagic = 0x58464d46;  // "XFMF"
constexpr size_t kHeaderPage = 4096;

struct Block {
  uint32_t cls;
  uint32_t magic;
  uint64_t requested;
};
static_assert(sizeof(Block) == 16);

struct FreeBlock {
  FreeBlock* next;
};

// The stack's own free lists (alloc_core_locked): classes up to 4 KiB
// (lwIP's segments, pbuf headers and PBUF_RAM data), a bounded number each.
constexpr int kCoreClasses = kSmallClasses + 2;
constexpr uint32_t kCoreCacheMax = 256;

struct Header {
  SharedMutex lock;  // guards top, in_use and the free lists
  uint64_t top;      // offset of the first never-used byte
  uint64_t in_use;
  FreeBlock* free[kClasses];
  SharedMutex core;
  void* core_subject;  // what the core lock's holder is changing (core_subject())
  uint64_t id;
  void* roots[int(Root::Count)];
  // Guarded by the core lock: blocks the stack freed, kept for its next
  // allocations, and the change they make to in_use (bytes handed out from
  // this cache minus bytes put back into it; bytes_in_use() adds it). A
  // block may leave by the other side with another size than it came in,
  // so either count alone may wrap; their sum is exact.
  FreeBlock* core_free[kCoreClasses];
  uint32_t core_count[kCoreClasses];
  int64_t core_delta;
};
static_assert(sizeof(Header) <= kHeaderPage);

Header* g_arena = nullptr;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::atomic<bool> g_said_full{false};
// Without an arena (mmap refused): the lock and roots of a single process.
SharedMutex g_private_core;
void* g_private_core_subject = nullptr;
void* g_private_roots[int(Root::Count)];

size_t class_size(int cls) {
  return cls < kSmallClasses ? size_t(cls + 1) * 16 : size_t(2048) << (cls - kSmallClasses);
}

int class_of(size_t n) {
  if (n <= 1024) return n ? int((n + 15) / 16) - 1 : 0;
  int log2 = 64 - __builtin_clzll(n - 1);  // smallest k with 2^k >= n
  return kSmallClasses + (log2 - 11);
}

uint64_t random_id() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = uint64_t(ts.tv_nsec) * 0x9e3779b97f4a7c15ull ^ uint64_t(getpid());
  }
  return v;
}

void create() {
  // Mapped inaccessible, then opened: under mlockall(MCL_FUTURE) (xdpload
  // --mlock) the kernel fills a new mapping at once, and this one is a 4 GiB
  // reservation that must stay sparse. It does not fill an inaccessible
  // mapping, and mprotect() of a shared one fills nothing: its pages are
  // locked as they are first touched.
  void* p = mmap(nullptr, kArenaBytes, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED && mprotect(p, kArenaBytes, PROT_READ | PROT_WRITE) != 0) {
    munmap(p, kArenaBytes);
    p = MAP_FAILED;
  }
  if (p == MAP_FAILED) {
    fprintf(stderr, "xdpload: cannot map the %zu MiB family arena (%s); forked children will "
                    "not share the stack\n", kArenaBytes >> 20, strerror(errno));
    g_private_core.init();
    return;
  }
  auto* h = static_cast<Header*>(p);
  h->lock.init();
  h->core.init();
  h->top = kHeaderPage;
  h->id = random_id();
  g_arena = h;
}

Header* arena() {
  pthread_once(&g_once, create);
  return g_arena;
}

void say_bad_free(const void* p, const Block* b) {
  fprintf(stderr, "xdpload: %s of %p in the family arena (ignored)\n",
          b->magic == kFreeMagic ? "second free" : "bad free", p);
}

void say_full(size_t n) {
  if (!g_said_full.exchange(true))
    fprintf(stderr, "xdpload: the family arena is full (%zu MiB; %zu more bytes asked); "
                    "further stack memory is private to its process\n", kArenaBytes >> 20, n);
}

}  // namespace

void SharedMutex::init() noexcept {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m_, &a);
  pthread_mutexattr_destroy(&a);
}

bool SharedMutex::lock() noexcept {
  int rc = pthread_mutex_lock(&m_);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&m_);
    return true;
  }
  return false;
}

// What a try or a bounded wait for the mutex returned: taken or not, and
// whether the last holder died with it (made consistent: the caller goes on).
bool SharedMutex::taken(int rc, bool* holder_died) noexcept {
  if (holder_died) *holder_died = rc == EOWNERDEAD;
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&m_);
    return true;
  }
  return rc == 0;
}

bool SharedMutex::try_lock(bool* holder_died) noexcept {
  return taken(pthread_mutex_trylock(&m_), holder_died);
}

bool SharedMutex::lock_within(int ms, bool* holder_died) noexcept {
  timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_nsec += long(ms % 1000) * 1000000;
  until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000;
  until.tv_nsec %= 1000000000;
  return taken(pthread_mutex_clocklock(&m_, CLOCK_MONOTONIC, &until), holder_died);
}

void SharedMutex::unlock() noexcept { pthread_mutex_unlock(&m_); }

void* alloc(size_t n) noexcept {
  Header* h = arena();
  if (!h || n > (size_t(1) << 32)) return malloc(n ? n : 1);
  const int cls = class_of(n);
  const size_t size = class_size(cls);
  h->lock.lock();
  Block* b;
  if (FreeBlock* f = h->free[cls]) {
    ARENA_UNPOISON(f, sizeof *f);
    h->free[cls] = f->next;
    b = reinterpret_cast<Block*>(f) - 1;
    ARENA_UNPOISON(b, sizeof *b);
    b->magic = kBlockMagic;
  } else if (h->top + sizeof(Block) + size <= kArenaBytes) {
    b = reinterpret_cast<Block*>(reinterpret_cast<char*>(h) + h->top);
    h->top += sizeof(Block) + size;
    ARENA_UNPOISON(b, sizeof *b);
    b->cls = uint32_t(cls);
    b->magic = kBlockMagic;
  } else {
    h->lock.unlock();
    say_full(n);
    return malloc(n ? n : 1);
  }
  b->requested = n;
  h->in_use += n;
  h->lock.unlock();
  // The header stays poisoned (under ASan) so that an underrun is caught;
  // so does the class's slack after the requested bytes.
  ARENA_POISON(b, sizeof *b);
  ARENA_UNPOISON(b + 1, n);
  ARENA_POISON(reinterpret_cast<char*>(b + 1) + n, size - n);
  return b + 1;
}

bool owns(const void* p) noexcept {
  const char* a = reinterpret_cast<const char*>(g_arena);
  const char* c = static_cast<const char*>(p);
  return a && c >= a + kHeaderPage && c < a + kArenaBytes;
}

// Test seam (XL_TEST_SCRIBBLE_FREED): freed blocks are filled with 0xdb,
// so that a use after free reads garbage at once instead of the old,
// still plausible values (tests/shim/shim-close-race.sh).
bool scribble_freed() noexcept {
  static const bool on = getenv("XL_TEST_SCRIBBLE_FREED") != nullptr;
  return on;
}

void release(void* p) noexcept {
  if (!p) return;
  if (!owns(p)) {
    free(p);
    return;
  }
  Header* h = g_arena;
  Block* b = static_cast<Block*>(p) - 1;
  ARENA_UNPOISON(b, sizeof *b);
  if (b->magic != kBlockMagic || b->cls >= uint32_t(kClasses)) {
    say_bad_free(p, b);
    return;
  }
  const int cls = int(b->cls);
  const uint64_t n = b->requested;
  ARENA_POISON(b, sizeof *b);
  if (scribble_freed()) memset(p, 0xdb, n);
  h->lock.lock();
  b->magic = kFreeMagic;
  auto* f = static_cast<FreeBlock*>(p);
  ARENA_UNPOISON(f, sizeof *f);
  f->next = h->free[cls];
  h->free[cls] = f;
  h->in_use -= n;
  h->lock.unlock();
  ARENA_POISON(static_cast<char*>(p) + sizeof *f, class_size(cls) - sizeof *f);
}

void* alloc_core_locked(size_t n) noexcept {
  Header* h = arena();
  if (!h || n > class_size(kCoreClasses - 1)) return alloc(n);
  const int cls = class_of(n);
  FreeBlock* f = h->core_free[cls];
  if (!f) return alloc(n);
  // One store takes it off the list: a holder killed here loses the block,
  // never the list.
  h->core_free[cls] = f->next;
  h->core_count[cls]--;
  Block* b = reinterpret_cast<Block*>(f) - 1;
  b->magic = kBlockMagic;
  b->requested = n;
  // (Stored atomically: bytes_in_use() reads it without the core lock.)
  __atomic_store_n(&h->core_delta, h->core_delta + int64_t(n), __ATOMIC_RELAXED);
  return f;
}

void release_core_locked(void* p) noexcept {
  if (!p || !owns(p)) {
    release(p);  // (malloc's memory)
    return;
  }
  Header* h = g_arena;
  Block* b = static_cast<Block*>(p) - 1;
  if (b->magic != kBlockMagic || b->cls >= uint32_t(kCoreClasses) ||
      h->core_count[b->cls] >= kCoreCacheMax) {
    release(p);  // (says so if it is not a block handed out)
    return;
  }
  const int cls = int(b->cls);
  if (scribble_freed()) memset(p, 0xdb, b->requested);
  __atomic_store_n(&h->core_delta, h->core_delta - int64_t(b->requested), __ATOMIC_RELAXED);
  b->magic = kFreeMagic;
  auto* f = static_cast<FreeBlock*>(p);
  f->next = h->core_free[cls];
  h->core_free[cls] = f;  // (one store puts it on the list)
  h->core_count[cls]++;
}

uint64_t bytes_in_use() noexcept {
  Header* h = arena();
  if (!h) return 0;
  h->lock.lock();
  uint64_t n = h->in_use;
  h->lock.unlock();
  // (Read without the core lock: a diagnostic, exact when the stack is idle.)
  return n + uint64_t(__atomic_load_n(&h->core_delta, __ATOMIC_RELAXED));
}

void* root(Root r) noexcept {
  Header* h = arena();
  return h ? h->roots[int(r)] : g_private_roots[int(r)];
}

void set_root(Root r, void* p) noexcept {
  Header* h = arena();
  (h ? h->roots : g_private_roots)[int(r)] = p;
}

SharedMutex& core_mutex() noexcept {
  Header* h = arena();
  return h ? h->core : g_private_core;
}

void*& core_subject() noexcept {
  Header* h = arena();
  return h ? h->core_subject : g_private_core_subject;
}

void reset_private_lock_in_child() noexcept {
  if (!g_arena) g_private_core.init();
}

bool shared() noexcept { return arena() != nullptr; }

const void* arena_base() noexcept { return g_arena; }

uint64_t id() noexcept {
  Header* h = arena();
  return h ? h->id : 0;
}

}  // namespace xdpload::family
