// The family arena: memory shared by a process and every child it forks.
//
// xdpload's stack is one stack per process family, as OpenOnload's shared
// stacks are: after fork() parent and children use the same sockets, so
// everything the stack changes while it runs (lwIP's heap and pools, the
// socket objects, their queues, the ring cursors, the frame pool) lives in
// one MAP_SHARED anonymous mapping made before the first fork. fork() keeps
// it at the same address in the child, so pointers inside it stay valid
// (function pointers too: the library is mapped at the same place), and
// nothing is left in /dev/shm: the mapping goes with the family's last
// process. An exec'd image cannot map it again; see the notes at the top of
// shim/runtime/runtime_family.cc for what happens to its sockets.
//
// What does *not* go here is what each process keeps for itself: the
// descriptor tables (descriptor numbers are per process), the statistics
// segment, thread-local waiters, configuration. Data that is written once
// before the first fork and only read after (interface names, libxdp's own
// socket structs) may stay in the private heap: fork copies it.
//
// Objects opt in: a class derives from family::Object (its operator new
// allocates here) and its containers use family::Allocator. The arena is a
// size-class allocator over a bump region, guarded by a robust
// process-shared mutex, so that a process killed inside it cannot hang the
// others. (ASan does not look inside it: see arena.cc.)
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

namespace xdpload::family {

// Address space reserved for the arena (pages are used as touched).
constexpr size_t kArenaBytes = size_t(4) << 30;

// Memory in the family arena (created on first use); malloc's when the arena
// cannot be made or is full (said once on stderr). Aligned to 16 bytes.
void* alloc(size_t n) noexcept;
// Frees memory from alloc() (the arena's or malloc's).
void release(void* p) noexcept;
// The same for the stack (lwIP's heap and pools), whose callers hold the
// core lock: blocks it frees are kept on free lists the core lock guards,
// and reused without the arena's own lock (two robust-mutex operations,
// ~40 ns, on every lwIP allocation and free: 20 % of a TCP round trip
// between two stacks in bench/stack_path_bench). Memory from either pair
// may be released by the other.
void* alloc_core_locked(size_t n) noexcept;
void release_core_locked(void* p) noexcept;
// True for a pointer into the arena.
bool owns(const void* p) noexcept;
// Bytes handed out and not released (for leak checks).
uint64_t bytes_in_use() noexcept;

// A robust, process-shared mutex. A holder that dies leaves it to the next
// locker, which is told (`owner_died`) so that it can decide what of the
// state it protected is still trustworthy.
class SharedMutex {
 public:
  void init() noexcept;
  // Returns true when the previous holder died holding it.
  bool lock() noexcept;
  // True when taken; *holder_died then says whether its last holder died
  // holding it.
  bool try_lock(bool* holder_died = nullptr) noexcept;
  // The same, waiting up to `ms` milliseconds.
  bool lock_within(int ms, bool* holder_died = nullptr) noexcept;
  void unlock() noexcept;

 private:
  bool taken(int rc, bool* holder_died) noexcept;
  pthread_mutex_t m_;
};

// Named roots inside the arena: objects every process of the family finds.
enum class Root { Core, Shim, Count };
void* root(Root r) noexcept;
void set_root(Root r, void* p) noexcept;
// The lock that guards the stack (lwIP and every socket).
SharedMutex& core_mutex() noexcept;
// What its holder is changing, as far as it said (a socket, for the shim):
// cleared when the lock is released, so that the next holder, told that
// the last one died with it, knows what may be half changed.
void*& core_subject() noexcept;
// In a forked child that does not share its parent's stack: a private lock
// (no arena) is made anew, the copy being held by a thread of the parent.
void reset_private_lock_in_child() noexcept;
// The arena exists and is shared with the processes this one forks.
bool shared() noexcept;
// Where it is mapped (nullptr: nowhere).
const void* arena_base() noexcept;
// A random identifier of this family (names that must not collide with
// another family's, nor be guessed).
uint64_t id() noexcept;

// Base class of objects the whole family shares.
struct Object {
  static void* operator new(size_t n) noexcept { return alloc(n); }
  static void operator delete(void* p) noexcept { release(p); }
};

template <typename T>
struct Allocator {
  using value_type = T;
  Allocator() noexcept = default;
  template <typename U>
  Allocator(const Allocator<U>&) noexcept {}
  T* allocate(size_t n) noexcept { return static_cast<T*>(alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { release(p); }
  template <typename U>
  bool operator==(const Allocator<U>&) const noexcept { return true; }
};

template <typename T>
using vector = std::vector<T, Allocator<T>>;
template <typename T>
using deque = std::deque<T, Allocator<T>>;
template <typename K, typename V, typename H = std::hash<K>, typename E = std::equal_to<K>>
using unordered_map = std::unordered_map<K, V, H, E, Allocator<std::pair<const K, V>>>;

}  // namespace xdpload::family
