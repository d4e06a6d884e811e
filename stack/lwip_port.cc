// lwIP's platform functions (sys_now, LWIP_RAND) and hooks (source routing,
// initial sequence numbers).
#include "stack/lwip_port.h"

#include "stack/checksum.h"

#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "family/shared_globals.h"

extern "C" {
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/sys.h"
}

namespace xdpload::stack {

namespace {
std::atomic<uint64_t> g_holders_died{0};
CoreLock::DiedHandler g_died_handler = nullptr;
}

void CoreLock::on_holder_died(DiedHandler fn) { g_died_handler = fn; }

void CoreLock::holder_died() {
  // What the dead process was changing may be half done. lwIP's lists are
  // usually consistent between two statements, and a hang is worse: go on.
  // What it named as being changed (a socket) is the shim's to deal with;
  // without a name, say it once.
  void* subject = family::core_subject();
  family::core_subject() = nullptr;
  g_holders_died.fetch_add(1);
  if (g_died_handler) {
    g_died_handler(subject);
  } else {
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      fprintf(stderr, "xdpload: a process of this family died holding the stack lock; the stack "
                      "goes on\n");
  }
}

uint64_t CoreLock::holders_died() { return g_holders_died.load(); }

void CoreLock::let_deferred_signals_in() {
  const uint64_t bits = t_signals_deferred;
  t_signals_deferred = 0;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (!bits) return;
  sigset_t set;
  sigemptyset(&set);
  for (int sig = 1; sig <= 64; ++sig)
    if (bits & (uint64_t(1) << (sig - 1))) sigaddset(&set, sig);
  // (The handlers run as this call returns; errno stays the caller's.)
  const int err = errno;
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  errno = err;
}

void CoreLock::stop_for_good() {
  for (;;) pause();
}

namespace {

bool g_initialized = false;
uint64_t g_isn_key[2];
uint64_t g_rand_state;

uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// SipHash-2-4 of up to 16 bytes: the keyed hash RFC 6528 asks for, so that
// an off-path attacker cannot predict our initial sequence numbers.
uint64_t siphash16(const uint8_t* in, size_t len, const uint64_t key[2]) {
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0], v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0], v3 = 0x7465646279746573ull ^ key[1];
  auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  uint8_t block[16] = {};
  memcpy(block, in, len);
  for (int i = 0; i < 2; ++i) {
    uint64_t m;
    memcpy(&m, block + 8 * i, 8);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t last = uint64_t(len) << 56;
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

void lwip_core_init() {
  if (g_initialized) return;
  if (getrandom(g_isn_key, sizeof g_isn_key, 0) != sizeof g_isn_key) {
    g_isn_key[0] = mono_ns() * 0x9e3779b97f4a7c15ull;
    g_isn_key[1] = uint64_t(reinterpret_cast<uintptr_t>(&g_isn_key)) ^ g_isn_key[0];
  }
  g_rand_state = g_isn_key[0] ^ rotl(g_isn_key[1], 17) ^ mono_ns();
  if (!g_rand_state) g_rand_state = 1;
  // Before lwIP first writes its globals: after this, children forked by
  // this process share them.
  // (When that fails, family::lwip_globals_shared() says so.)
  ErrorText why;
  family::share_lwip_globals(&why);
  lwip_init();
  g_initialized = true;
}

// lwIP's clock. Millisecond timers (the finest lwIP has) at the kernel's
// tick resolution: CLOCK_MONOTONIC_COARSE costs a few nanoseconds where a
// precise read costs twenty, and a spinning caller reads it on every poll.
uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace xdpload::stack

using namespace xdpload::stack;

extern "C" {

u32_t sys_now(void) { return u32_t(now_ms()); }

unsigned int xdpload_now_us(void) { return unsigned(mono_ns() / 1000); }

unsigned int xdpload_now_s(void) { return unsigned(now_ms() / 1000); }

// lwIP's malloc (lwipopts.h): the family arena; lwIP runs under the core
// lock, whose holder may use the arena's lock-free side.
void* xdpload_family_malloc(size_t n) {
  return CoreLock::held_here() ? xdpload::family::alloc_core_locked(n) : xdpload::family::alloc(n);
}
void* xdpload_family_calloc(size_t n, size_t m) {
  if (m && n > SIZE_MAX / m) return nullptr;
  void* p = xdpload_family_malloc(n * m);
  if (p) memset(p, 0, n * m);
  return p;
}
void xdpload_family_free(void* p) {
  if (CoreLock::held_here()) xdpload::family::release_core_locked(p);
  else xdpload::family::release(p);
}

unsigned short xdpload_lwip_chksum(const void* data, int len) {
  return csum_fold(csum_partial(data, size_t(len)));
}

unsigned int xdpload_lwip_rand(void) {
  // xorshift64*: lwIP wants variety (first ephemeral port, IGMP delays),
  // not secrecy.
  g_rand_state ^= g_rand_state >> 12;
  g_rand_state ^= g_rand_state << 25;
  g_rand_state ^= g_rand_state >> 27;
  return unsigned(uint64_t(g_rand_state * 0x2545F4914F6CDD1Dull) >> 32);
}

unsigned int xdpload_tcp_isn(const struct ip4_addr* local_ip, unsigned short local_port,
                             const struct ip4_addr* remote_ip, unsigned short remote_port) {
  uint8_t tuple[12];
  memcpy(tuple, &local_ip->addr, 4);
  memcpy(tuple + 4, &remote_ip->addr, 4);
  memcpy(tuple + 8, &local_port, 2);
  memcpy(tuple + 10, &remote_port, 2);
  // RFC 6528: ISN = M + F(4-tuple, secret), M a 4-microsecond clock.
  return unsigned(mono_ns() / 4000) + unsigned(siphash16(tuple, sizeof tuple, g_isn_key));
}

struct netif* xdpload_route_src(const struct ip4_addr* src, const struct ip4_addr* dest) {
  (void)dest;
  if (!src || src->addr == 0) return nullptr;
  struct netif* n;
  NETIF_FOREACH(n) {
    if (netif_is_up(n) && netif_ip4_addr(n)->addr == src->addr) return n;
  }
  return nullptr;
}

}  // extern "C"
