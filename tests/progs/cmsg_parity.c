/* Control messages on received UDP datagrams, run the same way on the kernel
 * and under xdpload (tests/shim/shim-cmsg-parity.sh): every line printed
 * must be the same.
 *
 *   cmsg_parity LOCAL_IP PEER_IP PEER_PORT IFACE TCP_PORT ECHO_PORT UNRESOLVED_IP
 *
 * For each case a fresh UDP socket bound to LOCAL_IP:9700 sets its options,
 * asks the datagram source in the peer namespace (tests/peers/dgram_source.py)
 * for datagrams with a known TOS and TTL, and prints for each datagram its
 * msg_flags, msg_controllen and every control message: level, type, length,
 * and the values that do not depend on the run (addresses, TTL, TOS, drop
 * counts); timestamps are printed as whether they are ordered, not before
 * the request for the datagram was sent and not after recvmsg returned.
 * TCP cases read a connection to the peer's byte source on TCP_PORT, and
 * ask for transmit timestamps on one to its echo server on ECHO_PORT. The
 * last lines count the datagrams a full receive buffer dropped and what
 * SO_RXQ_OVFL said of them.
 */
#define _GNU_SOURCE
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "parity.h"

#define OPT_RX_FILTER (1 << 17) /* SOF_TIMESTAMPING_OPT_RX_FILTER, Linux 6.12 */

/* A call's outcome: "ok" or its errno's name. */
#define SHOW(name, expr)                                   \
  do {                                                     \
    errno = 0;                                             \
    long r_ = (long)(expr);                                \
    if (r_ < 0) printf("%s: -1 %s\n", name, en(errno));     \
    else printf("%s: ok\n", name);                          \
  } while (0)

static const char *local, *iface;
static struct sockaddr_in source;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Asks the source for COUNT datagrams of SIZE bytes, with TOS and TTL;
 * with DONE_PORT, a "done" datagram to that port after them. */
static void request(int fd, int count, int size, int done_port) {
  char req[64];
  int n = snprintf(req, sizeof req, "%d %d %d %d %d", count, size, 0x28, 33, done_port);
  if (!done_port) n = snprintf(req, sizeof req, "%d %d %d %d", count, size, 0x28, 33);
  sendto(fd, req, (size_t)n, 0, (struct sockaddr*)&source, sizeof source);
}

static int sockets_opened;
static int socket_on(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ++sockets_opened;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of(local, port);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("setup: bind: %s\n", en(errno));
    exit(1);
  }
  return fd;
}

static int fresh_socket(void) { return socket_on(9700); }

static int wait_readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 5000);
}

/* A timestamp's verdict: within [sent, returned]. Stamps that go back
 * within a case are counted and said on stderr at the end (the kernel's own
 * are not always ordered on a veth pair: not part of the comparison). */
static int64_t last_stamp;
static int out_of_order;
static const char* judge(int64_t t, int64_t sent, int64_t returned) {
  const char* v = t < sent ? "before the request" : t > returned ? "after recvmsg" : "in range";
  if (t < last_stamp) ++out_of_order;
  last_stamp = t;
  return v;
}

/* The values of an IP-level control message that do not depend on the run. */
static void show_ip_cmsg(struct cmsghdr* c) {
  size_t data = c->cmsg_len - CMSG_LEN(0);
  const unsigned char* d = CMSG_DATA(c);
  char x[INET_ADDRSTRLEN], y[INET_ADDRSTRLEN];
  switch (c->cmsg_type) {
    case IP_PKTINFO: {
      struct in_pktinfo pi;
      if (data < sizeof pi) break;
      memcpy(&pi, d, sizeof pi);
      inet_ntop(AF_INET, &pi.ipi_spec_dst, x, sizeof x);
      inet_ntop(AF_INET, &pi.ipi_addr, y, sizeof y);
      printf(": ifindex %s, spec_dst %s, addr %s",
             pi.ipi_ifindex == (int)if_nametoindex(iface) ? "the interface's" : "other", x, y);
      break;
    }
    case IP_TTL: {
      int ttl;
      if (data >= sizeof ttl) memcpy(&ttl, d, sizeof ttl), printf(": ttl %d", ttl);
      break;
    }
    case IP_TOS:
      if (data >= 1) printf(": tos 0x%02x", d[0]);
      break;
    case IP_ORIGDSTADDR: {
      struct sockaddr_in sin;
      if (data < sizeof sin) break;
      memcpy(&sin, d, sizeof sin);
      inet_ntop(AF_INET, &sin.sin_addr, x, sizeof x);
      printf(": family %d %s:%d", sin.sin_family, x, ntohs(sin.sin_port));
      break;
    }
  }
}

static void show_cmsgs(struct msghdr* m, int64_t sent, int64_t returned) {
  printf("  flags%s%s controllen %zu\n", m->msg_flags & MSG_CTRUNC ? " CTRUNC" : "",
         m->msg_flags & MSG_TRUNC ? " TRUNC" : "", (size_t)m->msg_controllen);
  if (!m->msg_control) return;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    printf("  cmsg level %d type %d len %zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
    size_t data = c->cmsg_len - CMSG_LEN(0);
    const unsigned char* d = CMSG_DATA(c);
    int64_t a[6] = {0};
    if (c->cmsg_level == SOL_SOCKET) {
      memcpy(a, d, data < sizeof a ? data : sizeof a);
      switch (c->cmsg_type) {
        case 29: /* SO_TIMESTAMP_OLD */
        case 63: /* SO_TIMESTAMP_NEW */
          if (data >= 16) printf(": usec %s", judge(a[0] * 1000000000 + a[1] * 1000, sent / 1000 * 1000, returned));
          break;
        case 35: /* SO_TIMESTAMPNS_OLD */
        case 64: /* SO_TIMESTAMPNS_NEW */
          if (data >= 16) printf(": nsec %s", judge(a[0] * 1000000000 + a[1], sent, returned));
          break;
        case 37: /* SO_TIMESTAMPING_OLD */
        case 65: /* SO_TIMESTAMPING_NEW */
          if (data >= 48)
            printf(": software %s, legacy %s, hardware %s",
                   a[0] || a[1] ? judge(a[0] * 1000000000 + a[1], sent, returned) : "none",
                   a[2] || a[3] ? "set" : "zero", a[4] || a[5] ? "set" : "zero");
          break;
        case SO_RXQ_OVFL: {
          uint32_t drops;
          memcpy(&drops, d, sizeof drops);
          printf(": drops %s", drops ? "counted" : "0");
          break;
        }
      }
    } else if (c->cmsg_level == IPPROTO_IP) {
      show_ip_cmsg(c);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               data >= sizeof(struct in6_pktinfo)) {
      struct in6_pktinfo pi;
      char x[INET6_ADDRSTRLEN];
      memcpy(&pi, d, sizeof pi);
      inet_ntop(AF_INET6, &pi.ipi6_addr, x, sizeof x);
      printf(": ifindex %s, addr %s", pi.ipi6_ifindex == if_nametoindex(iface) ? "the interface's" : "other", x);
    }
    printf("\n");
  }
}

/* Receives COUNT datagrams with a control buffer of CONTROL bytes (0: none)
 * and prints each. */
static void receive(int fd, int count, size_t control, int64_t sent) {
  for (int i = 0; i < count; ++i) {
    if (wait_readable(fd) <= 0) {
      printf("  datagram %d: none came\n", i);
      return;
    }
    char buf[2048], cbuf[512];
    struct iovec iov;
    struct msghdr m;
    msg_over(&m, &iov, buf, sizeof buf, control ? cbuf : NULL, control);
    ssize_t n = recvmsg(fd, &m, 0);
    int64_t returned = now_ns();
    printf(" datagram %d: %zd bytes\n", i, n);
    show_cmsgs(&m, sent, returned);
  }
}

/* Sends COUNT datagrams of 100 bytes with transmit stamping FLAGS, then
 * reads the error queue until it is empty. 0x10000000 in FLAGS (not a real
 * flag): SO_TIMESTAMPNS on too. */
static void read_errqueue(int fd, int entries, int64_t sent, const char* payload);

static void set_ip_options(int fd) {
  const int opts[] = {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; ++i) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_IP, opts[i], &one, sizeof one) != 0)
      printf("  setsockopt %d: %s\n", opts[i], en(errno));
  }
}

static void tx_case(const char* name, int count, int flags) {
  printf("%s\n", name);
  int fd = fresh_socket();
  int ns = (flags & 0x10000000) != 0;
  flags &= ~0x10000000;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
    printf("  setsockopt: %s\n", en(errno));
  if (ns) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &ns, sizeof ns);
  /* OPT_CMSG: the IP messages of the frame sent, those asked for. */
  if (flags & SOF_TIMESTAMPING_OPT_CMSG) set_ip_options(fd);
  struct sockaddr_in closed = source;
  closed.sin_port = htons(9799);
  char payload[100];
  memset(payload, 'T', sizeof payload);
  int64_t sent = now_ns();
  for (int i = 0; i < count; ++i) sendto(fd, payload, sizeof payload, 0, (struct sockaddr*)&closed, sizeof closed);
  int kinds = !!(flags & SOF_TIMESTAMPING_TX_SCHED) + !!(flags & SOF_TIMESTAMPING_TX_SOFTWARE);
  read_errqueue(fd, count * kinds, sent, payload);
  close(fd);
}

/* Two datagrams to UNRESOLVED_IP, an address of the peer's that nothing
 * has reached yet: they wait for ARP, and their transmit stamps come when
 * they leave, with the keys they got when they were sent. */
static const char* unresolved;
static void held_case(void) {
  printf("SO_TIMESTAMPING transmit of datagrams that wait for ARP, OPT_ID\n");
  int fd = fresh_socket();
  int flags = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
              SOF_TIMESTAMPING_OPT_ID;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
  struct sockaddr_in to = addr_of(unresolved, 9799);
  char payload[100];
  memset(payload, 'H', sizeof payload);
  int64_t sent = now_ns();
  for (int i = 0; i < 2; ++i) sendto(fd, payload, sizeof payload, 0, (struct sockaddr*)&to, sizeof to);
  read_errqueue(fd, 4, sent, payload);
  close(fd);
}

/* Makes the first control message of m an SO_TIMESTAMPING one with these
 * record flags (m's control buffer zeroed, room for it). */
static struct cmsghdr* put_timestamping_cmsg(struct msghdr* m, uint32_t flags) {
  struct cmsghdr* c = CMSG_FIRSTHDR(m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SO_TIMESTAMPING;
  c->cmsg_len = CMSG_LEN(sizeof flags);
  memcpy(CMSG_DATA(c), &flags, sizeof flags);
  return c;
}

/* Per-message control: a socket that only reports (SOFTWARE, OPT_ID) asks
 * for a transmit stamp, a TTL and a TOS in one sendmsg; the looped frame
 * shows the TTL and TOS. Then values Linux refuses. */
static void tx_cmsg_case(void) {
  printf("sendmsg with SO_TIMESTAMPING, IP_TTL and IP_TOS messages\n");
  int fd = fresh_socket();
  int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
  struct sockaddr_in closed = source;
  closed.sin_port = htons(9799);
  char payload[100];
  memset(payload, 'M', sizeof payload);
  union {
    char buf[CMSG_SPACE(4) + 2 * CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {payload, sizeof payload};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &closed;
  m.msg_namelen = sizeof closed;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  uint32_t tx = SOF_TIMESTAMPING_TX_SOFTWARE;
  struct cmsghdr* c = put_timestamping_cmsg(&m, tx);
  c = CMSG_NXTHDR(&m, c);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int ttl = 7;
  memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  c = CMSG_NXTHDR(&m, c);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_TOS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int tos = 0x10;
  memcpy(CMSG_DATA(c), &tos, sizeof tos);
  int64_t sent = now_ns();
  SHOW("  sendmsg", sendmsg(fd, &m, 0));
  read_errqueue(fd, 1, sent, payload);
  /* A plain send after it: no stamp asked, none comes. */
  sendto(fd, payload, sizeof payload, 0, (struct sockaddr*)&closed, sizeof closed);
  struct pollfd p = {fd, 0, 0};
  printf("  a plain send after it: %s\n", poll(&p, 1, 200) > 0 ? "an entry came" : "no entry");
  /* Refused: flags beyond the record ones, a TTL of 0. */
  c = CMSG_FIRSTHDR(&m);
  tx = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
  memcpy(CMSG_DATA(c), &tx, 4);
  SHOW("  sendmsg with OPT_ID as a message", sendmsg(fd, &m, 0));
  tx = SOF_TIMESTAMPING_TX_SOFTWARE;
  memcpy(CMSG_DATA(c), &tx, 4);
  c = CMSG_NXTHDR(&m, c);
  ttl = 0;
  memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  SHOW("  sendmsg with IP_TTL 0", sendmsg(fd, &m, 0));
  close(fd);
}

/* An IP_RECVERR or IPV6_RECVERR message: the error, its origin, type, code,
 * info and data, and the offender's family and address. */
static void show_extended_err(struct cmsghdr* c) {
  struct sock_extended_err ee;
  memcpy(&ee, CMSG_DATA(c), sizeof ee);
  struct sockaddr_in6 off6;
  struct sockaddr_in off;
  char x[INET6_ADDRSTRLEN];
  int family;
  if (c->cmsg_level == IPPROTO_IPV6) {
    memcpy(&off6, SO_EE_OFFENDER((struct sock_extended_err*)CMSG_DATA(c)), sizeof off6);
    inet_ntop(AF_INET6, &off6.sin6_addr, x, sizeof x);
    family = off6.sin6_family;
  } else {
    memcpy(&off, SO_EE_OFFENDER((struct sock_extended_err*)CMSG_DATA(c)), sizeof off);
    inet_ntop(AF_INET, &off.sin_addr, x, sizeof x);
    family = off.sin_family;
  }
  printf(": errno %s origin %d type %d code %d info %u data %u offender family %d %s", en((int)ee.ee_errno),
         ee.ee_origin, ee.ee_type, ee.ee_code, ee.ee_info, ee.ee_data, family, x);
}

/* OPT_STATS' netlink attributes: every type and length in order, and the
 * values that do not depend on the run: data segments out, retransmitted,
 * reordering, bytes queued, delivered, bytes sent and retransmitted, not
 * yet sent, the acknowledgement's TTL. */
static void show_opt_stats(const unsigned char* d, size_t len) {
  printf(":");
  char values[256] = "";
  for (size_t off = 0; off + 4 <= len;) {
    uint16_t nlen, type;
    memcpy(&nlen, d + off, 2);
    memcpy(&type, d + off + 2, 2);
    if (nlen < 4 || off + nlen > len) {
      printf(" bad attribute at %zu", off);
      return;
    }
    uint64_t v = 0;
    memcpy(&v, d + off + 4, nlen - 4 < 8 ? nlen - 4 : 8);
    printf(" %u/%u", type, nlen - 4);
    static const struct { int type; const char* name; } shown[] = {
        {4, "segs_out"}, {5, "retrans"}, {9, "reordering"}, {13, "sndq"}, {16, "delivered"},
        {18, "bytes_sent"}, {19, "bytes_retrans"}, {24, "notsent"}, {26, "ttl"}};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; ++i)
      if (shown[i].type == type)
        snprintf(values + strlen(values), sizeof values - strlen(values), " %s=%llu", shown[i].name,
                 (unsigned long long)v);
    off += (nlen + 3u) & ~3u;
  }
  printf(";%s", values);
}

/* Reads the error queue until it is empty, printing each entry: the
 * entries expected are waited for, then 200 ms more for any other. */
static void read_errqueue(int fd, int entries, int64_t sent, const char* payload) {
  last_stamp = 0;
  for (int n = 0;; ++n) {
    struct pollfd p = {fd, 0, 0};
    if (poll(&p, 1, n < entries ? 5000 : 200) <= 0) {
      printf("  no more entries\n");
      break;
    }
    char data[512], cbuf[1024];
    struct iovec iov;
    struct sockaddr_in from;
    struct msghdr m;
    msg_over(&m, &iov, data, sizeof data, cbuf, sizeof cbuf);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    ssize_t r = recvmsg(fd, &m, MSG_ERRQUEUE);
    int64_t returned = now_ns();
    if (r < 0) {
      printf("  MSG_ERRQUEUE: %s\n", en(errno));
      break;
    }
    printf(" entry: %zd bytes%s, namelen %u, flags%s", r,
           r >= 100 && !memcmp(data + r - 100, payload, 100) ? " ending with the payload" : "",
           (unsigned)m.msg_namelen, m.msg_flags & MSG_ERRQUEUE ? " ERRQUEUE" : "");
    if (r >= 34) printf(", IP ttl %u tos 0x%02x", (unsigned char)data[22], (unsigned char)data[15]);
    printf("\n");
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      printf("  cmsg level %d type %d len %zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
      int64_t a[6] = {0};
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == 54 /* SCM_TIMESTAMPING_OPT_STATS */) {
        show_opt_stats(CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0));
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_len >= CMSG_LEN(16)) {
        memcpy(a, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0) < sizeof a ? c->cmsg_len - CMSG_LEN(0) : sizeof a);
        printf(": %s", judge(a[0] * 1000000000 + a[1], sent, returned));
        last_stamp = 0; /* the two messages of one entry carry the same stamp */
      }
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
          (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        show_extended_err(c);
      } else if (c->cmsg_level == IPPROTO_IP) {
        show_ip_cmsg(c);
      }
      printf("\n");
    }
  }
}

struct opt {
  int level, name, value;
};

/* TCP: a connection to the peer's byte source (TCP_PORT), read to its end
 * with a control buffer; prints the control messages every read with data
 * had (or the different sets seen), timestamps judged against the connect
 * and each read's return. */
static int tcp_port;
static void tcp_case(const char* name, const struct opt* opts, int nopts) {
  printf("tcp %s\n", name);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ++sockets_opened;
  for (int i = 0; i < nopts; ++i)
    if (setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value, sizeof(int)) != 0)
      printf("  setsockopt %d/%d: %s\n", opts[i].level, opts[i].name, en(errno));
  struct sockaddr_in a = source;
  a.sin_port = htons(tcp_port);
  int64_t start = now_ns();
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("  connect: %s\n", en(errno));
    close(fd);
    return;
  }
  char sigs[4][160];
  int nsigs = 0, reads = 0;
  long total = 0;
  const char* verdict = "in range";
  last_stamp = 0;
  for (;;) {
    char buf[16384], cbuf[256];
    struct iovec iov;
    struct msghdr m;
    msg_over(&m, &iov, buf, sizeof buf, cbuf, sizeof cbuf);
    ssize_t r = recvmsg(fd, &m, 0);
    int64_t returned = now_ns();
    if (r <= 0) {
      if (m.msg_controllen) printf("  a read of %zd bytes had control messages\n", r);
      break;
    }
    ++reads;
    total += r;
    char sig[160] = "";
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      snprintf(sig + strlen(sig), sizeof sig - strlen(sig), " %d/%d/%zu", c->cmsg_level, c->cmsg_type,
               (size_t)c->cmsg_len);
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_len >= CMSG_LEN(16)) {
        int64_t t[2];
        memcpy(t, CMSG_DATA(c), sizeof t);
        int64_t ns = t[0] * 1000000000 + t[1] * (c->cmsg_type == 29 || c->cmsg_type == 63 ? 1000 : 1);
        const char* v = judge(ns, c->cmsg_type == 29 || c->cmsg_type == 63 ? start / 1000 * 1000 : start, returned);
        if (strcmp(v, "in range")) verdict = v;
        last_stamp = ns;
      }
    }
    int known = 0;
    for (int i = 0; i < nsigs; ++i) known |= !strcmp(sigs[i], sig);
    if (!known && nsigs < 4) strcpy(sigs[nsigs++], sig);
  }
  if (nsigs == 0) printf("  %ld bytes\n", total);
  else
    printf("  %ld bytes; every read with data had:%s%s\n", total, nsigs == 1 ? sigs[0] : " (differing sets)",
           nsigs == 1 && !sigs[0][0] ? " nothing" : "");
  for (int i = 0; nsigs > 1 && i < nsigs; ++i) printf("   set:%s\n", sigs[i]);
  printf("  timestamps %s\n", verdict);
  fprintf(stderr, "tcp %s: %d reads\n", name, reads);
  close(fd);
}

/* TCP transmit timestamps: a connection to the peer's echo (ECHO_PORT),
 * three writes of 100 bytes, each read back before the next (so that no two
 * share a segment); every entry of the error queue printed: the
 * scheduler's, the driver's and the acknowledgement's stamps with their
 * OPT_ID keys (the offset of each write's last byte from snd_una when the
 * option was set) and what they loop back (the frame for the first two,
 * the data alone for the acknowledgement's; nothing with OPT_TSONLY).
 * WHEN: the flags are set before the connect (OPT_ID is then EINVAL),
 * after it, or the record flags given in each sendmsg's own SO_TIMESTAMPING
 * message (the others set after the connect). */
enum { BEFORE_CONNECT, AFTER_CONNECT, PER_MESSAGE };
static int echo_port;
static int tx_v6; /* an AF_INET6 socket to the peer's v4-mapped address */
static void tcp_tx_case(const char* name, int flags, int when) {
  printf("tcp transmit: %s\n", name);
  int fd = socket(tx_v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  ++sockets_opened;
  const int record = flags & SOF_TIMESTAMPING_TX_RECORD_MASK;
  const int on_socket = when == PER_MESSAGE ? flags & ~SOF_TIMESTAMPING_TX_RECORD_MASK : flags;
  int set = 0;
  if (when == BEFORE_CONNECT) {
    SHOW("  setsockopt before connect",
         (set = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &on_socket, sizeof on_socket) == 0) - 1);
  }
  struct sockaddr_in a = source;
  a.sin_port = htons(echo_port);
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  a6.sin6_port = a.sin_port;
  a6.sin6_addr.s6_addr[10] = a6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&a6.sin6_addr.s6_addr[12], &a.sin_addr, 4);
  if (tx_v6 ? connect(fd, (struct sockaddr*)&a6, sizeof a6) : connect(fd, (struct sockaddr*)&a, sizeof a)) {
    printf("  connect: %s\n", en(errno));
    close(fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (flags & SOF_TIMESTAMPING_OPT_CMSG) set_ip_options(fd);
  if (when != BEFORE_CONNECT)
    SHOW("  setsockopt", (set = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &on_socket, sizeof on_socket) == 0) - 1);
  int got = 0;
  socklen_t gl = sizeof got;
  SHOW("  getsockopt", getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &got, &gl));
  printf("  flags now 0x%x (%u bytes)\n", got, (unsigned)gl);
  char payload[100];
  memset(payload, 'W', sizeof payload);
  union {
    char buf[CMSG_SPACE(4)];
    struct cmsghdr align;
  } u;
  int64_t sent = now_ns();
  for (int i = 0; i < 3; ++i) {
    struct iovec iov = {payload, sizeof payload};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (when == PER_MESSAGE) {
      memset(&u, 0, sizeof u);
      m.msg_control = u.buf;
      m.msg_controllen = sizeof u.buf;
      put_timestamping_cmsg(&m, (uint32_t)record);
    }
    if (sendmsg(fd, &m, 0) != (ssize_t)sizeof payload) printf("  sendmsg %d: %s\n", i, en(errno));
    char back[100];
    size_t have = 0;
    while (have < sizeof back) {
      ssize_t r = recv(fd, back + have, sizeof back - have, 0);
      if (r <= 0) break;
      have += (size_t)r;
    }
    if (have != sizeof back) printf("  echo %d: %zu bytes\n", i, have);
  }
  int kinds = !!(record & SOF_TIMESTAMPING_TX_SCHED) + !!(record & SOF_TIMESTAMPING_TX_SOFTWARE) +
              !!(record & SOF_TIMESTAMPING_TX_ACK);
  read_errqueue(fd, set || when == PER_MESSAGE ? 3 * kinds : 0, sent, payload);
  close(fd);
}

#define TCP_CASE(name, ...)                                        \
  do {                                                             \
    const struct opt o[] = {__VA_ARGS__};                          \
    tcp_case(name, o, (int)(sizeof o / sizeof o[0]));              \
  } while (0)

static void run_case(const char* name, const struct opt* opts, int nopts, size_t control) {
  printf("%s\n", name);
  int fd = fresh_socket();
  for (int i = 0; i < nopts; ++i)
    if (setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value, sizeof(int)) != 0)
      printf("  setsockopt %d/%d: %s\n", opts[i].level, opts[i].name, en(errno));
  last_stamp = 0;
  int64_t sent = now_ns();
  request(fd, 3, 100, 0);
  receive(fd, 3, control, sent);
  close(fd);
}

#define CASE(name, control, ...)                                         \
  do {                                                                   \
    const struct opt o[] = {__VA_ARGS__};                                \
    run_case(name, o, (int)(sizeof o / sizeof o[0]), control);           \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 8) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  local = argv[1];
  source = addr_of(argv[2], atoi(argv[3]));
  iface = argv[4];
  tcp_port = atoi(argv[5]);
  echo_port = atoi(argv[6]);
  unresolved = argv[7];
  const int sw = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  CASE("no options", 512, {SOL_SOCKET, SO_REUSEADDR, 1});
  CASE("SO_TIMESTAMP", 512, {SOL_SOCKET, 29, 1});
  CASE("SO_TIMESTAMPNS", 512, {SOL_SOCKET, 35, 1});
  CASE("SO_TIMESTAMP_NEW", 512, {SOL_SOCKET, 63, 1});
  CASE("SO_TIMESTAMPNS_NEW", 512, {SOL_SOCKET, 64, 1});
  CASE("SO_TIMESTAMP on, then off", 512, {SOL_SOCKET, 29, 1}, {SOL_SOCKET, 29, 0});
  CASE("SO_TIMESTAMPNS, then SO_TIMESTAMP", 512, {SOL_SOCKET, 35, 1}, {SOL_SOCKET, 29, 1});
  CASE("SO_TIMESTAMPING rx software", 512, {SOL_SOCKET, 37, sw});
  CASE("SO_TIMESTAMPING_NEW rx software", 512, {SOL_SOCKET, 65, sw});
  CASE("SO_TIMESTAMPING reporting only, filtered", 512,
       {SOL_SOCKET, 37, SOF_TIMESTAMPING_SOFTWARE | OPT_RX_FILTER});
  CASE("SO_TIMESTAMPING raw hardware only", 512,
       {SOL_SOCKET, 37, SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE});
  CASE("IP_PKTINFO", 512, {IPPROTO_IP, IP_PKTINFO, 1});
  CASE("IP_RECVTTL", 512, {IPPROTO_IP, IP_RECVTTL, 1});
  CASE("IP_RECVTOS", 512, {IPPROTO_IP, IP_RECVTOS, 1});
  CASE("IP_RECVORIGDSTADDR", 512, {IPPROTO_IP, IP_RECVORIGDSTADDR, 1});
  CASE("SO_RXQ_OVFL, nothing dropped", 512, {SOL_SOCKET, SO_RXQ_OVFL, 1});
#define ALL                                                                          \
  {SOL_SOCKET, 35, 1}, {SOL_SOCKET, 37, sw}, {SOL_SOCKET, SO_RXQ_OVFL, 1},           \
      {IPPROTO_IP, IP_PKTINFO, 1}, {IPPROTO_IP, IP_RECVTTL, 1}, {IPPROTO_IP, IP_RECVTOS, 1}, \
      {IPPROTO_IP, IP_RECVORIGDSTADDR, 1}
  CASE("everything", 512, ALL);
  CASE("everything, 100 bytes of control buffer", 100, ALL);
  CASE("everything, 20 bytes of control buffer", 20, ALL);
  CASE("everything, no control buffer", 0, ALL);

  /* An AF_INET6 socket receiving IPv4 datagrams (v4-mapped addresses):
   * IPV6_RECVPKTINFO gives IPV6_PKTINFO (the destination v4-mapped, after
   * the timestamps, before the IPv4 messages the socket also asked for). */
  printf("AF_INET6 socket: IPV6_RECVPKTINFO, with SO_TIMESTAMPNS, IP_PKTINFO, IP_RECVTTL\n");
  {
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    ++sockets_opened;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in6 a6, src6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(9700);
    a6.sin6_addr.s6_addr[10] = a6.sin6_addr.s6_addr[11] = 0xff;
    inet_pton(AF_INET, local, &a6.sin6_addr.s6_addr[12]);
    src6 = a6;
    src6.sin6_port = source.sin_port;
    memcpy(&src6.sin6_addr.s6_addr[12], &source.sin_addr, 4);
    if (bind(fd, (struct sockaddr*)&a6, sizeof a6) != 0) printf("  bind: %s\n", en(errno));
    const struct opt o[] = {{IPPROTO_IPV6, IPV6_RECVPKTINFO, 1}, {SOL_SOCKET, 35, 1},
                            {IPPROTO_IP, IP_PKTINFO, 1}, {IPPROTO_IP, IP_RECVTTL, 1}};
    for (size_t i = 0; i < sizeof o / sizeof o[0]; ++i)
      if (setsockopt(fd, o[i].level, o[i].name, &o[i].value, sizeof(int)) != 0)
        printf("  setsockopt %d/%d: %s\n", o[i].level, o[i].name, en(errno));
    last_stamp = 0;
    int64_t sent = now_ns();
    char req[64];
    int n = snprintf(req, sizeof req, "%d %d %d %d", 3, 100, 0x28, 33);
    sendto(fd, req, (size_t)n, 0, (struct sockaddr*)&src6, sizeof src6);
    receive(fd, 3, 512, sent);
    close(fd);
  }

  /* SIOCGSTAMP: ENOENT before any datagram (and stamping starts), then the
   * stamp of the datagram read; SIOCGSTAMPNS after a datagram read while
   * nothing kept stamps: the time of the call. */
  printf("SIOCGSTAMP\n");
  {
    int fd = fresh_socket();
    struct timeval tv;
    struct timespec ts;
    SHOW(" before any datagram", ioctl(fd, SIOCGSTAMP, &tv));
    last_stamp = 0;
    int64_t sent = now_ns();
    request(fd, 1, 10, 0);
    receive(fd, 1, 0, sent);
    int64_t returned = now_ns();
    if (ioctl(fd, SIOCGSTAMP, &tv) == 0)
      printf("  after one: %s\n", judge((int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000, sent / 1000 * 1000, returned));
    close(fd);
    fd = fresh_socket();
    request(fd, 1, 10, 0);
    receive(fd, 1, 0, sent);
    int64_t before = now_ns();
    int rc = ioctl(fd, SIOCGSTAMPNS, &ts);
    int64_t after = now_ns();
    last_stamp = 0;
    printf("  SIOCGSTAMPNS, nothing kept: %d %s\n", rc,
           rc ? en(errno) : judge((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, before, after));
    close(fd);
  }

  /* IP_RECVERR: a datagram to a closed port of the peer; the ICMP error
   * arrives on the error queue (POLLERR), then as the socket's error. */
  printf("IP_RECVERR\n");
  {
    int fd = fresh_socket();
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    struct sockaddr_in closed = source;
    closed.sin_port = htons(9799);
    sendto(fd, "probe", 5, 0, (struct sockaddr*)&closed, sizeof closed);
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, 5000);
    printf("  poll: %d revents%s%s\n", n, p.revents & POLLERR ? " POLLERR" : "",
           p.revents & POLLIN ? " POLLIN" : "");
    char data[64], cbuf[256];
    struct iovec iov;
    struct msghdr m;
    msg_over(&m, &iov, data, sizeof data, cbuf, sizeof cbuf);
    ssize_t r = recvmsg(fd, &m, MSG_ERRQUEUE);
    printf("  MSG_ERRQUEUE: %zd bytes '%.*s' flags%s\n", r, r > 0 ? (int)r : 0, data,
           m.msg_flags & MSG_ERRQUEUE ? " ERRQUEUE" : "");
    for (struct cmsghdr* c = r >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
      printf("  cmsg level %d type %d len %zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof ee);
        struct sockaddr_in off;
        memcpy(&off, SO_EE_OFFENDER((struct sock_extended_err*)CMSG_DATA(c)), sizeof off);
        char x[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &off.sin_addr, x, sizeof x);
        printf(": errno %s origin %d type %d code %d offender %s", en((int)ee.ee_errno),
               ee.ee_origin, ee.ee_type, ee.ee_code, x);
      }
      printf("\n");
    }
    SHOW("  MSG_ERRQUEUE again", recvmsg(fd, &m, MSG_ERRQUEUE));
    SHOW("  recv after the error", recv(fd, data, sizeof data, MSG_DONTWAIT));
    SHOW("  recv once more", recv(fd, data, sizeof data, MSG_DONTWAIT));
    close(fd);
  }

  /* Transmit timestamps: datagrams to a closed port of the peer (no
   * IP_RECVERR, so its ICMP errors stay off the queue); each comes back on
   * the error queue with its stamp, the frame itself (or nothing, with
   * OPT_TSONLY), and its OPT_ID key. */
  tx_case("SO_TIMESTAMPING transmit, software, OPT_ID", 3,
          SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID);
  tx_case("SO_TIMESTAMPING transmit, sched and software, OPT_ID, OPT_TSONLY", 2,
          SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
              SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY);
  tx_case("SO_TIMESTAMPING transmit, software, with SO_TIMESTAMPNS too", 1,
          SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | 0x10000000);
  tx_case("SO_TIMESTAMPING transmit, software, OPT_CMSG with the IP messages asked for", 2,
          SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_CMSG);
  tx_case("SO_TIMESTAMPING transmit, software, OPT_CMSG and OPT_TSONLY", 1,
          SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_CMSG |
              SOF_TIMESTAMPING_OPT_TSONLY);
  tx_cmsg_case();
  held_case();

  /* TCP: receive timestamps of the last segment each read took from. */
  TCP_CASE("no options", {SOL_SOCKET, SO_KEEPALIVE, 0});
  TCP_CASE("SO_TIMESTAMP", {SOL_SOCKET, 29, 1});
  TCP_CASE("SO_TIMESTAMPNS", {SOL_SOCKET, 35, 1});
  TCP_CASE("SO_TIMESTAMPNS_NEW", {SOL_SOCKET, 64, 1});
  TCP_CASE("SO_TIMESTAMPING rx software", {SOL_SOCKET, 37, sw});
  TCP_CASE("SO_TIMESTAMPING reporting only, filtered", {SOL_SOCKET, 37, SOF_TIMESTAMPING_SOFTWARE | OPT_RX_FILTER});
  TCP_CASE("SO_TIMESTAMPNS and SO_TIMESTAMPING", {SOL_SOCKET, 35, 1}, {SOL_SOCKET, 37, sw});

  /* TCP transmit timestamps. */
  const int txall = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK;
  tcp_tx_case("sched, software and ack, OPT_ID", txall | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID,
              AFTER_CONNECT);
  tcp_tx_case("software and ack, OPT_ID, OPT_TSONLY",
              SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE |
                  SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY,
              AFTER_CONNECT);
  tcp_tx_case("software, set before the connect", SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE,
              BEFORE_CONNECT);
  tcp_tx_case("OPT_ID before the connect", txall | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID,
              BEFORE_CONNECT);
  tcp_tx_case("sched, software and ack, OPT_ID, OPT_CMSG with the IP messages asked for",
              txall | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_CMSG,
              AFTER_CONNECT);
  tcp_tx_case("software and ack, OPT_ID, OPT_TSONLY, OPT_STATS",
              SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE |
                  SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_STATS,
              AFTER_CONNECT);
  tx_v6 = 1;
  tcp_tx_case("an AF_INET6 socket to a v4-mapped address: software and ack, OPT_ID, OPT_TSONLY",
              SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE |
                  SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY,
              AFTER_CONNECT);
  tx_v6 = 0;
  tcp_tx_case("ack in each sendmsg, OPT_ID and OPT_TSONLY on the socket",
              SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
                  SOF_TIMESTAMPING_OPT_TSONLY,
              PER_MESSAGE);

  /* SO_RXQ_OVFL: a small receive buffer, 200 datagrams of 1000 bytes
   * unread; then the next datagram carries how many were dropped. */
  printf("SO_RXQ_OVFL after a full receive buffer\n");
  int fd = fresh_socket();
  int v = 1;
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &v, sizeof v);
  v = 8192;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  int done = socket_on(9701);
  request(fd, 200, 1000, 9701);
  /* The burst is over when "done" arrives on the other socket. */
  wait_readable(done);
  int got = 0;
  char buf[2048], cbuf[64];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) break;
    ++got;
  }
  request(fd, 1, 10, 0);
  wait_readable(fd);
  struct iovec iov;
  struct msghdr m;
  msg_over(&m, &iov, buf, sizeof buf, cbuf, sizeof cbuf);
  uint32_t drops = 0;
  if (recvmsg(fd, &m, 0) >= 0)
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(&drops, CMSG_DATA(c), 4);
  printf("  some were dropped: %s; SO_RXQ_OVFL counts every one of them: %s\n",
         got < 200 ? "yes" : "no", (int)drops == 200 - got ? "yes" : "no");
  fprintf(stderr, "rxq_ovfl: %d of 200 read, %u counted dropped\n", got, drops);
  close(fd);
  close(done);
  printf("sockets opened: %d\n", sockets_opened);
  fprintf(stderr, "timestamps out of order: %d\n", out_of_order);
  return 0;
}
