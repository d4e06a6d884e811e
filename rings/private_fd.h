// Private descriptors: the ones the library keeps for itself (AF_XDP
// sockets, BPF maps and link, netlink sockets, eventfds).
//
// POSIX gives a program the lowest free descriptor, and programs rely on it
// (select() limits, event loops sized from their own counts, daemons that
// close 3..N). A descriptor of ours taking one of those numbers shifts every
// number after it, so each one moves, as soon as it is made, near the top of
// the descriptor range (as OpenOnload does): below the soft RLIMIT_NOFILE,
// and below 4096 so that a large limit does not grow the kernel's table,
// which every fork() copies (private_fd.cc).
// The shim hides them from the program's close(), close_range() and
// closefrom(). A descriptor that cannot move (a limit too low) stays where
// it is, still ours.
#pragma once

namespace xdpload::rings {

// At most this many private descriptors.
constexpr int kMaxPrivateFds = 512;

// Moves `fd` to the private range and returns its new number (the old one
// is closed); `fd` itself when it cannot move or is negative. The new
// descriptor is close-on-exec.
int to_private_fd(int fd);
// A private copy of `fd` (which stays as it is), or -1 when the range is
// full or would keep fewer than `keep_free` slots free (room left for the
// descriptors the stack itself needs later: a thread's eventfd, an epoll
// set's).
int dup_to_private(int fd, int keep_free = 0);
// Closes a private descriptor and forgets it.
void close_private_fd(int fd);
// Is `fd` one of ours? Any thread, lock-free.
bool is_private_fd(int fd);
// The private descriptors in [first, last], ascending, into out[0..max);
// returns how many.
int private_fds_in(unsigned first, unsigned last, int* out, int max);

}  // namespace xdpload::rings
