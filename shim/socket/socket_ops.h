// The program's socket calls on a descriptor the FdTable says is ours.
// Each returns >= 0 or -errno; the exported wrappers (intercept_*.cc) turn
// that into -1/errno. Data calls fold into one sendmsg-shaped and one
// recvmsg-shaped operation (read, recv, recvfrom, recvmsg all become one).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include "shim/socket/tcp_socket.h"

namespace xdpload::shim {

class Socket;

// socket(): the kernel socket, and a candidate Socket for AF_INET TCP/UDP.
// The core lock's last holder died with it (CoreLock::on_holder_died):
// the socket it had named as the one being changed, if it was a TCP
// connection, is reset; the rest goes on. Lock held.
void died_holding_lock(void* subject);

// Gives an accelerated socket to the kernel, which holds the same port (a
// listener listens there too): its descriptors become plain kernel sockets
// in the blocking mode the program chose. Lock held.
void hand_to_kernel(Socket* s);

// Before exec(): the new program does not share this family's stack (its
// library, if it loads one, starts its own), so every accelerated socket
// it inherits (a descriptor without FD_CLOEXEC) becomes the kernel's: a
// connection with its state (TcpSocket::hand_connection_to_kernel), a
// listener or a UDP socket as it is (the kernel socket holds the same
// port). inetd's and systemd's socket passing. Without the CoreLock.
void hand_inherited_to_kernel();
// posix_spawn: the sockets the new program will hold once the file actions
// (in order) have run over this process's descriptors become the kernel's
// first, as at exec (shim/intercept/intercept_spawn.cc notes the actions).
struct SpawnAction {
  enum Kind { kClose, kDup2, kOpen, kCloseFrom } kind;
  int fd;     // closed, the dup2's source, opened onto, the first closed
  int newfd;  // the dup2's target
};
// sendmsg()/sendmmsg() on a descriptor not ours (a Unix socket) with
// SCM_RIGHTS: the stack's sockets among the descriptors it passes become
// the kernel's first (a connection with its state), as at exec, so that the
// process that receives them, which cannot reach this family's stack, holds
// a working socket: Node.js's cluster (its primary accepts and passes each
// connection to a worker, or passes the listener), HAProxy's and Envoy's
// hand-over of listeners to a new process, systemd-style socket passing.
// The socket is handed over whatever the kernel then says of the call
// (EAGAIN, a full buffer...): it works on the kernel path. Without the
// CoreLock; `msg` is the program's, read with care (a bad or malformed one
// is left to the kernel's EFAULT or EINVAL). errno is the caller's to keep.
void hand_passed_to_kernel(int fd, const msghdr* msg);
// `how` names the spawn in the log ("posix_spawn", "system", "popen").
// `connections_only`: listeners and UDP sockets stay on the stack (system()
// and popen(): shim/intercept/intercept_spawn.cc says why).
void hand_spawned_to_kernel(const SpawnAction* actions, size_t n, const char* how = "posix_spawn",
                            bool connections_only = false);

int op_socket(int domain, int type, int protocol);
int op_bind(Socket* s, int fd, const sockaddr* addr, socklen_t len);
int op_listen(Socket* s, int fd, int backlog);
int op_accept(Socket* s, int fd, sockaddr* addr, socklen_t* len, int flags);
int op_connect(Socket* s, int fd, const sockaddr* addr, socklen_t len);
int op_shutdown(Socket* s, int fd, int how);
// `raise_sigpipe`: write()/send() without MSG_NOSIGNAL raise SIGPIPE on EPIPE.
ssize_t op_sendmsg(Socket* s, int fd, const msghdr* msg, int flags);
// `programs_msghdr`: false for a msghdr the library made (recv, recvfrom,
// readv, splice), which needs no look at whether it can be written.
ssize_t op_recvmsg(Socket* s, int fd, msghdr* msg, int flags, bool programs_msghdr = true);
// Lock not held: the socket's error (Linux's sk_err: on UDP the one a
// recvmmsg kept, on TCP the connection's pending SO_ERROR), taken
// (-errno), -EBADF if the descriptor is no longer it, else 0.
int take_kept_error(Socket* s, int fd);
// Lock not held: keeps `err` (an errno value) as the socket's error, as
// do_recvmmsg keeps one that follows a message, for the next call.
void keep_error(Socket* s, int fd, int err);
// What the kernel checks of a message's header and segments before
// anything else (copy_msghdr_from_user, import_iovec): 0 or -errno.
ssize_t check_message(const msghdr* msg, bool sending);
// A send of `total` bytes from `src` (a file for sendfile(), a pipe for
// splice(): shim/files/) on an accelerated TCP socket, as a send() with
// `flags`: blocking, partial counts, SIGPIPE. kNotOnStack when the socket
// is not a TCP connection on the stack (the caller asks the kernel).
constexpr ssize_t kNotOnStack = -(1 << 20);
ssize_t op_send_from(Socket* s, int fd, TcpSocket::SendSource& src, size_t total, int flags);
// Lock held. The receive loop of a UDP socket on the stack (recvmsg()'s,
// and the extensions' zero-copy receive): from_stack() when the stack's
// queue has a datagram; else from_kernel(), a look at the backing kernel
// socket that does not wait (-EAGAIN: nothing there); else a wait as
// recv()'s (non-blocking, SO_RCVTIMEO, signals, shutdown). Returns what
// they return, or the wait's -errno.
struct UdpReceiver {
  virtual ssize_t from_stack() = 0;
  virtual ssize_t from_kernel() = 0;
 protected:
  ~UdpReceiver() = default;
};
// kNotOnStack when the socket left for the kernel while the call waited
// (the caller holds it: OpHold).
ssize_t udp_receive(Socket* s, int fd, bool dontwait, UdpReceiver& r);

// Still the socket behind `fd`? (another thread may have closed it) With
// the lock held, the socket is named as the one being changed: should this
// process die before it lets go of the lock, the next holder knows which
// socket may be half changed (died_holding_lock()).
bool still(Socket* s, int fd);

// Keeps a socket allocated for the rest of an operation that may wait and
// goes on using the socket after the wait (a TCP send or receive that
// returns what it did before another thread closed the descriptor): the
// close's free happens here, at the end. Lock held for its whole life.
struct OpHold {
  Socket* s;
  explicit OpHold(Socket* sock) : s(sock), if_cancelled(release, sock) { ++s->holds; }
  ~OpHold();
  static void release(void* sock);
  UndoIfCancelled if_cancelled;
  OpHold(const OpHold&) = delete;
  OpHold& operator=(const OpHold&) = delete;
};

int op_getsockopt(Socket* s, int fd, int level, int name, void* value, socklen_t* len);
int op_setsockopt(Socket* s, int fd, int level, int name, const void* value, socklen_t len);
int op_getsockname(Socket* s, int fd, sockaddr* addr, socklen_t* len);
int op_getpeername(Socket* s, int fd, sockaddr* addr, socklen_t* len);
int op_fcntl(Socket* s, int fd, int cmd, unsigned long arg);
int op_ioctl(Socket* s, int fd, unsigned long request, void* arg);
// Descriptors: `fd` was ours; the new one refers to the same Socket.
int op_dup_to(Socket* s, int fd, int newfd);
// Forgets `fd` (close, or dup2 over it); true if it was ours. CoreLock held.
bool op_forget(int fd);

}  // namespace xdpload::shim
