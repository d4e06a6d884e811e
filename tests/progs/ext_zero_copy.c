/* ext_zero_copy: the extensions API's zero-copy receive and send
 * (include/xdpload/extensions.h, 1.1), as a program uses them, linked
 * against the stub. One line per fact for tests/shim/shim-ext-zero-copy.sh.
 *
 *   ext_zero_copy recv PEER_IP PORT OUT   a TCP stream from PEER:PORT into
 *       OUT: its first 1000 bytes by recv(), the rest in place (each piece
 *       written out, then released)
 *   ext_zero_copy send PEER_IP PORT IN [LIMIT]   IN (its first LIMIT bytes)
 *       to PEER:PORT in lent frames (read() straight into each), then the
 *       connection closed
 *   ext_zero_copy recv-copy|send-copy ...   the same through recv()/send()
 *       and a 64 KB buffer, for bench/ to compare
 *   (OUT or IN "-": the bytes are used or made in place, no file)
 *   ext_zero_copy misuse PEER_IP TCP_ECHO_PORT UDP_ECHO_PORT
 *       bad arguments and handles, each refused with its errno and nothing
 *       lost: an echo round trip in place afterwards; a UDP datagram in
 *       place; a forked child cannot release its parent's buffers
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xdpload/extensions.h>

#define MAX_IOV 32

/* The lowest and highest address of the buffers xdpload handed out (the
 * test compares them with where its frames are). */
static uintptr_t lowest = UINTPTR_MAX, highest = 0;
static void note_range(const void* base, size_t len) {
  uintptr_t b = (uintptr_t)base;
  if (b < lowest) lowest = b;
  if (b + len > highest) highest = b + len;
}

/* A file of "-": none. The bytes are made in place (a pattern written into
 * the buffer) or used in place (summed), as a program that builds or
 * parses messages would, without a system call per buffer (bench/). */
static int open_file(const char* path, int writing) {
  if (!strcmp(path, "-")) return -1;
  return writing ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open(path, O_RDONLY);
}
static volatile uint64_t sink_sum;
static void write_all(int fd, const void* p, size_t n);
static void consume(int fd, const void* p, size_t n) {
  if (fd >= 0) return write_all(fd, p, n);
  uint64_t sum = 0;
  const unsigned char* c = p;
  for (size_t i = 0; i < n; ++i) sum += c[i];
  sink_sum += sum;
}
static ssize_t produce(int fd, void* p, size_t n) {
  if (fd >= 0) return read(fd, p, n);
  memset(p, 'x', n);
  return (ssize_t)n;
}

static int connect_to(const char* ip, int port, int type) {
  int fd = socket(AF_INET, type, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("connect to %s:%d: %s\n", ip, port, strerror(errno));
    exit(1);
  }
  return fd;
}

static void write_all(int fd, const void* p, size_t n) {
  const char* c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) {
      perror("write");
      exit(1);
    }
    c += w;
    n -= (size_t)w;
  }
}

/* The ordinary way, for comparison: recv() into a buffer, or read() into
 * one and send() it. */
static int copy_stream(const char* ip, int port, const char* path, int sending,
                       unsigned long long limit) {
  int file = open_file(path, !sending);
  int fd = connect_to(ip, port, SOCK_STREAM);
  static char buf[65536];
  unsigned long long moved = 0;
  for (;;) {
    size_t want = sizeof buf;
    if (sending && limit - moved < want) want = (size_t)(limit - moved);
    ssize_t r = want ? (sending ? produce(file, buf, want) : recv(fd, buf, want, 0)) : 0;
    if (r <= 0) break;
    if (sending) {
      if (send(fd, buf, (size_t)r, 0) != r) break;
    } else {
      consume(file, buf, (size_t)r);
    }
    moved += (unsigned long long)r;
  }
  if (sending) {
    shutdown(fd, SHUT_WR);
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  printf("%s: %llu bytes\n", sending ? "send-copy" : "recv-copy", moved);
  close(fd);
  if (file >= 0) close(file);
  return 0;
}

static int recv_stream(const char* ip, int port, const char* path) {
  int out = open_file(path, 1);
  int fd = connect_to(ip, port, SOCK_STREAM);
  /* Some bytes the ordinary way first: the receive in place goes on from
   * the middle of a segment. */
  char head[1000];
  size_t got = 0;
  while (got < sizeof head) {
    ssize_t r = recv(fd, head + got, sizeof head - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
  }
  consume(out, head, got);
  unsigned long long in_place = 0, pieces = 0, calls = 0;
  ssize_t r;
  for (;;) {
    struct xdpload_zc_iovec iov[MAX_IOV];
    xdpload_zc_handle h[MAX_IOV];
    int n = MAX_IOV;
    r = xdpload_zc_recv(fd, iov, &n, 0, NULL, NULL);
    if (r <= 0) break;
    ++calls;
    for (int i = 0; i < n; ++i) {
      consume(out, iov[i].base, iov[i].len);
      note_range(iov[i].base, iov[i].len);
      h[i] = iov[i].buf;
    }
    pieces += (unsigned)n;
    in_place += (unsigned long long)r;
    int rc = xdpload_zc_release(h, n);
    if (rc != 0) {
      printf("release: %d\n", rc);
      return 1;
    }
  }
  printf("recv: %zu bytes by recv(), %llu in place in %llu pieces, end %zd\n", got, in_place,
         pieces, r);
  if (r == 0 && calls) printf("recv: pieces per call %.1f\n", (double)pieces / (double)calls);
  if (calls) printf("recv: pieces at %#lx-%#lx\n", (unsigned long)lowest, (unsigned long)highest);
  struct xdpload_counters c;
  if (xdpload_get_counters(&c, sizeof c) == 0)
    printf("recv: counted in place %s, buffers held at the end %llu, copied out of frames %s\n",
           c.zc_recv_bytes == in_place ? "all" : "not all",
           (unsigned long long)c.zc_buffers_held, c.rx_copies ? "some" : "none");
  close(fd);
  if (out >= 0) close(out);
  return r == 0 ? 0 : 1;
}

/* Bytes sent so far and in the frames filled for the next send. */
static unsigned long long sent_or_filled(unsigned long long sent, const struct xdpload_zc_iovec* iov,
                                         int filled) {
  for (int i = 0; i < filled; ++i) sent += iov[i].len;
  return sent;
}

static int send_stream(const char* ip, int port, const char* path, unsigned long long limit) {
  int in = open_file(path, 0);
  int fd = connect_to(ip, port, SOCK_STREAM);
  unsigned long long sent = 0, frames = 0, no_frame = 0;
  int eof = 0;
  struct xdpload_counters w;
  int have_waits = xdpload_get_counters(&w, sizeof w) == 0;
  unsigned long long send_waits = 0;  /* waits that slept inside xdpload_zc_send */
  while (!eof) {
    struct xdpload_zc_iovec iov[MAX_IOV];
    int n = xdpload_zc_alloc(fd, iov, MAX_IOV, 0);
    if (n == -ENOBUFS) {
      /* Every frame in flight: wait for acknowledgements. */
      ++no_frame;
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 10);
      continue;
    }
    if (n < 0) {
      printf("alloc: %d\n", n);
      return 1;
    }
    for (int i = 0; i < n; ++i) note_range(iov[i].base, iov[i].len);
    int filled = 0;
    for (; filled < n && !eof; ++filled) {
      size_t want = iov[filled].len;
      if (limit - sent_or_filled(sent, iov, filled) < want)
        want = (size_t)(limit - sent_or_filled(sent, iov, filled));
      ssize_t r = want ? produce(in, iov[filled].base, want) : 0;
      if (r <= 0) {
        eof = 1;
        break;
      }
      iov[filled].len = (size_t)r;
    }
    int off = 0;
    while (off < filled) {
      struct xdpload_counters c0, c1;
      int counted = have_waits && xdpload_get_counters(&c0, sizeof c0) == 0;
      int k = xdpload_zc_send(fd, iov + off, filled - off, 0);
      if (counted && xdpload_get_counters(&c1, sizeof c1) == 0)
        send_waits += c1.blocked_waits - c0.blocked_waits;
      if (k <= 0) {
        printf("send: %d\n", k);
        return 1;
      }
      for (int i = off; i < off + k; ++i) sent += iov[i].len;
      frames += (unsigned)k;
      off += k;
    }
    /* Frames lent and not filled go back. */
    xdpload_zc_handle unused[MAX_IOV];
    for (int i = filled; i < n; ++i) unused[i - filled] = iov[i].buf;
    if (n > filled && xdpload_zc_release(unused, n - filled) != 0) {
      printf("release of unused frames failed\n");
      return 1;
    }
  }
  shutdown(fd, SHUT_WR);
  char b[16];
  while (recv(fd, b, sizeof b, 0) > 0) {
  }
  printf("send: %llu bytes in %llu frames\n", sent, frames);
  if (frames) printf("send: frames at %#lx-%#lx\n", (unsigned long)lowest, (unsigned long)highest);
  struct xdpload_counters c;
  if (xdpload_get_counters(&c, sizeof c) == 0)
    printf("send: counted from lent frames %s, copied %llu, buffers held at the end %llu\n",
           c.zc_send_bytes == sent ? "all" : "not all", (unsigned long long)c.zc_send_copied,
           (unsigned long long)c.zc_buffers_held);
  if (have_waits)
    printf("send: waits for room that slept: %s\n", send_waits ? "some" : "none");
  (void)no_frame;
  close(fd);
  return 0;
}

/* An echo round trip in place: "hello" in a lent frame, the echo received
 * in place. */
static void echo_in_place(int fd, const char* what) {
  struct xdpload_zc_iovec iov[4];
  int n = xdpload_zc_alloc(fd, iov, 1, 0);
  if (n != 1) {
    printf("%s: alloc %d\n", what, n);
    return;
  }
  memcpy(iov[0].base, "hello", 5);
  iov[0].len = 5;
  int k = xdpload_zc_send(fd, iov, 1, 0);
  char back[16] = {0};
  size_t got = 0;
  while (got < 5) {
    int m = 4;
    ssize_t r = xdpload_zc_recv(fd, iov, &m, 0, NULL, NULL);
    if (r <= 0) break;
    for (int i = 0; i < m; ++i) {
      memcpy(back + got, iov[i].base, iov[i].len < 5 - got ? iov[i].len : 5 - got);
      got += iov[i].len;
      xdpload_zc_release(&iov[i].buf, 1);
    }
  }
  printf("%s: sent %d frame, echo '%s'\n", what, k, back);
}

static int misuse(const char* ip, int tcp_port, int udp_port) {
  struct xdpload_zc_iovec iov[4];
  int n;
  xdpload_zc_handle bogus = 0x1234567800000001ull;
  printf("release of a made-up handle %d\n", xdpload_zc_release(&bogus, 1));
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  n = 4;
  printf("recv on a pipe %zd\n", xdpload_zc_recv(pipefd[0], iov, &n, 0, NULL, NULL));
  n = 4;
  printf("recv on a closed descriptor %zd\n", xdpload_zc_recv(999, iov, &n, 0, NULL, NULL));

  int fd = connect_to(ip, tcp_port, SOCK_STREAM);
  n = 0;
  printf("recv with no room %zd\n", xdpload_zc_recv(fd, iov, &n, 0, NULL, NULL));
  n = 4;
  printf("recv with MSG_PEEK %zd\n", xdpload_zc_recv(fd, iov, &n, MSG_PEEK, NULL, NULL));
  n = 4;
  printf("recv with nothing to read, MSG_DONTWAIT %zd\n",
         xdpload_zc_recv(fd, iov, &n, MSG_DONTWAIT, NULL, NULL));
  printf("alloc of 0 frames %d\n", xdpload_zc_alloc(fd, iov, 0, 0));
  n = xdpload_zc_alloc(fd, iov, 2, 0);
  printf("alloc of 2 frames %d, each takes a segment %s\n", n,
         n == 2 && iov[0].len >= 1000 && iov[0].len <= 1460 ? "yes" : "no");
  struct xdpload_zc_iovec bad = iov[0];
  bad.len = 0;
  printf("send of 0 bytes %d\n", xdpload_zc_send(fd, &bad, 1, 0));
  bad.len = iov[0].len + 1;
  printf("send of more than the frame takes %d\n", xdpload_zc_send(fd, &bad, 1, 0));
  struct xdpload_zc_iovec twice[2] = {iov[0], iov[0]};
  twice[0].len = twice[1].len = 1;
  printf("send of one frame twice %d\n", xdpload_zc_send(fd, twice, 2, 0));
  bad = iov[0];
  bad.len = 1;
  printf("send with MSG_OOB %d\n", xdpload_zc_send(fd, &bad, 1, MSG_OOB));
  bad.buf = bogus;
  printf("send of a made-up handle %d\n", xdpload_zc_send(fd, &bad, 1, 0));
  xdpload_zc_handle two[2] = {iov[0].buf, bogus};
  printf("release of a good and a made-up handle %d\n", xdpload_zc_release(two, 2));
  two[1] = iov[0].buf;
  printf("release of one handle twice in a call %d\n", xdpload_zc_release(two, 2));

  /* A forked child holds none of its parent's buffers. */
  pid_t child = fork();
  if (child == 0) _exit(xdpload_zc_release(&iov[1].buf, 1) == -EINVAL ? 0 : 1);
  int status = 0;
  waitpid(child, &status, 0);
  printf("a forked child releasing its parent's frame: refused %s\n",
         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
  two[0] = iov[0].buf;
  two[1] = iov[1].buf;
  printf("release of the 2 lent frames %d\n", xdpload_zc_release(two, 2));
  printf("release of them again %d\n", xdpload_zc_release(two, 2));
  echo_in_place(fd, "after all that, a round trip");
  /* A received buffer is not a frame to send. */
  int m = 4;
  ssize_t r = -1;
  if (xdpload_zc_alloc(fd, iov, 1, 0) == 1) {
    memcpy(iov[0].base, "x", 1);
    iov[0].len = 1;
    xdpload_zc_send(fd, iov, 1, 0);
    r = xdpload_zc_recv(fd, iov, &m, 0, NULL, NULL);
  }
  struct xdpload_zc_iovec rx = iov[0];
  printf("send of a received buffer %d\n", r == 1 ? xdpload_zc_send(fd, &rx, 1, 0) : -1);
  xdpload_zc_release(&rx.buf, 1);
  struct xdpload_counters c;
  if (xdpload_get_counters(&c, sizeof c) == 0)
    printf("buffers held at the end %llu\n", (unsigned long long)c.zc_buffers_held);
  close(fd);

  /* UDP: a datagram in place, with its source. */
  int u = connect_to(ip, udp_port, SOCK_DGRAM);
  printf("alloc on UDP %d\n", xdpload_zc_alloc(u, iov, 1, 0));
  m = 4;
  printf("UDP recv with nothing to read, MSG_DONTWAIT %zd\n",
         xdpload_zc_recv(u, iov, &m, MSG_DONTWAIT, NULL, NULL));
  send(u, "datagram in place", 17, 0);
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  m = 4;
  r = xdpload_zc_recv(u, iov, &m, 0, (struct sockaddr*)&from, &fl);
  char ipb[32];
  inet_ntop(AF_INET, &from.sin_addr, ipb, sizeof ipb);
  printf("UDP recv %zd bytes in %d piece(s): '%.*s' from %s:%d\n", r, m,
         r > 0 ? (int)iov[0].len : 0, r > 0 ? (const char*)iov[0].base : "", ipb,
         ntohs(from.sin_port));
  if (r > 0) printf("UDP release %d\n", xdpload_zc_release(&iov[0].buf, 1));
  close(u);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 5) return 2;
  printf("present %d\n", xdpload_is_present());
  unsigned long long limit = argc > 5 ? strtoull(argv[5], NULL, 10) : ~0ull;
  if (!strcmp(argv[1], "recv")) return recv_stream(argv[2], atoi(argv[3]), argv[4]);
  if (!strcmp(argv[1], "send")) return send_stream(argv[2], atoi(argv[3]), argv[4], limit);
  if (!strcmp(argv[1], "recv-copy")) return copy_stream(argv[2], atoi(argv[3]), argv[4], 0, limit);
  if (!strcmp(argv[1], "send-copy")) return copy_stream(argv[2], atoi(argv[3]), argv[4], 1, limit);
  if (!strcmp(argv[1], "misuse")) return misuse(argv[2], atoi(argv[3]), atoi(argv[4]));
  return 2;
}
