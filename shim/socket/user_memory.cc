#include "shim/socket/user_memory.h"

#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "lwip/pbuf.h"
#include "shim/intercept/libc.h"

#if defined(__x86_64__)
// xdpload_user_touch(p): 1 if the byte at p can be read, else 0.
// xdpload_user_touch_write(p): 1 if the byte at p can be written, else 0
// (an atomic or of 0: the byte unchanged, one fault on a page never
// touched, a huge zero page not split by a read first). The catcher sends
// a fault at either routine's access to their failure exit.
asm(R"(
  .text
  .p2align 4
  .globl xdpload_user_touch
  .hidden xdpload_user_touch
  .type xdpload_user_touch, @function
xdpload_user_touch:
  .globl xdpload_user_touch_load
  .hidden xdpload_user_touch_load
xdpload_user_touch_load:
  movzbl (%rdi), %eax
  movl $1, %eax
  ret
  .size xdpload_user_touch, .-xdpload_user_touch

  .p2align 4
  .globl xdpload_user_touch_write
  .hidden xdpload_user_touch_write
  .type xdpload_user_touch_write, @function
xdpload_user_touch_write:
  .globl xdpload_user_touch_write_insn
  .hidden xdpload_user_touch_write_insn
xdpload_user_touch_write_insn:
  lock orb $0, (%rdi)
  movl $1, %eax
  ret
  .size xdpload_user_touch_write, .-xdpload_user_touch_write

  .p2align 4
  .globl xdpload_user_touch_fail
  .hidden xdpload_user_touch_fail
xdpload_user_touch_fail:
  xorl %eax, %eax
  ret
)");

extern "C" {
int xdpload_user_touch(const void* p);
int xdpload_user_touch_write(void* p);
extern const char xdpload_user_touch_load[], xdpload_user_touch_write_insn[],
    xdpload_user_touch_fail[];
}
#define XDPLOAD_USER_FAULTS 1
#endif

namespace xdpload::shim {

namespace {

std::atomic<bool> g_catcher[_NSIG];
std::atomic<bool> g_recoverable{false};  // (user_faults_recoverable)

void user_fault_catcher(int sig, siginfo_t* info, void* ctx) {
  if (recover_user_fault(sig, info, ctx)) return;
  // Not ours: what the default action would have done. A fault runs its
  // instruction again and meets it there, with its context; a signal sent
  // by kill() is sent again (blocked until this returns).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  libc::sigaction(sig, &dfl, nullptr);
  g_catcher[sig].store(false);
  if (info && info->si_code <= 0) syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, info);
}

void install(int sig) {
  struct sigaction sa {};
  sa.sa_sigaction = user_fault_catcher;
  // (On the program's alternate stack if it has one: a fault of its own
  // stack overflowing still reaches the default action.)
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (libc::sigaction(sig, &sa, nullptr) == 0) g_catcher[sig].store(true);
}

}  // namespace

namespace {

// The bytes of [p, p + n) before the first page `touch` fails on.
template <typename Touch>
size_t usable_prefix(uintptr_t start, size_t n, Touch touch) {
  if (!n) return 0;
#ifdef XDPLOAD_USER_FAULTS
  constexpr uintptr_t kPage = 4096;  // (the smallest: larger pages are touched more than once)
  // (Counted in bytes, not compared as addresses: a range that runs past
  // the top of memory, MAP_FAILED's, would wrap.)
  for (size_t done = 0; done < n;) {
    const uintptr_t at = start + done;
    if (!touch(at)) return done;
    done += kPage - (at & (kPage - 1));
  }
#else
  (void)start;
  (void)touch;
#endif
  return n;
}

}  // namespace

size_t readable_prefix(const void* p, size_t n) {
  return usable_prefix(uintptr_t(p), n, [](uintptr_t at) {
#ifdef XDPLOAD_USER_FAULTS
    return xdpload_user_touch(reinterpret_cast<const void*>(at)) != 0;
#else
    return at != 0;
#endif
  });
}

size_t writable_prefix(void* p, size_t n) {
  return usable_prefix(uintptr_t(p), n, [](uintptr_t at) {
#ifdef XDPLOAD_USER_FAULTS
    return xdpload_user_touch_write(reinterpret_cast<void*>(at)) != 0;
#else
    return at != 0;
#endif
  });
}

size_t copy_from_user(void* to, const void* from, size_t n) {
  const size_t ok = readable_prefix(from, n);
  if (ok) memcpy(to, from, ok);
  return ok;
}

size_t copy_to_user(void* to, const void* from, size_t n) {
  const size_t ok = writable_prefix(to, n);
  if (ok) memcpy(to, from, ok);
  return ok;
}

size_t pbuf_to_user(const pbuf* p, void* to, size_t n, size_t offset) {
  for (; p && offset >= p->len; p = p->next) offset -= p->len;
  size_t done = 0;
  for (; p && done < n; p = p->next) {
    const size_t take = p->len - offset < n - done ? p->len - offset : n - done;
    const size_t got =
        copy_to_user(static_cast<char*>(to) + done, static_cast<const char*>(p->payload) + offset, take);
    done += got;
    if (got < take) break;
    offset = 0;
  }
  return done;
}

void catch_user_faults() {
#ifdef XDPLOAD_USER_FAULTS
  for (int sig : {SIGSEGV, SIGBUS}) {
    if (g_catcher[sig].load()) continue;
    struct sigaction cur {};
    if (libc::sigaction(sig, nullptr, &cur) != 0) continue;
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) install(sig);
  }
  g_recoverable.store(true, std::memory_order_release);
#endif
}

bool user_faults_recoverable() { return g_recoverable.load(std::memory_order_acquire); }

bool user_fault_catcher_installed(int sig) {
  return (sig == SIGSEGV || sig == SIGBUS) && g_catcher[sig].load(std::memory_order_acquire);
}

void user_fault_action_changed(int sig, bool to_default) {
#ifdef XDPLOAD_USER_FAULTS
  if (sig != SIGSEGV && sig != SIGBUS) return;
  if (to_default) install(sig);
  else g_catcher[sig].store(false);
#else
  (void)sig;
  (void)to_default;
#endif
}

bool recover_user_fault(int sig, const siginfo_t* info, void* ctx) {
#ifdef XDPLOAD_USER_FAULTS
  if ((sig != SIGSEGV && sig != SIGBUS) || !ctx || (info && info->si_code <= 0)) return false;
  greg_t& ip = static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP];
  if (ip == greg_t(xdpload_user_touch_load) || ip == greg_t(xdpload_user_touch_write_insn)) {
    ip = greg_t(xdpload_user_touch_fail);
    return true;
  }
#else
  (void)sig;
  (void)info;
  (void)ctx;
#endif
  return false;
}

}  // namespace xdpload::shim
