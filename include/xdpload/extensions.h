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

#ifdef __cplusplus
extern "C" {
#endif

#define XDPLOAD_EXT_VERSION_MAJOR 1
#define XDPLOAD_EXT_VERSION_MINOR 0

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
};

/* Fills `out` (`size`: sizeof(struct xdpload_counters) as the program knows
 * it; fields past it are not written). 0; -EINVAL for a size smaller than
 * the fields of version 1.0; -ENODEV when the stack has not started (no
 * accelerated socket yet).
 * Not present: -ENOSYS. */
int xdpload_get_counters(struct xdpload_counters *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* XDPLOAD_EXTENSIONS_H */
