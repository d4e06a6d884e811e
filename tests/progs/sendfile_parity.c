/* sendfile() and splice() into a connected TCP socket, run the same way on
 * the kernel and under xdpload: every line printed must be the same.
 *
 *   sendfile_parity PEER_IP PORT DIR
 *
 * DIR is a scratch directory: the program writes its files there and
 * removes them at the end. Every connection goes to a sink in B that reads
 * until EOF and answers with one line, POSIX cksum's "CRC LENGTH":
 *
 *   PORT     socat TCP4-LISTEN:PORT,reuseaddr,fork SYSTEM:'cksum'
 *   PORT+1   socat TCP4-LISTEN:PORT+1,reuseaddr,fork SYSTEM:'sleep 1; cksum'
 *
 * PORT+1's sink reads nothing for a second, so that a send fills the
 * buffers and waits (the truncation case) or fails with EAGAIN (the
 * non-blocking case). Each case has a connection of its own; the program
 * computes the cksum of the bytes it believes it sent, shuts the connection
 * down for writing and prints whether the peer received exactly those
 * bytes: a call that claims more or less than it sent, or sends the wrong
 * part of the file, shows as "matching: no" (and a refused call must have
 * sent nothing: "received: 0 bytes").
 *
 * The cases: a whole file with no offset (the file position moves), with an
 * offset pointer (it is updated, the file position is not), one that can be
 * read but not written back (the bytes sent, then EFAULT; with count 0
 * too), past EOF and at EOF, count 0; the refusals (negative offset, a pipe, a directory, a UDP
 * socket, a file open for writing only, a closed descriptor, an offset
 * pointer that is not readable, a socket never connected: its SIGPIPE); the
 * file truncated while the call waits for room; a non-blocking socket until
 * EAGAIN, then blocking again for the rest; splice from a pipe, and from a
 * file with off_in through a pipe (directly to the socket: EINVAL, one side
 * of a splice must be a pipe); splice out of the socket into a pipe (the
 * peer's answer, and the refusals). Byte counts that depend on buffer sizes
 * and timing go to stderr.
 *
 * Built with _FORTIFY_SOURCE, like the other parity programs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parity.h"

#define MiB (1L << 20)
#define SMALL_SIZE MiB      /* the file of cases 1-5, 9-12, 16 */
#define BIG_SIZE (64 * MiB) /* the files of cases 13 and 14 */
#define TRUNCATED_SIZE MiB
#define PIPE_BYTES 10000L
#define SPLICE_BYTES 300000L

/* The content every file is cut from: pseudo-random, the same in every run
 * (xorshift64, fixed seed), kept in memory so that what the peer received
 * can be checked against what the file held before it was truncated. */
static unsigned char data[BIG_SIZE];
static char small_path[4096], big_path[4096], dir_path[4096];
static int port;
static volatile sig_atomic_t sigpipes, sigpipes_in_12;
static const char* volatile current = "setup";

static const char* yes(int b) { return b ? "yes" : "no"; }

static void fill_data(void) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof data; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(data + i, &x, 8);
  }
}

/* POSIX cksum: CRC-32 with polynomial 0x04C11DB7, most significant bit
 * first, no initial value, over the bytes and then over their count
 * (least significant byte first, as few bytes as it takes), complemented. */
static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i << 24;
    for (int k = 0; k < 8; ++k) c = c & 0x80000000u ? (c << 1) ^ 0x04C11DB7u : c << 1;
    crc_table[i] = c;
  }
}

static uint32_t cksum(const unsigned char* p, uint64_t n) {
  uint32_t c = 0;
  for (uint64_t i = 0; i < n; ++i) c = (c << 8) ^ crc_table[(c >> 24) ^ p[i]];
  for (uint64_t len = n; len; len >>= 8) c = (c << 8) ^ crc_table[(c >> 24) ^ (len & 0xff)];
  return ~c;
}

/* A case that never returns fails the comparison with a line of its own
 * instead of hanging the test. */
static void on_alarm(int s) {
  (void)s;
  char line[160];
  int n = snprintf(line, sizeof line, "%s: no result within 60 s\n", current);
  if (write(1, line, n) < 0) _exit(1);
  _exit(1);
}

static void on_sigpipe(int s) { (void)s; ++sigpipes; }

static void begin(const char* name) {
  current = name;
  alarm(60);
}

/* "-1 EINVAL", or the count. */
static void show(const char* what, long r, int e) {
  if (r < 0) printf("%s: -1 %s\n", what, en(e));
  else printf("%s: %ld\n", what, r);
}

static int open_file(const char* path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) {
    printf("setup: open %s: %s\n", path, en(errno));
    exit(1);
  }
  return fd;
}

static void write_file(const char* path, const unsigned char* p, long n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    printf("setup: create %s: %s\n", path, en(errno));
    exit(1);
  }
  for (long done = 0; done < n;) {
    ssize_t w = write(fd, p + done, n - done);
    if (w <= 0) {
      printf("setup: write %s: %s\n", path, en(errno));
      exit(1);
    }
    done += w;
  }
  close(fd);
}

/* What the peer said: the CRC and length it received, or got == 0. */
struct answer {
  int got;
  unsigned long crc;
  unsigned long long len;
};

/* Ends the connection's sending side and reads the peer's cksum line up to
 * its EOF (poll first: a peer that never answers gives "no answer"). */
static struct answer peer_answer(int fd) {
  struct answer a = {0, 0, 0};
  char line[128];
  size_t have = 0;
  shutdown(fd, SHUT_WR);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    ssize_t r = recv(fd, line + have, sizeof line - 1 - have, 0);
    if (r <= 0) break;
    have += r;
    if (have == sizeof line - 1) break;
  }
  line[have] = 0;
  a.got = sscanf(line, "%lu %llu", &a.crc, &a.len) == 2;
  close(fd);
  return a;
}

/* Prints what the peer received, and whether those were exactly the n
 * bytes at p. */
static void received(const char* what, int fd, const unsigned char* p, long n) {
  struct answer a = peer_answer(fd);
  if (!a.got) {
    printf("%s: received: no answer\n", what);
    return;
  }
  printf("%s: received: %llu bytes, matching: %s\n", what, a.len,
         yes(a.len == (unsigned long long)n && a.crc == cksum(p, n)));
}

static long position(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

/* Case 1: the whole file, no offset: the call moves the file position. A
 * short count is not an error, so it loops like a program would. */
static void whole_file(void) {
  begin("1. whole file, offset NULL");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  long total = 0, calls = 0, r = 0;
  int e = 0;
  while (total < SMALL_SIZE) {
    errno = 0;
    r = sendfile(s, in, NULL, SMALL_SIZE - total);
    e = errno;
    ++calls;
    if (r <= 0) break;
    total += r;
  }
  if (r < 0) show("1. whole file, offset NULL: failed", r, e);
  printf("1. whole file, offset NULL: sent %ld, file position %ld\n", total, position(in));
  fprintf(stderr, "1. %ld calls\n", calls);
  received("1", s, data, total);
  close(in);
}

/* Case 2: with an offset pointer the call reads from *offset and moves it;
 * the file position stays where it was. */
static void with_offset(void) {
  begin("2. offset 1000, count 5000");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  off_t off = 1000;
  errno = 0;
  long r = sendfile(s, in, &off, 5000);
  show("2. offset 1000, count 5000", r, errno);
  printf("2. *offset afterwards %ld, file position %ld\n", (long)off, position(in));
  received("2", s, data + 1000, r > 0 ? r : 0);
  close(in);
}

/* Case 2b: an offset the call can read but not write back (a read-only
 * page): the bytes are sent, then EFAULT (sendfile64's put_user). */
static void offset_read_only(void) {
  begin("2b. offset 1000 read-only, count 5000");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  long page = sysconf(_SC_PAGESIZE);
  off_t* off = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *off = 1000;
  mprotect(off, page, PROT_READ);
  errno = 0;
  long r = sendfile(s, in, off, 5000);
  show("2b. offset 1000 read-only, count 5000", r, errno);
  printf("2b. *offset afterwards %ld, file position %ld\n", (long)*off, position(in));
  /* Nothing to send: 0 from the transfer, EFAULT from the write-back. */
  errno = 0;
  r = sendfile(s, in, off, 0);
  show("2b. the same, count 0", r, errno);
  received("2b", s, data + 1000, 5000);
  munmap(off, page);
  close(in);
}

/* Case 3: a count past EOF sends what there is; at EOF, 0. */
static void past_eof(void) {
  begin("3. past EOF");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  off_t off = SMALL_SIZE - 100;
  errno = 0;
  long r = sendfile(s, in, &off, 1000);
  show("3. offset size-100, count 1000", r, errno);
  printf("3. *offset afterwards: size%+ld\n", (long)off - SMALL_SIZE);
  errno = 0;
  long r2 = sendfile(s, in, &off, 1000);
  show("3. again at EOF", r2, errno);
  printf("3. *offset afterwards: size%+ld\n", (long)off - SMALL_SIZE);
  received("3", s, data + SMALL_SIZE - 100, (r > 0 ? r : 0) + (r2 > 0 ? r2 : 0));
  close(in);
}

/* Case 4: count 0 does nothing, successfully. */
static void count_zero(void) {
  begin("4. count 0");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  errno = 0;
  long r = sendfile(s, in, NULL, 0);
  show("4. count 0", r, errno);
  printf("4. file position %ld\n", position(in));
  received("4", s, data, 0);
  close(in);
}

/* Cases 5, 7-11: calls the kernel refuses, each on a connection of its
 * own, which must then have carried nothing. */
static void refused(const char* what, int in, off_t* off, long count) {
  begin(what);
  int s = connect_to(port);
  errno = 0;
  long r = sendfile(s, in, off, count);
  show(what, r, errno);
  received(what, s, data, 0);
}

/* Case 6: a pipe as in_fd, holding PIPE_BYTES with its write end closed (so
 * that an implementation that reads it cannot wait for more). The kernel
 * refuses it: with an offset pointer ESPIPE (a pipe has no offsets), checked
 * before the EINVAL every in_fd that is not a regular file gets. Whatever
 * the call sent must be the pipe's first bytes. */
static void from_pipe(const char* what, int with_offset) {
  begin(what);
  int s = connect_to(port), p[2];
  if (pipe(p) != 0 || write(p[1], data, PIPE_BYTES) != PIPE_BYTES) {
    printf("setup: pipe: %s\n", en(errno));
    exit(1);
  }
  close(p[1]);
  off_t off = 0;
  errno = 0;
  long r = sendfile(s, p[0], with_offset ? &off : NULL, PIPE_BYTES);
  show(what, r, errno);
  received(what, s, data, r > 0 ? r : 0);
  close(p[0]);
}

/* Case 12: a TCP socket never connected: EPIPE, and (sendfile has no
 * MSG_NOSIGNAL) SIGPIPE. No connection to the peer at all. */
static void not_connected(void) {
  begin("12. out_fd never connected");
  int s = socket(AF_INET, SOCK_STREAM, 0), in = open_file(small_path, O_RDONLY);
  int before = sigpipes;
  errno = 0;
  long r = sendfile(s, in, NULL, 1000);
  show("12. out_fd never connected", r, errno);
  sigpipes_in_12 = sigpipes - before;
  printf("12. SIGPIPE: %s, file position %ld\n", yes(sigpipes_in_12 != 0), position(in));
  close(s);
  close(in);
}

/* Case 13: the file shrinks while the call waits for room (the peer reads
 * nothing for a second). The call ends at the new EOF: it returns less than
 * the file had, but at least the new size, and the peer gets exactly the
 * bytes it reports, as the file held them before it was cut. */
static void* truncate_later(void* arg) {
  (void)arg;
  msleep(200);
  if (truncate(big_path, TRUNCATED_SIZE) != 0) fprintf(stderr, "13. truncate: %s\n", en(errno));
  return NULL;
}

static void truncated(void) {
  begin("13. truncated during the send");
  write_file(big_path, data, BIG_SIZE);
  int s = connect_to(port + 1), in = open_file(big_path, O_RDONLY);
  pthread_t t;
  off_t off = 0;
  pthread_create(&t, NULL, truncate_later, NULL);
  errno = 0;
  long r = sendfile(s, in, &off, BIG_SIZE);
  int e = errno;
  pthread_join(t, NULL);
  if (r < 0) show("13. truncated during the send", r, e);
  printf("13. returned less than the file: %s\n", yes(r >= 0 && r < BIG_SIZE));
  printf("13. returned at least the truncated size: %s\n", yes(r >= TRUNCATED_SIZE));
  printf("13. *offset afterwards is the count: %s\n", yes(r >= 0 && off == r));
  fprintf(stderr, "13. returned %ld (%.2f MiB)\n", r, r / (double)MiB);
  struct answer a = peer_answer(s);
  long n = r > 0 ? r : 0;
  if (!a.got) printf("13: received: no answer\n");
  else
    printf("13: received as many bytes as returned: %s, matching: %s\n", yes(a.len == (unsigned long long)n),
           yes(a.len == (unsigned long long)n && a.crc == cksum(data, n)));
  close(in);
  unlink(big_path);
}

/* Case 14: a non-blocking socket whose peer reads nothing for a second: the
 * first call sends what fits, then the buffers are full: EAGAIN, with the
 * offset where the sent bytes end. Made blocking again, the rest follows,
 * and the peer must have the whole file once. */
static void nonblocking(void) {
  begin("14. non-blocking");
  write_file(big_path, data, BIG_SIZE);
  int s = connect_to(port + 1), in = open_file(big_path, O_RDONLY);
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
  off_t off = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  errno = 0;
  long first = sendfile(s, in, &off, BIG_SIZE);
  int e = errno;
  printf("14. first call sent bytes: %s\n", yes(first > 0));
  if (first <= 0) show("14. first call", first, e);
  long r = first, calls = 1;
  while (r > 0 && off < BIG_SIZE) {
    errno = 0;
    r = sendfile(s, in, &off, BIG_SIZE - off);
    e = errno;
    ++calls;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  show("14. then", r, e);
  fprintf(stderr, "14. first call %ld, %ld calls, %ld bytes (%.2f MiB) before EAGAIN, in %.0f ms\n", first,
          calls, (long)off, off / (double)MiB,
          (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
  r = 0;
  while (off < BIG_SIZE) {
    errno = 0;
    r = sendfile(s, in, &off, BIG_SIZE - off);
    if (r <= 0) break;
  }
  if (r < 0) show("14. blocking again", r, errno);
  printf("14. blocking again: *offset at the end of the file: %s\n", yes(off == BIG_SIZE));
  received("14", s, data, off);
  close(in);
  unlink(big_path);
}

/* Case 15: splice from a pipe that a thread fills (it waits for room: a
 * pipe holds 64 KiB), until every byte has moved. */
static int splice_pipe[2];
static const unsigned char* splice_src = data + 8 * MiB;

static void* pipe_writer(void* arg) {
  (void)arg;
  for (long done = 0; done < SPLICE_BYTES;) {
    ssize_t w = write(splice_pipe[1], splice_src + done, SPLICE_BYTES - done);
    if (w <= 0) break;
    done += w;
  }
  close(splice_pipe[1]);
  return NULL;
}

static void splice_from_pipe(void) {
  begin("15. splice from a pipe");
  int s = connect_to(port);
  if (pipe(splice_pipe) != 0) {
    printf("setup: pipe: %s\n", en(errno));
    exit(1);
  }
  pthread_t t;
  pthread_create(&t, NULL, pipe_writer, NULL);
  long total = 0, r = 0, calls = 0;
  int e = 0;
  while (total < SPLICE_BYTES) {
    errno = 0;
    r = splice(splice_pipe[0], NULL, s, NULL, 65536, 0);
    e = errno;
    ++calls;
    if (r <= 0) break;
    total += r;
  }
  pthread_join(t, NULL);
  if (r < 0) show("15. splice from a pipe: failed", r, e);
  printf("15. splice from a pipe: moved %ld\n", total);
  fprintf(stderr, "15. %ld calls\n", calls);
  received("15", s, splice_src, total);
  close(splice_pipe[0]);
}

/* Case 17: splice out of the socket into a pipe: the peer's answer line,
 * after 5000 bytes sent, read through the pipe (to EOF: 0); the refusals
 * first (an offset on the socket side, a pipe's read end as the output). */
static void splice_to_pipe(void) {
  begin("17. splice from the socket into a pipe");
  int s = connect_to(port), p[2];
  if (pipe(p) != 0) {
    printf("setup: pipe: %s\n", en(errno));
    exit(1);
  }
  const unsigned char* src = data + 3 * MiB;
  for (long done = 0; done < 5000;) {
    ssize_t w = send(s, src + done, 5000 - done, 0);
    if (w <= 0) break;
    done += w;
  }
  shutdown(s, SHUT_WR);
  loff_t off = 0;
  errno = 0;
  long r = splice(s, &off, p[1], NULL, 4096, 0);
  show("17. with an offset on the socket", r, errno);
  errno = 0;
  r = splice(s, NULL, p[0], NULL, 4096, 0);
  show("17. into the pipe's read end", r, errno);
  errno = 0;
  r = splice(s, NULL, p[1], NULL, 0, 0);
  show("17. 0 bytes", r, errno);
  char line[128];
  long total = 0;
  for (;;) {
    errno = 0;
    r = splice(s, NULL, p[1], NULL, 4096, 0);
    if (r <= 0) break;
    if (total + r >= (long)sizeof line) break;
    if (read(p[0], line + total, r) != r) break;
    total += r;
  }
  show("17. at the end", r, errno);
  line[total] = 0;
  unsigned long crc = 0;
  unsigned long long len = 0;
  int ok = sscanf(line, "%lu %llu", &crc, &len) == 2;
  printf("17: the peer's answer through the pipe: %s, received: %llu bytes, matching: %s\n", yes(ok),
         len, yes(ok && len == 5000 && crc == cksum(src, 5000)));
  close(s);
  close(p[0]);
  close(p[1]);
}

/* Case 16: a file with off_in. Straight to the socket splice refuses
 * (EINVAL: neither side is a pipe) and leaves off_in alone; through a pipe,
 * off_in moves and the file position does not. */
static void splice_from_file(void) {
  begin("16. splice from a file");
  int s = connect_to(port), in = open_file(small_path, O_RDONLY);
  loff_t off = 4096;
  errno = 0;
  long r = splice(in, &off, s, NULL, 200000, 0);
  show("16. splice file -> socket directly", r, errno);
  printf("16. off_in afterwards %ld\n", (long)off);
  received("16 directly", s, data + 4096, r > 0 ? r : 0);

  s = connect_to(port);
  int p[2];
  if (pipe(p) != 0) {
    printf("setup: pipe: %s\n", en(errno));
    exit(1);
  }
  off = 4096;
  long total = 0;
  int e = 0;
  r = 0;
  while (total < 200000) {
    errno = 0;
    long in_pipe = splice(in, &off, p[1], NULL, 200000 - total < 65536 ? 200000 - total : 65536, 0);
    e = errno;
    if (in_pipe <= 0) {
      r = in_pipe;
      break;
    }
    while (in_pipe > 0) {
      errno = 0;
      r = splice(p[0], NULL, s, NULL, in_pipe, 0);
      e = errno;
      if (r <= 0) break;
      in_pipe -= r;
      total += r;
    }
    if (r <= 0) break;
  }
  if (r < 0) show("16. splice file -> pipe -> socket: failed", r, e);
  printf("16. splice file -> pipe -> socket: moved %ld, off_in afterwards %ld, file position %ld\n", total,
         (long)off, position(in));
  received("16 through a pipe", s, data + 4096, total);
  close(p[0]);
  close(p[1]);
  close(in);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s PEER_IP PORT DIR\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  peer = argv[1];
  port = atoi(argv[2]);
  snprintf(dir_path, sizeof dir_path, "%s", argv[3]);
  snprintf(small_path, sizeof small_path, "%s/sendfile_parity.small", argv[3]);
  snprintf(big_path, sizeof big_path, "%s/sendfile_parity.big", argv[3]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sigaction(SIGPIPE, &sa, NULL);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  crc_init();
  fill_data();
  write_file(small_path, data, SMALL_SIZE);

  whole_file();
  with_offset();
  offset_read_only();
  past_eof();
  count_zero();

  int in = open_file(small_path, O_RDONLY);
  off_t off = -1;
  refused("5. negative offset", in, &off, 1000);
  from_pipe("6. in_fd a pipe, offset NULL", 0);
  from_pipe("6. in_fd a pipe, offset pointer", 1);

  int dir = open_file(dir_path, O_RDONLY);
  refused("7. in_fd a directory", dir, NULL, 1000);
  close(dir);

  /* The kernel refuses an in_fd that is neither a regular file nor a block
   * device (EINVAL: pipes, directories, sockets) before reading from it.
   * Non-blocking all the same, so that an implementation that does read it
   * fails at once instead of waiting for a datagram. */
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  refused("8. in_fd a UDP socket", udp, NULL, 1000);
  close(udp);

  int wr = open_file(small_path, O_WRONLY);
  refused("9. in_fd open for writing only", wr, NULL, 1000);
  close(wr);

  /* A high number, so that nothing the library opens meanwhile takes it. */
  int closed = fcntl(in, F_DUPFD, 900);
  close(closed);
  refused("10. in_fd closed", closed, NULL, 1000);

  refused("11. offset pointer not readable", in, (off_t*)1, 1000);
  close(in);

  not_connected();
  truncated();
  nonblocking();
  splice_from_pipe();
  splice_from_file();
  splice_to_pipe();

  alarm(0);
  unlink(small_path);
  printf("SIGPIPE in the other cases: %s\n", yes(sigpipes != sigpipes_in_12));
  printf("done\n");
  return 0;
}
