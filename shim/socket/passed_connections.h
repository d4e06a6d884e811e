// Connections waiting on a listener when the program execs, given to the
// new program as Linux gives them.
//
// On Linux a listener inherited across exec is one socket with its queue:
// the new program (systemd-style socket activation, nginx's binary upgrade,
// inetd's "wait" services) accepts the connections that were waiting. A
// listener of the stack becomes the kernel's at the exec
// (hand_shared_to_kernel), and the kernel's queue cannot take connections
// the stack completed. So each waiting connection is handed to a kernel
// socket of its own with its state (TCP_REPAIR: TcpSocket::
// hand_connection_to_kernel), and those sockets are put in flight
// (SCM_RIGHTS) on a datagram socketpair whose receiving end the new program
// inherits; XDPLOAD_PASSED_CONNECTIONS=L:Q,... names each listener's
// descriptor L in the new program and its queue Q.
//
// The new program's library (this file's other half) makes accept() on L
// take the queue's connections first, and poll/select/epoll report L
// readable while any is left: Q itself is readable exactly then, so Q stands
// in for L in the kernel's waits (epoll_ctl on L is mirrored onto Q, with
// L's data). The kernel hands each connection out once, to whichever
// process of the new program's family takes it first, as a listener's
// queue does. Only when the new program loads this library (its LD_PRELOAD
// names it); otherwise the connections are reset as before, never left
// waiting where nobody would accept them. (A program that ignores
// LD_PRELOAD although it is set, a static or set-user-ID one, is not told
// apart: its connections wait in Q until it ends.) Without CAP_NET_ADMIN
// the broker builds each connection (tools/broker/handover.cc).
//
// Left as Linux does not: the connections follow the listener's
// descriptor number, not a dup() of it; with EPOLLONESHOT the listener and
// Q each report once.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <string>
#include <vector>

namespace xdpload::shim {

class TcpSocket;

// ---- the exec'ing program ----
// `env` with XDPLOAD_PASSED_CONNECTIONS=`value` (any earlier one left
// out), as an exec takes it; *entry holds the new string. (Not setenv: a
// vfork child shares its parent's environment.)
std::vector<char*> env_with_passed(char* const* env, const std::string& value, std::string* entry);

// Before the hand-overs of an exec (`carry`) or a posix_spawn: whether
// `new_env`, the new program's environment (null: an empty one, as an
// exec takes it), preloads this library. For an exec, the queues this
// process holds itself (adopted at its start, or kept from a failed exec)
// go on to the new program when it inherits their listener: a wrapper
// script, a shell's `exec`, a PATH search's attempts. Otherwise they close
// with the exec (their connections reset).
void passing_begins(char* const* new_env, bool carry);
// Lock held, before the listener `l` is handed to the kernel: its waiting
// connections go to the new program, which holds the listener as
// descriptor `fd_in_new_program`. Those that cannot (a hand-over refused,
// the queue full) stay in the listener's queue, to be reset. Returns how
// many went.
size_t pass_waiting_connections(TcpSocket* l, int fd_in_new_program);
// The value for XDPLOAD_PASSED_CONNECTIONS (empty: nothing passed), taken
// once; the exec's environment gets it. Its queues are inheritable until
// the exec.
std::string passed_connections_value();
// The exec failed: this process keeps the queues (a vfork child for its
// next attempt; any other for its own accept() on the listeners, now the
// kernel's).
void passing_failed(const std::string& value);
// posix_spawn, done or failed: this process's copies of the queues it made
// are closed (the child has them, or, failed, their connections reset).
void close_passed_queues(const std::string& value);
// The queues' descriptors in `value`.
std::vector<int> passed_queues(const std::string& value);

// ---- the exec'd program ----

// At the library's start: takes XDPLOAD_PASSED_CONNECTIONS (and removes it
// from the environment).
void adopt_passed_connections();
// Any queue adopted and not yet empty (one load: every intercept below is
// guarded by it).
bool passed_any();
// accept()/accept4() on `fd`: a waiting connection's descriptor (flags as
// accept4's), or -1 with errno; kNoPassed when `fd` has none left (the
// real call then).
constexpr int kNoPassed = -2;
int passed_accept(int fd, sockaddr* addr, socklen_t* len, int flags);
// poll(): marks listeners with a waiting connection readable in fds[i]
// (what the caller asked of POLLIN/POLLRDNORM); returns how many.
int passed_ready(pollfd* fds, nfds_t n);
// Whether `fd` is a listener with connections still waiting.
bool passed_waiting(int fd);
// epoll_ctl(epfd, op, fd, ev) is about to be made: mirrored onto fd's queue.
void passed_epoll_ctl(int epfd, int op, int fd, const epoll_event* ev);
// `fd` is being closed (or replaced by dup2): its queue is this process's
// no more.
void passed_forget(int fd);

}  // namespace xdpload::shim
