// The program's memory as the kernel treats it in a system call: a buffer,
// iovec or msghdr that cannot be read or written is EFAULT, not a crash.
// The kernel's copies fail softly (an exception table fixes up the faulting
// instruction); ours ran with the stack's lock held, and a bad pointer
// killed the program with SIGSEGV where Linux returns EFAULT.
//
// The same way here: two tiny routines in assembly touch one byte of the
// program's memory (a load; an atomic or of 0), and a
// SIGSEGV/SIGBUS catcher that finds the fault at one of their instructions
// moves the context to their failure exit and returns. A copy touches the
// program's side once a page first, then copies with memcpy (a fault-safe
// copy loop of our own was 10x slower than glibc's for a segment here).
// The cost: a call and a byte or two a page. Any other fault goes where it
// went before: to the program's handler, or to the default action with
// the faulting context intact. (Left: another thread unmapping the buffer
// between the touch and the copy.)
#pragma once

#include <signal.h>
#include <stddef.h>

struct pbuf;

namespace xdpload::shim {

// Copies `n` bytes, the source being the program's memory (copy_from_user)
// or the destination (copy_to_user); returns how many were copied before
// the first page that could not be read (written): n when all.
size_t copy_from_user(void* to, const void* from, size_t n);
size_t copy_to_user(void* to, const void* from, size_t n);

// How many of the `n` bytes at `p` can be read: n, or the bytes before the
// first page that cannot (page granular: one byte read a page).
size_t readable_prefix(const void* p, size_t n);
// The same for writing (an atomic or of 0 into a byte a page: unchanged).
size_t writable_prefix(void* p, size_t n);

// Copies `n` bytes of a pbuf chain, from `offset` on, to the program's
// memory at `to`; returns how many were copied before a fault.
size_t pbuf_to_user(const struct pbuf* p, void* to, size_t n, size_t offset);

// Puts our catcher on SIGSEGV and SIGBUS where the action is the default
// (at the stack's start; a handler the program installs gets the same
// recovery through shim/wait/signals.cc's wrapper).
void catch_user_faults();
// catch_user_faults() has run: the routines above may be given any pointer
// (before, a bad one would kill the program: the library checks nothing
// then, and its sockets are not yet on the stack: the kernel reads their
// memory).
bool user_faults_recoverable();
// The n bytes at p can be read (written), or cannot be checked yet (before
// catch_user_faults(): the caller goes on as it always did).
inline bool user_readable(const void* p, size_t n) {
  return !user_faults_recoverable() || readable_prefix(p, n) == n;
}
inline bool user_writable(void* p, size_t n) {
  return !user_faults_recoverable() || writable_prefix(p, n) == n;
}
// The kernel's bound on the bytes one call moves (MAX_RW_COUNT: INT_MAX
// rounded down to a page); a longer length is cut to it.
constexpr size_t kMaxRwCount = size_t(0x7fffffff) & ~size_t(4095);

// Our catcher stands for the program's SIG_DFL on `sig`.
bool user_fault_catcher_installed(int sig);
// The program set `sig`'s action: SIG_DFL puts our catcher back, anything
// else takes its place (its wrapper recovers the same faults).
void user_fault_action_changed(int sig, bool to_default);

// In a SIGSEGV or SIGBUS handler: the fault is one of the routines above
// (and came from the CPU, not kill()): the context now resumes at the
// routine's failure exit. True if so.
bool recover_user_fault(int sig, const siginfo_t* info, void* ctx);

}  // namespace xdpload::shim
