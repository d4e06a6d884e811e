/* xdpload extensions: what a program can ask of xdpload beyond the socket
 * API, as OpenOnload's onload/extensions.h offers it.
 *
 * Link with the stub library, -lxdpload_ext (libxdpload_ext.so, or
 * libxdpload_ext.a). Run under xdpload (the preloaded libxdpload.so), the
 * calls are served by it; run without, each answers as documented below
 * for "not present", so that the same binary runs either way.
 *
 * Versions: XDPLOAD_EXT_VERSION_MAJOR changes when a call changes in a
 * way a program built against the old header would notice; MINOR when calls
 * or fields are added. A program runs with an xdpload of the same major
 * version and the same or a later minor one; otherwise xdpload says so in
 * one line on stderr and every call answers "not present".
 *
 * Every call is safe from any thread. None of them changes errno; errors
 * are returned as negative errno values. */
#ifndef XDPLOAD_EXTENSIONS_H
#define XDPLOAD_EXTENSIONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XDPLOAD_EXT_VERSION_MAJOR 1
#define XDPLOAD_EXT_VERSION_MINOR 1  /* 1: zero-copy receive and send */

/* 1 when the program runs under xdpload (a compatible version), else 0. */
int xdpload_is_present(void);

/* ---- spinning, per thread ----
 *
 * A call that has to wait (a receive with nothing to read, an accept with no
 * connection, a poll with nothing ready...) either sleeps at once or polls
 * the stack first: XDPLOAD_SPIN_USEC microseconds for every thread of the
 * process. A thread may choose for itself, per kind of wait: spinning on, it
 * polls until the call can complete (for XDPLOAD_SPIN_USEC when that is
 * set, else without limit; a timeout the call was given, or a signal, still
 * ends it as it would end a sleep); spinning off, it sleeps at once. The
 * choice holds for the calling thread until it changes it. */
enum xdpload_spin_type {
  XDPLOAD_SPIN_ALL = 0,     /* every kind below */
  XDPLOAD_SPIN_UDP_RECV,    /* recv, recvfrom, recvmsg, recvmmsg, read on UDP */
  XDPLOAD_SPIN_TCP_RECV,    /* the same on TCP */
  XDPLOAD_SPIN_TCP_SEND,    /* a TCP send waiting for room in the send buffer */
  XDPLOAD_SPIN_TCP_ACCEPT,  /* accept, accept4 */
  XDPLOAD_SPIN_TCP_CONNECT, /* a blocking connect */
  XDPLOAD_SPIN_POLL,        /* poll, ppoll, select, pselect */
  XDPLOAD_SPIN_EPOLL_WAIT,  /* epoll_wait, epoll_pwait */
  XDPLOAD_SPIN_MAX          /* not a kind: one past the last (grows with MINOR) */
};

/* Spinning on (spin != 0) or off for `type` in the calling thread.
 * 0; -EINVAL for a type that is not one of the above.
 * Not present: 0 (nothing to change). */
int xdpload_thread_set_spin(enum xdpload_spin_type type, int spin);

/* Which kinds of wait the calling thread spins on: bit (1u << type) for
 * each, XDPLOAD_SPIN_ALL's bit when it spins on all. 0.
 * Not present: -ENOSYS. */
int xdpload_thread_get_spin(unsigned *spinning);

/* ---- descriptors ---- */

struct xdpload_fd_info {
  int protocol;        /* IPPROTO_TCP or IPPROTO_UDP */
  int listening;       /* a TCP listener */
  uint32_t local_ip;   /* network order, as in sockaddr_in */
  uint16_t local_port; /* host order */
  uint16_t remote_port;
  uint32_t remote_ip;  /* 0 when not connected */
};

/* 1 when `fd` is a socket on the stack (info, if not NULL, filled in; `size`
 * is sizeof(struct xdpload_fd_info) as the program knows it: what is past it
 * is not written), 0 when it is not (the kernel's, or not a socket).
 * -EINVAL for a size smaller than the fields of version 1.0.
 * Not present: 0. */
int xdpload_fd_stat(int fd, struct xdpload_fd_info *info, size_t size);

/* ---- the process's figures ---- */

/* What xdpload-stat shows for the process, read now. */
struct xdpload_counters {
  uint64_t rx_frames, rx_bytes;   /* frames received from the rings */
  uint64_t tx_frames, tx_bytes;   /* frames handed to the rings */
  uint64_t tcp_in_segs, tcp_out_segs, tcp_retransmits;
  uint64_t udp_in_datagrams, udp_out_datagrams;
  uint64_t udp_rx_dropped;        /* datagrams dropped: a receive buffer was full */
  uint64_t kicks;                 /* system calls that started a transmission */
  uint64_t blocked_waits;         /* waits that slept (not the ones that spun) */
  uint64_t accelerated_tcp, accelerated_udp;  /* sockets put on the stack so far */
  /* 1.1: bytes given by xdpload_zc_recv, bytes sent by xdpload_zc_send
   * from the frames the program filled (and those it copied instead: a
   * frame filled past what a segment carries once the MSS fell), the
   * buffers the process family holds now, and received data copied out of
   * the link's frames because they ran short (the frames a zero-copy
   * receive hands out are then copies). */
  uint64_t zc_recv_bytes, zc_send_bytes, zc_send_copied;
  uint64_t zc_buffers_held;
  uint64_t rx_copies;
};

/* Fills `out` (`size`: sizeof(struct xdpload_counters) as the program knows
 * it; fields past it are not written). 0; -EINVAL for a size smaller than
 * the fields of version 1.0; -ENODEV when the stack has not started (no
 * accelerated socket yet).
 * Not present: -ENOSYS. */
int xdpload_get_counters(struct xdpload_counters *out, size_t size);

/* ---- zero-copy receive and send (1.1) ----
 *
 * A receive that hands the program the stack's buffers, to read in place
 * (for data the stack received, the AF_XDP frames the NIC wrote it into),
 * and a send that lends the program transmit frames to fill, which then go
 * to the wire from where they lie. Each buffer is named by a handle; the
 * program gives every buffer back exactly once: to xdpload_zc_release(),
 * or, for a transmit frame, to xdpload_zc_send().
 *
 * The buffers are the stack's: the fewer a program holds and the shorter,
 * the more the stack has to receive into. A process family holds at most a
 * quarter of the link's frames this way (-ENOBUFS beyond: release some
 * first). A program's buffers go back when it exits; a forked child cannot
 * release its parent's. Errors common to the calls:
 *   -ENOSYS          not present (without xdpload);
 *   -EBADF           fd is not an open descriptor;
 *   -ESOCKTNOSUPPORT fd is not a socket on the stack (xdpload_fd_stat() 0):
 *                    use the socket API, the kernel has it. */

typedef uint64_t xdpload_zc_handle;

struct xdpload_zc_iovec {
  void *base;             /* where the bytes are (receive: read only) */
  size_t len;             /* how many (transmit, lent: the most it takes) */
  xdpload_zc_handle buf;  /* the buffer, for xdpload_zc_release/_send */
};

/* Receives in place: fills iov[0..*iovcnt) and sets *iovcnt to the pieces
 * given. Returns their total bytes.
 * - TCP: the next bytes of the stream, in order, as many pieces as it has
 *   (at most *iovcnt); 0 (no piece) at the end of the stream. The receive
 *   window reopens by what was given, as a recv() of the bytes would.
 * - UDP: one datagram, in one piece or more (from/fromlen as recvfrom's);
 *   -EMSGSIZE, with *iovcnt set to the pieces needed, when it has more
 *   than *iovcnt (it stays queued).
 * Waits as recv() does, unless the socket is non-blocking or flags has
 * MSG_DONTWAIT (the only flag taken: -EINVAL for others): -EAGAIN, and
 * SO_RCVTIMEO, signals (-EINTR) and errors (-ECONNRESET...) as recv().
 * -EINVAL for *iovcnt < 1; -ENOBUFS when the family holds its share of
 * buffers. */
ssize_t xdpload_zc_recv(int fd, struct xdpload_zc_iovec *iov, int *iovcnt, int flags,
                        struct sockaddr *from, socklen_t *fromlen);

/* Lends up to n transmit frames for the TCP connection fd: iov[i].base to
 * write into, iov[i].len the most it carries (one segment's data: the MSS,
 * less the options). Returns how many (1..n); never waits. -ENOBUFS: no
 * frame to lend now (the ones in flight come back as the peer
 * acknowledges: retry after POLLOUT); -ENOTCONN before the connection is
 * up; -EPIPE after shutdown(SHUT_WR) or the end of the connection; -EINVAL
 * for n < 1 or flags other than 0. Not on UDP (-EOPNOTSUPP). */
int xdpload_zc_alloc(int fd, struct xdpload_zc_iovec *iov, int n, int flags);

/* Sends lent frames, in order: iov[i].len bytes (1..what xdpload_zc_alloc
 * gave) from the start of iov[i].buf's frame (iov[i].base is not looked
 * at). Returns how many frames were queued; those are the stack's now. As
 * send() does, waits for room unless the socket is non-blocking or flags
 * has MSG_DONTWAIT, then queues those that fit (-EAGAIN when none);
 * MSG_MORE holds the last segment back as send() does. Frames not sent
 * stay the program's. -EINVAL, nothing sent, for a handle not lent to this
 * process for sending, one named twice, a length out of range or other
 * flags; -EPIPE (never SIGPIPE), -ECONNRESET... as send(). */
int xdpload_zc_send(int fd, const struct xdpload_zc_iovec *iov, int n, int flags);

/* Gives back buffers the program holds (received, or lent and not sent).
 * 0; -EINVAL, nothing released, when one of the handles is not the
 * process's or is named twice. Not present: -ENOSYS. */
int xdpload_zc_release(const xdpload_zc_handle *bufs, int n);

#ifdef __cplusplus
}
#endif

#endif /* XDPLOAD_EXTENSIONS_H */
