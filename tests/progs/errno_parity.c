/* errno_parity: socket calls whose results and errno must be the same with
 * and without xdpload. Run in namespace A against kernel peers in namespace
 * B (tests/shim/shim-errno-parity.sh starts them); prints one line per case,
 * with nothing that differs between runs (no ports, no byte counts that
 * depend on buffer sizes). The test runs it both ways and compares.
 *
 *   errno_parity PEER_IP LOCAL_IP
 *
 * Built with _FORTIFY_SOURCE so that the __*_chk entry points are used. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"

static const char* local;
static volatile sig_atomic_t sigpipes, alarms;

static void on_sigpipe(int s) { (void)s; ++sigpipes; }
static void on_alarm(int s) { (void)s; ++alarms; }

#define SHOW(name, expr)                                            \
  do {                                                              \
    errno = 0;                                                      \
    long r_ = (long)(expr);                                         \
    if (r_ < 0) printf("%-44s -1 %s\n", name, en(errno));          \
    else printf("%-44s ok\n", name);                                \
  } while (0)

/* Sends "eightnine" to the echo server and waits (at most a second) until
 * its echo is all back. */
static void echo_nine_bytes(int fd) {
  send(fd, "eightnine", 9, 0);
  for (int tries = 0, q = 0; tries < 50 && q < 9; ++tries) {
    usleep(20000);
    ioctl(fd, FIONREAD, &q);
  }
}

/* recvmmsg of two messages of one segment each on `fd`: up to 5 bytes into
 * `first`, the second's buffer unmapped (EFAULT when anything is left for
 * it). */
static long recvmmsg_second_unmapped(int fd, char* first, int flags) {
  struct iovec parts[2] = {{first, 5}, {(void*)16, 16}};
  struct mmsghdr mm[2];
  memset(mm, 0, sizeof mm);
  mm[0].msg_hdr.msg_iov = &parts[0];
  mm[0].msg_hdr.msg_iovlen = 1;
  mm[1].msg_hdr.msg_iov = &parts[1];
  mm[1].msg_hdr.msg_iovlen = 1;
  return recvmmsg(fd, mm, 2, flags, NULL);
}

/* A msghdr of one segment, nothing else set. */
static struct msghdr one_segment(struct iovec* io) {
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = io;
  m.msg_iovlen = 1;
  return m;
}

static sigjmp_buf segv_jump;
static volatile sig_atomic_t segv_seen;
static void on_segv(int s) {
  (void)s;
  ++segv_seen;
  siglongjmp(segv_jump, 1);
}
/* An address nothing is mapped at, which the compiler cannot see through. */
static volatile int* volatile unmapped = (volatile int*)16;
__attribute__((noinline)) static void fault_in_handler_guard(void) {
  if (!sigsetjmp(segv_jump, 1)) *unmapped = 1;
}
static const char* segv_action(void) {
  struct sigaction q;
  sigaction(SIGSEGV, NULL, &q);
  if (q.sa_flags & SA_SIGINFO) return "a handler (SA_SIGINFO)";
  return q.sa_handler == SIG_DFL ? "SIG_DFL" : q.sa_handler == on_segv ? "on_segv" : "other";
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  peer = argv[1];
  local = argv[2];
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, on_sigpipe);
  char buf[65536];
  int fd, fd2, v;
  socklen_t len;
  struct sockaddr_in a;

  /* Before the stack runs (no connection yet): an option's value the
   * program cannot give is the kernel's EFAULT. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  v = 1;
  SHOW("setsockopt before any connect, unmapped value", setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, (void*)16, sizeof v));
  close(fd);

  /* Refused, blocking and non-blocking. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  a = addr_of(peer, 7009);
  SHOW("connect to a closed port", connect(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("connect again after refusal", connect(fd, (struct sockaddr*)&a, sizeof a));
  close(fd);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  SHOW("non-blocking connect to a closed port", connect(fd, (struct sockaddr*)&a, sizeof a));
  struct pollfd p = {fd, POLLOUT, 0};
  poll(&p, 1, 2000);
  printf("%-44s %s%s%s%s\n", "poll after refusal", p.revents & POLLOUT ? "OUT " : "",
         p.revents & POLLERR ? "ERR " : "", p.revents & POLLHUP ? "HUP " : "",
         p.revents & POLLIN ? "IN" : "");
  len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
  printf("%-44s %s\n", "SO_ERROR after refusal", v ? en(v) : "0");
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
  printf("%-44s %s\n", "SO_ERROR read again", v ? en(v) : "0");
  close(fd);

  /* Non-blocking connect that succeeds. */
  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  a = addr_of(peer, 7001);
  SHOW("non-blocking connect to a listener", connect(fd, (struct sockaddr*)&a, sizeof a));
  p.fd = fd;
  p.events = POLLOUT;
  p.revents = 0;
  poll(&p, 1, 2000);
  len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
  printf("%-44s %s %s\n", "poll/SO_ERROR after connecting", p.revents == POLLOUT ? "OUT" : "other",
         v ? en(v) : "0");
  SHOW("connect again once connected", connect(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("recv on an empty non-blocking socket", recv(fd, buf, sizeof buf, 0));
  SHOW("read on an empty non-blocking socket", read(fd, buf, sizeof buf));
  SHOW("send 5 bytes to the echo server", send(fd, "hello", 5, 0));
  p.events = POLLIN;
  poll(&p, 1, 2000);
  len = sizeof v;
  ioctl(fd, FIONREAD, &v);
  printf("%-44s %d\n", "FIONREAD once the echo is back", v);
  memset(buf, 0, 16);
  printf("%-44s %ld '%.5s'\n", "recv MSG_PEEK", (long)recv(fd, buf, 16, MSG_PEEK), buf);
  memset(buf, 0, 16);
  printf("%-44s %ld '%.5s'\n", "recv after the peek", (long)recv(fd, buf, 16, 0), buf);
  /* Memory the program cannot give (a bad pointer): EFAULT, as the
   * kernel's copies fail, and nothing sent or lost. */
  SHOW("send from an unmapped buffer", send(fd, (void*)16, 100, MSG_NOSIGNAL));
  struct iovec bad_iov = {(void*)16, 8};
  struct msghdr bad_msg = one_segment(&bad_iov);
  SHOW("sendmsg from an unmapped buffer", sendmsg(fd, &bad_msg, MSG_NOSIGNAL));
  bad_msg.msg_iov = (struct iovec*)16;
  SHOW("sendmsg with an unmapped iovec array", sendmsg(fd, &bad_msg, MSG_NOSIGNAL));
  SHOW("sendmsg with an unmapped msghdr", sendmsg(fd, (struct msghdr*)16, MSG_NOSIGNAL));
  {
    /* Control messages the kernel cannot copy in: EFAULT, nothing sent. */
    struct iovec good_iov = {"lost", 4};
    struct msghdr ctl_msg = one_segment(&good_iov);
    ctl_msg.msg_control = (void*)16;
    ctl_msg.msg_controllen = 32;
    SHOW("sendmsg with unmapped control messages", sendmsg(fd, &ctl_msg, MSG_NOSIGNAL));
    ctl_msg.msg_control = NULL;
    SHOW("sendmsg, no control buffer but a length", sendmsg(fd, &ctl_msg, MSG_NOSIGNAL));
    /* An address the kernel cannot copy in (a connection ignores it, but
     * it is read first): EFAULT, nothing sent. sendto's longer than a
     * sockaddr_storage: EINVAL. */
    ctl_msg.msg_controllen = 0;
    ctl_msg.msg_name = (void*)16;
    ctl_msg.msg_namelen = sizeof(struct sockaddr_in);
    SHOW("sendmsg with an unmapped address", sendmsg(fd, &ctl_msg, MSG_NOSIGNAL));
    struct sockaddr_storage big;
    memset(&big, 0, sizeof big);
    SHOW("sendto, its address too long", sendto(fd, "lost", 4, MSG_NOSIGNAL, (struct sockaddr*)&big, sizeof big + 1));
  }
  SHOW("send 5 more bytes to the echo server", send(fd, "again", 5, 0));
  poll(&p, 1, 2000);
  SHOW("recv into an unmapped buffer", recv(fd, (void*)16, 100, 0));
  bad_msg.msg_iov = &bad_iov;
  SHOW("recvmsg into an unmapped buffer", recvmsg(fd, &bad_msg, 0));
  SHOW("recvmsg with an unmapped msghdr", recvmsg(fd, (struct msghdr*)16, 0));
  memset(buf, 0, 16);
  printf("%-44s %ld '%.5s'\n", "recv after them: the echo whole", (long)recv(fd, buf, 16, 0), buf);
  {
    /* Lengths past what one call moves, where every kernel agrees: a
     * segment longer than SSIZE_MAX is EINVAL (copy_iovec_from_user); one
     * whose end runs past the address space (here past 2^63) EFAULT, and
     * so is read's or write's count past SSIZE_MAX (vfs_read and
     * vfs_write ask access_ok of it whole); recv cuts its length to
     * MAX_RW_COUNT first (import_ubuf) and serves. A read of 0 is 0,
     * nothing taken (sock_read_iter). (Through a pointer whose object size
     * the compiler cannot see: a fortified read or recv would abort first.
     * Not on the stack: whether the stack's address plus MAX_RW_COUNT runs
     * past the address space depends on where the stack was put. Shorter
     * segments past the address space are left out: kernels 6.4 to 6.11
     * judged them by the sign of the end alone.) */
    static char low_buf[16];
    char* volatile vb = low_buf;
    volatile size_t past_ssize_max = (size_t)SSIZE_MAX + 1;  // (no compile-time warning)
    send(fd, "huge", 4, 0);
    poll(&p, 1, 2000);
    struct iovec big_iov[2] = {{low_buf, past_ssize_max}, {low_buf, (size_t)SSIZE_MAX}};
    struct msghdr big_msg = one_segment(&big_iov[0]);
    SHOW("recvmsg, a segment longer than SSIZE_MAX", recvmsg(fd, &big_msg, 0));
    big_iov[0].iov_len = 4;
    big_msg.msg_iovlen = 2;
    SHOW("recvmsg, a second segment of SSIZE_MAX", recvmsg(fd, &big_msg, 0));
    SHOW("sendmsg, a second segment of SSIZE_MAX", sendmsg(fd, &big_msg, MSG_NOSIGNAL));
    SHOW("read, a count longer than SSIZE_MAX", read(fd, vb, past_ssize_max));
    SHOW("write, a count longer than SSIZE_MAX", write(fd, vb, past_ssize_max));
    SHOW("read, a count of 0", read(fd, vb, 0));
    memset(low_buf, 0, sizeof low_buf);
    long got = (long)recv(fd, vb, SIZE_MAX, 0);
    printf("%-44s %ld '%.5s'\n", "recv, a length of SIZE_MAX", got, low_buf);
  }
  /* What the receive writes back after the data (___sys_recvmsg,
   * move_addr_to_user): a msghdr the program can read but not write, an
   * address length it cannot give or that is negative. The error, the
   * echo taken all the same; a connection's address length becomes 0. */
  {
    struct sockaddr_in from;
    long page = sysconf(_SC_PAGESIZE);
    struct msghdr* ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec rio = {buf, 16};
    *ro = one_segment(&rio);
    mprotect(ro, page, PROT_READ);
    send(fd, "three", 5, 0);
    poll(&p, 1, 2000);
    SHOW("recvmsg into a read-only msghdr", recvmsg(fd, ro, 0));
    SHOW("recv after it: the echo was taken", recv(fd, buf, 16, MSG_DONTWAIT));
    munmap(ro, page);
    send(fd, "four", 4, 0);
    poll(&p, 1, 2000);
    socklen_t* volatile unmapped_len = (socklen_t*)16;
    SHOW("recvfrom, its address length unmapped",
         recvfrom(fd, buf, 16, 0, (struct sockaddr*)&from, unmapped_len));
    SHOW("recv after it: the echo was taken", recv(fd, buf, 16, MSG_DONTWAIT));
    send(fd, "five", 4, 0);
    poll(&p, 1, 2000);
    SHOW("recvfrom with an address, no length", recvfrom(fd, buf, 16, 0, (struct sockaddr*)&from, NULL));
    SHOW("recv after it: the echo was taken", recv(fd, buf, 16, MSG_DONTWAIT));
    send(fd, "six", 3, 0);
    poll(&p, 1, 2000);
    socklen_t negative = (socklen_t)-1;
    SHOW("recvfrom, its address length negative",
         recvfrom(fd, buf, 16, 0, (struct sockaddr*)&from, &negative));
    SHOW("recv after it: the echo was taken", recv(fd, buf, 16, MSG_DONTWAIT));
    send(fd, "seven", 5, 0);
    poll(&p, 1, 2000);
    socklen_t fl = sizeof from;
    long got = recvfrom(fd, buf, 16, 0, (struct sockaddr*)&from, &fl);
    printf("%-44s %ld len=%u\n", "recvfrom on a connection: no address", got, (unsigned)fl);
  }
  /* recvmmsg on a connection, the second message's buffer unmapped: the
   * first message, and EFAULT kept as the socket's error (do_recvmmsg's
   * sk_err), for any socket. poll says ERR; recv returns what is left to
   * read, then the error; a send reports it first (sk_stream_error: no
   * SIGPIPE); the next recvmmsg, before any message. */
  {
    char first[8];
    for (int round = 0; round < 3; ++round) {
      echo_nine_bytes(fd);
      memset(first, 0, sizeof first);
      long got = recvmmsg_second_unmapped(fd, first, MSG_DONTWAIT);
      printf("%-44s %ld '%.5s'\n", "recvmmsg on a connection, second unmapped", got, first);
      if (round == 0) {
        /* (The error queue is read without a look at the socket's error.) */
        SHOW("recvmmsg of the error queue after it",
             recvmmsg_second_unmapped(fd, first, MSG_ERRQUEUE | MSG_DONTWAIT));
        struct pollfd ep = {fd, POLLIN, 0};
        poll(&ep, 1, 0);
        printf("%-44s %s\n", "poll after it", ep.revents & POLLERR ? "ERR" : "no ERR");
        memset(buf, 0, 16);
        got = recv(fd, buf, 16, MSG_DONTWAIT);
        printf("%-44s %ld '%.4s'\n", "recv after it: the rest first", got, buf);
        SHOW("recv then: the kept error", recv(fd, buf, 16, MSG_DONTWAIT));
        SHOW("recv then: nothing", recv(fd, buf, 16, MSG_DONTWAIT));
      } else if (round == 1) {
        recv(fd, buf, 16, MSG_DONTWAIT); /* the rest */
        sigpipes = 0;
        SHOW("send after it: the kept error", send(fd, "x", 1, 0));
        printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
      } else {
        recv(fd, buf, 16, MSG_DONTWAIT); /* the rest */
        SHOW("recvmmsg after it: the kept error", recvmmsg_second_unmapped(fd, first, MSG_DONTWAIT));
        SHOW("recv then: nothing", recv(fd, buf, 16, MSG_DONTWAIT));
      }
    }
  }
  len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len);
  printf("%-44s %d\n", "SO_TYPE", v);
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
  printf("%-44s %d\n", "SO_ACCEPTCONN on a connection", v);
  struct sockaddr_in me, them;
  len = sizeof me;
  getsockname(fd, (struct sockaddr*)&me, &len);
  len = sizeof them;
  getpeername(fd, (struct sockaddr*)&them, &len);
  printf("%-44s %s port-set=%d len=%u\n", "getsockname", inet_ntoa(me.sin_addr), me.sin_port != 0, len);
  printf("%-44s %s:%d\n", "getpeername", inet_ntoa(them.sin_addr), ntohs(them.sin_port));
  len = sizeof me;
  SHOW("getsockname to unmapped memory", getsockname(fd, (struct sockaddr*)16, &len));
  SHOW("getpeername, its length unmapped", getpeername(fd, (struct sockaddr*)&them, (socklen_t*)16));
  /* Options and ioctls with memory the program cannot give. */
  len = sizeof(struct tcp_info);
  SHOW("getsockopt TCP_INFO to unmapped memory", getsockopt(fd, IPPROTO_TCP, TCP_INFO, (void*)16, &len));
  len = 2 * sizeof v;
  SHOW("getsockopt TCP_NODELAY to unmapped memory", getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (void*)16, &len));
  /* do_tcp_getsockopt writes the length (cut to an int's) before the value. */
  printf("%-44s %u\n", "... its length, written before the value", (unsigned)len);
  SHOW("getsockopt SO_ERROR, its length unmapped", getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, (socklen_t*)16));
  SHOW("getsockopt TCP_MAXSEG, its length unmapped", getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &v, (socklen_t*)16));
  SHOW("setsockopt TCP_NODELAY from unmapped memory", setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (void*)16, sizeof v));
  SHOW("setsockopt SO_RCVTIMEO from unmapped memory",
       setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, (void*)16, sizeof(struct timeval)));
  SHOW("setsockopt TCP_KEEPIDLE from unmapped memory", setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, (void*)16, sizeof v));
  SHOW("setsockopt SO_LINGER from unmapped memory", setsockopt(fd, SOL_SOCKET, SO_LINGER, (void*)16, sizeof(struct linger)));
  SHOW("setsockopt SO_TIMESTAMPING from unmapped memory", setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, (void*)16, sizeof v));
  SHOW("setsockopt SO_BINDTODEVICE from unmapped memory", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, (void*)16, 8));
  SHOW("ioctl FIONREAD to unmapped memory", ioctl(fd, FIONREAD, (void*)16));
  SHOW("ioctl SIOCOUTQ to unmapped memory", ioctl(fd, SIOCOUTQ, (void*)16));
  SHOW("ioctl FIONBIO from unmapped memory", ioctl(fd, FIONBIO, (void*)16));
  {
    struct pollfd* volatile bad_fds = (struct pollfd*)16;
    SHOW("poll with an unmapped array", poll(bad_fds, 1, 0));
    fd_set* volatile bad_set = (fd_set*)16;
    struct timeval tv0 = {0, 0};
    SHOW("select with an unmapped set", select(fd + 1, bad_set, NULL, NULL, &tv0));
    int ep = epoll_create1(0);
    SHOW("epoll_ctl ADD from an unmapped event", epoll_ctl(ep, EPOLL_CTL_ADD, fd, (struct epoll_event*)16));
    struct epoll_event ee = {.events = EPOLLOUT}, got[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ee);
    struct epoll_event* volatile bad_events = (struct epoll_event*)16;
    SHOW("epoll_wait into an unmapped array (OUT ready)", epoll_wait(ep, bad_events, 4, 0));
    printf("%-44s %d\n", "epoll_wait after it: still ready", epoll_wait(ep, got, 4, 0));
    /* Two ready (ours and a pipe's), room for one: the second slot is on
     * a page the program does not have. One reported. */
    int pp[2];
    if (pipe(pp) == 0) {
      struct epoll_event pe = {.events = EPOLLOUT};
      epoll_ctl(ep, EPOLL_CTL_ADD, pp[1], &pe);
      long page = sysconf(_SC_PAGESIZE);
      char* two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      munmap(two + page, page);
      struct epoll_event* edge = (struct epoll_event*)(two + page - sizeof(struct epoll_event));
      printf("%-44s %d\n", "epoll_wait, room for one of two ready", epoll_wait(ep, edge, 2, 0));
      munmap(two, page);
      close(pp[0]);
      close(pp[1]);
    }
    close(ep);
  }
  /* Bytes the echo sends back, left unread for after the shutdown. */
  echo_nine_bytes(fd);
  SHOW("shutdown SHUT_WR", shutdown(fd, SHUT_WR));
  sigpipes = 0;
  SHOW("send after SHUT_WR", send(fd, "x", 1, 0));
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  SHOW("send after SHUT_WR, MSG_NOSIGNAL", send(fd, "x", 1, MSG_NOSIGNAL));
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  {
    /* A writev of 0 bytes is 0 before the socket is asked (vfs_writev). */
    struct iovec nothing = {buf, 0};
    SHOW("writev of 0 after SHUT_WR", writev(fd, &nothing, 1));
    printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
    /* Whatever the socket: not yet connected (a sendmsg would be EPIPE,
     * a UDP one's EDESTADDRREQ; a recvmsg ENOTCONN). */
    int fresh = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("writev of 0 on an unconnected socket", writev(fresh, &nothing, 1));
    SHOW("readv of 0 on an unconnected socket", readv(fresh, &nothing, 1));
    printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
    close(fresh);
    fresh = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("udp writev of 0, no destination", writev(fresh, &nothing, 1));
    close(fresh);
  }
  {
    /* An error kept before the peer's FIN comes: recv says the end first
     * (tcp_recvmsg_locked looks at SOCK_DONE before sk_err), SO_ERROR
     * still has the error. */
    char first[8] = {0};
    long got = recvmmsg_second_unmapped(fd, first, MSG_DONTWAIT);
    printf("%-44s %ld '%.5s'\n", "recvmmsg after SHUT_WR, second unmapped", got, first);
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, MSG_DONTWAIT);
    printf("%-44s %ld '%.4s'\n", "recv after it: the rest", got, buf);
  }
  /* The echo server sees our FIN and closes too. (Waited for in steps:
   * the error kept above makes poll return at once, with ERR.) */
  p.events = POLLIN | POLLRDHUP;
  for (int tries = 0; tries < 40; ++tries) {
    p.revents = 0;
    poll(&p, 1, 50);
    if (p.revents & POLLRDHUP) break;
    usleep(50000);
  }
  printf("%-44s %s%s\n", "poll after the peer's FIN", p.revents & POLLIN ? "IN " : "",
         p.revents & POLLRDHUP ? "RDHUP" : "");
  printf("%-44s %ld\n", "recv after the peer's FIN", (long)recv(fd, buf, sizeof buf, 0));
  {
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    printf("%-44s %s\n", "SO_ERROR after the peer's FIN", e ? en(e) : "0");
  }
  SHOW("close", close(fd));
  SHOW("close again", close(fd));

  /* A peer that closes at once: our data gets a reset back. Which send
   * first sees it is a race (on a wire, one round trip); what follows is
   * not: EPIPE, with SIGPIPE unless MSG_NOSIGNAL. */
  fd = connect_to(7002);
  msleep(200); /* its FIN arrives */
  printf("%-44s %ld\n", "recv after the peer closed", (long)recv(fd, buf, sizeof buf, 0));
  sigpipes = 0;
  int first_err = 0;
  for (int i = 0; i < 10 && !first_err; ++i) {
    if (send(fd, "abc", 3, MSG_NOSIGNAL) < 0) first_err = errno;
    msleep(100);
  }
  printf("%-44s %s\n", "sends to a closed peer fail with", first_err ? en(first_err) : "nothing");
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  SHOW("send after the reset, MSG_NOSIGNAL", send(fd, "abc", 3, MSG_NOSIGNAL));
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  SHOW("send after the reset", send(fd, "abc", 3, 0));
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  SHOW("write after the reset", write(fd, "abc", 3));
  printf("%-44s %d\n", "SIGPIPEs", (int)sigpipes);
  close(fd);

  /* A peer that resets an open connection. */
  fd = connect_to(7003);
  send(fd, "line\n", 5, 0);
  msleep(200);
  p.fd = fd;
  p.events = POLLIN | POLLOUT;
  p.revents = 0;
  poll(&p, 1, 1000);
  printf("%-44s %s%s%s%s\n", "poll after a reset", p.revents & POLLIN ? "IN " : "",
         p.revents & POLLOUT ? "OUT " : "", p.revents & POLLERR ? "ERR " : "",
         p.revents & POLLHUP ? "HUP" : "");
  SHOW("recv after a reset", recv(fd, buf, sizeof buf, 0));
  SHOW("recv again after a reset", recv(fd, buf, sizeof buf, 0));
  close(fd);

  /* A peer that never reads: fill the send buffer. */
  fd = connect_to(7004);
  set_nonblock(fd);
  int writes = 0, partial = 0, eagain = 0;
  for (int i = 0; i < 100000 && !eagain; ++i) {
    ssize_t n = send(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) eagain = 1;
    else if (n < 0) break;
    else {
      ++writes;
      if ((size_t)n < sizeof buf) partial = 1;
    }
  }
  printf("%-44s writes>1=%d partial=%d eagain=%d\n", "fill the send buffer", writes > 1, partial, eagain);
  p.fd = fd;
  p.events = POLLOUT;
  p.revents = 0;
  printf("%-44s %d\n", "poll POLLOUT with a full buffer", poll(&p, 1, 100));
  close(fd);

  /* Timeouts. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {0, 300000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  a = addr_of("10.211.0.99", 7001); /* nobody: ARP never answers */
  SHOW("connect with SO_SNDTIMEO to no host", connect(fd, (struct sockaddr*)&a, sizeof a));
  close(fd);
  fd = connect_to(7001);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SHOW("recv with SO_RCVTIMEO, nothing comes", recv(fd, buf, sizeof buf, 0));

  /* Signals: without SA_RESTART a blocking recv fails with EINTR; with it
   * the call goes on and gets what arrives after the signal. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  tv.tv_usec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ualarm(200000, 0);
  SHOW("blocking recv, SIGALRM without SA_RESTART", recv(fd, buf, sizeof buf, 0));
  printf("%-44s %d\n", "alarms", (int)alarms);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  ualarm(200000, 0);
  fd2 = connect_to(7005); /* sends "late" 500 ms after accepting: after the alarm */
  SHOW("blocking recv, SIGALRM with SA_RESTART", recv(fd2, buf, sizeof buf, 0));
  printf("%-44s %d\n", "alarms", (int)alarms);
  close(fd2);
  close(fd);

  /* Descriptors and flags on a connection. */
  fd = connect_to(7001);
  printf("%-44s %d\n", "F_GETFL O_NONBLOCK at first", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  v = 1;
  ioctl(fd, FIONBIO, &v);
  printf("%-44s %d\n", "F_GETFL O_NONBLOCK after FIONBIO 1", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  SHOW("recv once FIONBIO made it non-blocking", recv(fd, buf, sizeof buf, 0));
  v = 0;
  ioctl(fd, FIONBIO, &v);
  printf("%-44s %d\n", "F_GETFL O_NONBLOCK after FIONBIO 0", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  fd2 = dup(fd);
  SHOW("send through a dup", send(fd2, "dup", 3, 0));
  memset(buf, 0, 8);
  printf("%-44s %ld '%.3s'\n", "recv through the original", (long)recv(fd, buf, 8, 0), buf);
  close(fd);
  SHOW("send through the dup, original closed", send(fd2, "two", 3, 0));
  memset(buf, 0, 8);
  printf("%-44s %ld '%.3s'\n", "recv through the dup", (long)recv(fd2, buf, 8, 0), buf);
  int fd3 = fcntl(fd2, F_DUPFD_CLOEXEC, 100);
  printf("%-44s %d cloexec=%d\n", "F_DUPFD_CLOEXEC 100", fd3 >= 100, (fcntl(fd3, F_GETFD) & FD_CLOEXEC) != 0);
  printf("%-44s %d\n", "dup2 onto a free number", dup2(fd3, 150) == 150);
  SHOW("send through the dup2 copy", send(150, "dd2", 3, 0));
  memset(buf, 0, 8);
  printf("%-44s %ld '%.3s'\n", "recv through the F_DUPFD copy", (long)recv(fd3, buf, 8, 0), buf);
  msleep(100);
  ioctl(fd3, SIOCOUTQ, &v);
  printf("%-44s %d\n", "SIOCOUTQ once acknowledged", v);
  ioctl(fd3, SIOCINQ, &v);
  printf("%-44s %d\n", "SIOCINQ with nothing queued", v);
  close(150);
  close(fd3);
  close(fd2);
  SHOW("send on a closed descriptor", send(fd2, "x", 1, 0));

  /* Options set before connecting, read back after. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1, idle = 30, intvl = 5, cnt = 3, tos = 0x10, rbuf = 100000, sbuf = 100000;
  struct linger lg = {1, 7};
  struct timeval rto = {1, 500000};
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rbuf, sizeof rbuf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sbuf, sizeof sbuf);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
  a = addr_of(peer, 7001);
  SHOW("connect with options set", connect(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("TCP_QUICKACK", setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one));
  /* Fast Open's options are for sockets not connected (EINVAL here). */
  SHOW("TCP_FASTOPEN on a connection", setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &cnt, sizeof cnt));
  SHOW("TCP_FASTOPEN_CONNECT on a connection", setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one));
  struct {
    const char* name;
    int level, opt;
  } ints[] = {{"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE},   {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE},
              {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL}, {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT},
              {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY},     {"IP_TOS", IPPROTO_IP, IP_TOS},
              {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF},         {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF},
              {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR},   {"SO_ERROR", SOL_SOCKET, SO_ERROR},
              {"SO_TYPE", SOL_SOCKET, SO_TYPE},             {"SO_PROTOCOL", SOL_SOCKET, SO_PROTOCOL},
              {"SO_DOMAIN", SOL_SOCKET, SO_DOMAIN}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; ++i) {
    len = sizeof v;
    v = -1;
    int r = getsockopt(fd, ints[i].level, ints[i].opt, &v, &len);
    printf("getsockopt %-33s %d %d\n", ints[i].name, r, v);
  }
  len = sizeof lg;
  memset(&lg, 0, sizeof lg);
  getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len);
  printf("%-44s %d %d\n", "getsockopt SO_LINGER", lg.l_onoff, lg.l_linger);
  len = sizeof rto;
  memset(&rto, 0, sizeof rto);
  getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rto, &len);
  printf("%-44s %ld.%06ld\n", "getsockopt SO_RCVTIMEO", (long)rto.tv_sec, (long)rto.tv_usec);
  struct tcp_info ti;
  len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
  printf("%-44s state %d\n", "getsockopt TCP_INFO", ti.tcpi_state);
  close(fd);

  /* Two sockets on one port (SO_REUSEADDR), connecting to the same peer:
   * the second's four addresses are the first's (check_established). */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  fd2 = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  a = addr_of(local, 0);
  SHOW("bind to a port of the kernel's choice", bind(fd, (struct sockaddr*)&a, sizeof a));
  len = sizeof a;
  getsockname(fd, (struct sockaddr*)&a, &len);
  SHOW("bind a second socket to that port", bind(fd2, (struct sockaddr*)&a, sizeof a));
  a = addr_of(peer, 7001);
  SHOW("connect the first", connect(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("connect the second to the same peer", connect(fd2, (struct sockaddr*)&a, sizeof a));
  a = addr_of(peer, 7002); /* (still bound to the port, and usable) */
  SHOW("connect the second to another peer", connect(fd2, (struct sockaddr*)&a, sizeof a));
  close(fd2);
  close(fd);

  /* Listening and binding, local side. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  SHOW("accept on a socket that is not listening", accept(fd, NULL, NULL));
  SHOW("shutdown on an unconnected socket", shutdown(fd, SHUT_RDWR));
  SHOW("send on an unconnected socket", send(fd, "x", 1, MSG_NOSIGNAL));
  /* A fresh socket: Linux keeps the shutdown flags on this one (despite
   * ENOTCONN), and a listener made from it would hand out dead sockets. */
  close(fd);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  a = addr_of(local, 7777);
  v = 1; /* the other run's connection may still be in TIME_WAIT */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v);
  SHOW("bind to our address", bind(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("listen", listen(fd, 8));
  len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
  printf("%-44s %d\n", "SO_ACCEPTCONN on a listener", v);
  fd2 = socket(AF_INET, SOCK_STREAM, 0);
  SHOW("bind to a port in use", bind(fd2, (struct sockaddr*)&a, sizeof a));
  close(fd2);
  set_nonblock(fd);
  SHOW("accept with nothing pending", accept(fd, NULL, NULL));
  /* A local client reaches the listener through the kernel. */
  fd2 = socket(AF_INET, SOCK_STREAM, 0);
  SHOW("connect from this host to the listener", connect(fd2, (struct sockaddr*)&a, sizeof a));
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  poll(&p, 1, 1000);
  int c = accept(fd, NULL, NULL);
  printf("%-44s %s\n", "accept the local client", c >= 0 ? "ok" : en(errno));
  SHOW("send from the local client", send(fd2, "ping", 4, 0));
  memset(buf, 0, 8);
  errno = 0;
  long got_local = (long)recv(c, buf, 8, 0);
  printf("%-44s %ld '%.4s' %s\n", "recv on the accepted socket", got_local, buf,
         got_local < 0 ? en(errno) : "");
  close(c);
  close(fd2);
  close(fd);

  /* UDP. */
  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  SHOW("udp sendto without an address", send(fd, "x", 1, 0));
  a = addr_of(peer, 7101);
  SHOW("udp sendto a closed port", sendto(fd, "x", 1, 0, (struct sockaddr*)&a, sizeof a));
  SHOW("udp recv with nothing queued", recv(fd, buf, sizeof buf, 0));
  SHOW("udp connect to the closed port", connect(fd, (struct sockaddr*)&a, sizeof a));
  SHOW("udp send to it", send(fd, "x", 1, 0));
  msleep(200); /* the ICMP port-unreachable arrives */
  SHOW("udp recv after the ICMP error", recv(fd, buf, sizeof buf, 0));
  SHOW("udp recv once more", recv(fd, buf, sizeof buf, 0));
  /* A send reports the socket's error as well (and clears it). */
  SHOW("udp send to it again", send(fd, "x", 1, 0));
  msleep(200);
  SHOW("udp send after the ICMP error", send(fd, "x", 1, 0));
  SHOW("udp send once more", send(fd, "y", 1, 0));
  msleep(200);
  SHOW("udp recv after that send's ICMP error", recv(fd, buf, sizeof buf, 0));
  len = sizeof them;
  SHOW("udp getpeername when connected", getpeername(fd, (struct sockaddr*)&them, &len));
  close(fd);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  a = addr_of(peer, 7102); /* an echo server */
  connect(fd, (struct sockaddr*)&a, sizeof a);
  SHOW("udp send to the echo server", send(fd, "0123456789", 10, 0));
  memset(buf, 0, 16);
  printf("%-44s %ld '%.4s'\n", "udp recv a short read (datagram truncated)", (long)recv(fd, buf, 4, 0), buf);
  struct iovec io = {buf, 4};
  struct msghdr m = one_segment(&io);
  send(fd, "0123456789", 10, 0);
  ssize_t got = recvmsg(fd, &m, 0);
  printf("%-44s %ld trunc=%d\n", "udp recvmsg truncated", (long)got, (m.msg_flags & MSG_TRUNC) != 0);
  send(fd, "0123456789", 10, 0);
  printf("%-44s %ld\n", "udp recv MSG_TRUNC gives the full size", (long)recv(fd, buf, 4, MSG_TRUNC));
  /* A bad pointer: the datagram is not sent; one received into it is
   * dropped (udp_recvmsg), the call EFAULT. */
  SHOW("udp send from an unmapped buffer", send(fd, (void*)16, 10, 0));
  send(fd, "0123456789", 10, 0);
  SHOW("udp recv into an unmapped buffer", recv(fd, (void*)16, 16, 0));
  SHOW("udp recv after it: the datagram dropped", recv(fd, buf, 16, MSG_DONTWAIT));
  send(fd, "0123456789", 10, 0);
  {
    socklen_t fl = sizeof(struct sockaddr_in);
    SHOW("udp recvfrom, its address to unmapped memory", recvfrom(fd, buf, 16, 0, (struct sockaddr*)16, &fl));
  }
  SHOW("udp recv after it: that datagram was read", recv(fd, buf, 16, MSG_DONTWAIT));
  {
    /* Control messages into memory the program cannot write: put_cmsg's
     * EFAULT, which the receive ignores: the datagram, msg_controllen 0,
     * MSG_CTRUNC only when the buffer was short as well. */
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    struct iovec cio = {buf, 16};
    struct msghdr cm = one_segment(&cio);
    send(fd, "0123456789", 10, 0);
    cm.msg_control = (void*)16;
    cm.msg_controllen = 64;
    long got = recvmsg(fd, &cm, 0);
    printf("%-44s %ld controllen=%zu flags=%#x\n", "udp recvmsg, its control buffer unmapped", got,
           (size_t)cm.msg_controllen, (unsigned)cm.msg_flags);
    send(fd, "0123456789", 10, 0);
    cm.msg_control = (void*)16;
    cm.msg_controllen = sizeof(struct cmsghdr) + 4;
    got = recvmsg(fd, &cm, 0);
    printf("%-44s %ld controllen=%zu flags=%#x\n", "udp recvmsg, control unmapped and short", got,
           (size_t)cm.msg_controllen, (unsigned)cm.msg_flags);
    on = 0;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);

    /* A msghdr the program can read but not write: EFAULT, the datagram
     * read. */
    long page = sysconf(_SC_PAGESIZE);
    char* ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sockaddr_in from;
    memcpy(ro, &cm, sizeof cm);
    ((struct msghdr*)ro)->msg_control = NULL;
    ((struct msghdr*)ro)->msg_controllen = 0;
    ((struct msghdr*)ro)->msg_name = &from;
    ((struct msghdr*)ro)->msg_namelen = sizeof from;
    mprotect(ro, page, PROT_READ);
    send(fd, "0123456789", 10, 0);
    SHOW("udp recvmsg into a read-only msghdr", recvmsg(fd, (struct msghdr*)ro, 0));
    SHOW("udp recv after it: that datagram was read", recv(fd, buf, 16, MSG_DONTWAIT));

    /* sendmmsg and recvmmsg write each msg_len after its message
     * (put_user): in an array the program cannot write, the first message
     * is sent (taken) and the call is EFAULT. */
    struct iovec mio[2] = {{"mmsg-1", 6}, {"mmsg-2", 6}};
    struct mmsghdr* mm = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int k = 0; k < 2; ++k) {
      mm[k].msg_hdr.msg_iov = &mio[k];
      mm[k].msg_hdr.msg_iovlen = 1;
    }
    mprotect(mm, page, PROT_READ);
    struct pollfd up = {fd, POLLIN, 0};
    SHOW("udp sendmmsg, its array read-only", sendmmsg(fd, mm, 2, 0));
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, 0);
    printf("%-44s %ld '%.6s'\n", "udp recv after it: the first was sent", got, buf);
    msleep(200);
    SHOW("udp recv: the second was not", recv(fd, buf, 16, MSG_DONTWAIT));
    /* Into writable buffers, the array read-only: the msghdr cannot take
     * its flags (___sys_recvmsg's __put_user). */
    char rbufs[2][16];
    struct iovec rio[2] = {{rbufs[0], 16}, {rbufs[1], 16}};
    mprotect(mm, page, PROT_READ | PROT_WRITE);
    for (int k = 0; k < 2; ++k) mm[k].msg_hdr.msg_iov = &rio[k];
    mprotect(mm, page, PROT_READ);
    send(fd, "0123456789", 10, 0);
    poll(&up, 1, 2000);
    SHOW("udp recvmmsg, its array read-only", recvmmsg(fd, mm, 2, 0, NULL));
    SHOW("udp recv after it: that datagram was read", recv(fd, buf, 16, MSG_DONTWAIT));
    munmap(mm, page);
    /* An mmsghdr whose msghdr can be written but not its msg_len (the
     * next page read-only): put_user's EFAULT, the message sent (taken). */
    char* pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct mmsghdr* edge = (struct mmsghdr*)(pages + page - sizeof(struct msghdr));
    memset(edge, 0, sizeof(struct msghdr));
    edge->msg_hdr.msg_iov = &mio[0];
    edge->msg_hdr.msg_iovlen = 1;
    mprotect(pages + page, page, PROT_READ);
    SHOW("udp sendmmsg, msg_len read-only", sendmmsg(fd, edge, 1, 0));
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, 0);
    printf("%-44s %ld '%.6s'\n", "udp recv after it: it was sent", got, buf);
    edge->msg_hdr.msg_iov = &rio[0];
    send(fd, "0123456789", 10, 0);
    poll(&up, 1, 2000);
    SHOW("udp recvmmsg, msg_len read-only", recvmmsg(fd, edge, 1, 0, NULL));
    SHOW("udp recv after it: that datagram was read", recv(fd, buf, 16, MSG_DONTWAIT));
    munmap(pages, 2 * page);
    munmap(ro, page);

    /* An address of negative length (the kernel's msg_namelen is an
     * int): EINVAL before anything is sent or taken. */
    struct iovec nio = {"negative", 8};
    struct msghdr neg = one_segment(&nio);
    neg.msg_name = &from;
    neg.msg_namelen = (socklen_t)-1;
    SHOW("udp sendmsg, its address length negative", sendmsg(fd, &neg, 0));
    neg.msg_name = NULL;
    neg.msg_namelen = 0;
    neg.msg_control = (void*)16;
    neg.msg_controllen = 32;
    SHOW("udp sendmsg with unmapped control messages", sendmsg(fd, &neg, 0));
    neg.msg_control = NULL;
    neg.msg_controllen = 0;
    neg.msg_name = &from;
    neg.msg_namelen = (socklen_t)-1;
    send(fd, "0123456789", 10, 0);
    poll(&up, 1, 2000);
    nio.iov_base = buf;
    nio.iov_len = 16;
    SHOW("udp recvmsg, its address length negative", recvmsg(fd, &neg, 0));
    SHOW("udp recv after it: the datagram still there", recv(fd, buf, 16, MSG_DONTWAIT));

    /* sendfile's offset: read first (EFAULT, nothing sent), written back
     * after (EFAULT, the bytes sent). */
    int file = open("/proc/self/exe", O_RDONLY);
    off_t* volatile unmapped_offset = (off_t*)16;
    SHOW("udp sendfile, its offset unmapped", sendfile(fd, file, unmapped_offset, 10));
    off_t* ro_offset = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *ro_offset = 1;
    mprotect(ro_offset, page, PROT_READ);
    SHOW("udp sendfile, its offset read-only", sendfile(fd, file, ro_offset, 10));
    got = recv(fd, buf, 16, 0);
    printf("%-44s %ld '%.3s'\n", "udp recv after it: sent from offset 1", got, buf);
    munmap(ro_offset, page);
    close(file);

    /* recvmmsg's timeout: read first (EFAULT, EINVAL, nothing taken), and
     * what is left of it written back when messages came. */
    struct mmsghdr two[2];
    char bufs[2][16];
    struct iovec tio[2] = {{bufs[0], 16}, {bufs[1], 16}};
    memset(two, 0, sizeof two);
    for (int k = 0; k < 2; ++k) {
      two[k].msg_hdr.msg_iov = &tio[k];
      two[k].msg_hdr.msg_iovlen = 1;
    }
    send(fd, "0123456789", 10, 0);
    poll(&up, 1, 2000);
    struct timespec* volatile unmapped_timeout = (struct timespec*)16;
    SHOW("udp recvmmsg, its timeout unmapped", recvmmsg(fd, two, 2, 0, unmapped_timeout));
    struct timespec bad = {0, 1000000000};
    SHOW("udp recvmmsg, its timeout invalid", recvmmsg(fd, two, 2, 0, &bad));
    SHOW("udp recv after them: the datagram still there", recv(fd, buf, 16, MSG_DONTWAIT));
    send(fd, "0123456789", 10, 0);
    send(fd, "0123456789", 10, 0);
    struct timespec left = {5, 0};
    got = recvmmsg(fd, two, 2, 0, &left);
    printf("%-44s %ld lengths %u %u, less left than 5 s: %s\n", "udp recvmmsg of two, 5 s timeout", got,
           two[0].msg_len, two[1].msg_len, left.tv_sec < 5 && left.tv_sec >= 0 ? "yes" : "no");
    /* An error after a datagram at least (the second's buffer unmapped,
     * that datagram dropped): recvmmsg returns what it got and keeps the
     * error for the socket's next receive or SO_ERROR (do_recvmmsg's
     * sk_err), which then clears it; poll says ERR meanwhile. A blocking
     * call: it waits for the second datagram (at most 5 s: SO_RCVTIMEO). */
    struct timeval five = {5, 0}, none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    tio[1].iov_base = (void*)16;
    send(fd, "first", 5, 0);
    send(fd, "second", 6, 0);
    memset(bufs, 0, sizeof bufs);
    got = recvmmsg(fd, two, 2, 0, NULL);
    printf("%-44s %ld '%.5s'\n", "udp recvmmsg, the second's buffer unmapped", got, bufs[0]);
    struct pollfd ep = {fd, POLLIN, 0};
    poll(&ep, 1, 0);
    printf("%-44s %s\n", "udp poll after it", ep.revents & POLLERR ? "ERR" : "no ERR");
    v = 0;
    len = sizeof v;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
    printf("%-44s %s\n", "udp SO_ERROR after it", v ? en(v) : "0");
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
    printf("%-44s %s\n", "udp SO_ERROR read again", v ? en(v) : "0");
    send(fd, "third", 5, 0);
    send(fd, "fourth", 6, 0);
    got = recvmmsg(fd, two, 2, 0, NULL);
    printf("%-44s %ld '%.5s'\n", "udp recvmmsg so again", got, bufs[0]);
    SHOW("udp recv after it: the kept error", recv(fd, buf, 16, MSG_DONTWAIT));
    SHOW("udp recv then: nothing", recv(fd, buf, 16, MSG_DONTWAIT));
    /* A send reports it too (sock_alloc_send_pskb), sending nothing. */
    send(fd, "fifth", 5, 0);
    send(fd, "sixth", 5, 0);
    got = recvmmsg(fd, two, 2, 0, NULL);
    printf("%-44s %ld '%.5s'\n", "udp recvmmsg so a third time", got, bufs[0]);
    SHOW("udp send after it: the kept error", send(fd, "lost", 4, 0));
    send(fd, "seven", 5, 0);
    poll(&up, 1, 2000);
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, MSG_DONTWAIT);
    printf("%-44s %ld '%.5s'\n", "udp recv then: the next send's echo", got, buf);
    /* The next recvmmsg reports it before anything else. */
    send(fd, "eight", 5, 0);
    send(fd, "nine", 4, 0);
    got = recvmmsg(fd, two, 2, 0, NULL);
    printf("%-44s %ld '%.5s'\n", "udp recvmmsg so a fourth time", got, bufs[0]);
    SHOW("udp recvmmsg after it: the kept error", recvmmsg(fd, two, 2, MSG_DONTWAIT, NULL));
    SHOW("udp recv then: nothing", recv(fd, buf, 16, MSG_DONTWAIT));
    /* A read or readv of 0 is 0, the datagram left (sock_read_iter). */
    send(fd, "zero", 4, 0);
    poll(&up, 1, 2000);
    SHOW("udp read of 0", read(fd, buf, 0));
    struct iovec empty_iov = {buf, 0};
    SHOW("udp readv of 0", readv(fd, &empty_iov, 1));
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, MSG_DONTWAIT);
    printf("%-44s %ld '%.5s'\n", "udp recv after it: the datagram", got, buf);
    /* A writev of 0 bytes sends nothing (vfs_writev), where a write or a
     * send of 0 sends an empty datagram: the echo's next datagram is the
     * one sent after it. */
    SHOW("udp writev of 0", writev(fd, &empty_iov, 1));
    send(fd, "after", 5, 0);
    poll(&up, 1, 2000);
    memset(buf, 0, 16);
    got = recv(fd, buf, 16, MSG_DONTWAIT);
    printf("%-44s %ld '%.5s'\n", "udp recv after it: the next send's echo", got, buf);
    tio[1].iov_base = bufs[1];
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  }
  len = sizeof them;
  SHOW("udp getpeername to unmapped memory", getpeername(fd, (struct sockaddr*)16, &len));
  send(fd, "0123456789", 10, 0);
  recv(fd, buf, 16, 0);
  SHOW("udp ioctl SIOCGSTAMP to unmapped memory", ioctl(fd, SIOCGSTAMP, (void*)16));
  SHOW("udp ioctl FIONREAD to unmapped memory", ioctl(fd, FIONREAD, (void*)16));
  /* Corked: two sends, one datagram (xdpload sends it through the kernel socket). */
  send(fd, "ab", 2, MSG_MORE);
  send(fd, "cd", 2, 0);
  memset(buf, 0, 16);
  printf("%-44s %ld '%.8s'\n", "udp MSG_MORE joins two sends", (long)recv(fd, buf, 16, 0), buf);
  len = sizeof them;
  SHOW("udp getsockname", getsockname(fd, (struct sockaddr*)&them, &len));
  SHOW("udp shutdown on a connected socket", shutdown(fd, SHUT_RDWR));
  sigpipes = 0;
  SHOW("udp send after shutdown", send(fd, "x", 1, 0));
  printf("%-44s %d\n", "SIGPIPEs (none for UDP)", (int)sigpipes);
  SHOW("udp blocking recv after shutdown returns", recv(fd, buf, sizeof buf, 0));
  {
    /* 0 with no datagram: no address (its length 0), no control
     * messages, no flags. */
    socklen_t fl = sizeof them;
    long got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&them, &fl);
    printf("%-44s %ld len=%u\n", "udp blocking recvfrom after shutdown", got, (unsigned)fl);
    struct iovec sio = {buf, sizeof buf};
    char sctl[64];
    struct msghdr sm = one_segment(&sio);
    sm.msg_name = &them;
    sm.msg_namelen = sizeof them;
    sm.msg_control = sctl;
    sm.msg_controllen = sizeof sctl;
    sm.msg_flags = MSG_TRUNC;
    got = recvmsg(fd, &sm, 0);
    printf("%-44s %ld namelen=%u controllen=%zu flags=%#x\n", "udp blocking recvmsg after shutdown", got,
           (unsigned)sm.msg_namelen, (size_t)sm.msg_controllen, (unsigned)sm.msg_flags);
  }
  SHOW("udp non-blocking recv after shutdown", recv(fd, buf, sizeof buf, MSG_DONTWAIT));
  {
    struct pollfd sp = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&sp, 1, 0);
    printf("%-44s %#x\n", "udp poll after shutdown", (unsigned)sp.revents);
  }
  close(fd);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  SHOW("udp shutdown on an unconnected socket", shutdown(fd, SHUT_RDWR));
  close(fd);
  /* Don't fragment: a datagram beyond the MTU is refused. */
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  v = IP_PMTUDISC_DO;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
  a = addr_of(peer, 7102);
  connect(fd, (struct sockaddr*)&a, sizeof a);
  static char big[2000];
  SHOW("udp send beyond the MTU, IP_PMTUDISC_DO", send(fd, big, sizeof big, 0));
  SHOW("udp send within the MTU, IP_PMTUDISC_DO", send(fd, big, 1400, 0));
  v = IP_PMTUDISC_DONT;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
  SHOW("udp send beyond the MTU, IP_PMTUDISC_DONT", send(fd, big, sizeof big, 0));
  close(fd);

  /* A small send buffer: Linux refuses a datagram whose fragments do not
   * fit twice the buffer (ENOBUFS); one frame always goes. */
  static char huge[65508];
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  v = 1; /* the kernel's minimum */
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  connect(fd, (struct sockaddr*)&a, sizeof a);
  SHOW("udp 9000 bytes, SO_SNDBUF at its minimum", send(fd, huge, 9000, 0));
  SHOW("udp 65507 bytes, SO_SNDBUF at its minimum", send(fd, huge, 65507, 0));
  SHOW("udp 1000 bytes, SO_SNDBUF at its minimum", send(fd, huge, 1000, 0));
  v = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  SHOW("udp 65507 bytes, SO_SNDBUF 1 MiB", send(fd, huge, 65507, 0));
  close(fd);

  /* IP_RECVERR: a datagram too long is refused and its error queued. */
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  v = 1;
  setsockopt(fd, IPPROTO_IP, IP_RECVERR, &v, sizeof v);
  connect(fd, (struct sockaddr*)&a, sizeof a);
  SHOW("udp 65508 bytes with IP_RECVERR", send(fd, huge, sizeof huge, 0));
  {
    struct pollfd ep = {fd, 0, 0};
    poll(&ep, 1, 0);
    printf("%-44s %#x\n", "udp poll: the local error is queued", (unsigned)ep.revents);
    char cbuf[256];
    struct iovec eiov = {buf, sizeof buf};
    struct msghdr em = {0};
    em.msg_iov = &eiov;
    em.msg_iovlen = 1;
    em.msg_control = cbuf;
    em.msg_controllen = sizeof cbuf;
    ssize_t er = recvmsg(fd, &em, MSG_ERRQUEUE | MSG_DONTWAIT);
    int ee = errno;
    struct cmsghdr* c = er >= 0 ? CMSG_FIRSTHDR(&em) : NULL;
    struct sock_extended_err* x = c ? (struct sock_extended_err*)CMSG_DATA(c) : NULL;
    printf("%-44s %s errno %d origin %d\n", "udp MSG_ERRQUEUE after it", er >= 0 ? "entry" : en(ee),
           x ? (int)x->ee_errno : 0, x ? (int)x->ee_origin : 0);
  }
  close(fd);

  /* connect(AF_UNSPEC) dissolves the association and releases the port
   * the kernel chose; the next send takes a new one, which the echo's
   * reply reaches. */
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  a = addr_of(peer, 7102);
  connect(fd, (struct sockaddr*)&a, sizeof a);
  struct sockaddr_in un = {0};
  un.sin_family = AF_UNSPEC;
  SHOW("udp connect AF_UNSPEC", connect(fd, (struct sockaddr*)&un, sizeof un));
  len = sizeof them;
  getsockname(fd, (struct sockaddr*)&them, &len);
  printf("%-44s port %s\n", "udp getsockname after it", them.sin_port ? "kept" : "0");
  SHOW("udp send without an address after it", send(fd, "x", 1, 0));
  SHOW("udp sendto the echo after it", sendto(fd, "again", 5, 0, (struct sockaddr*)&a, sizeof a));
  {
    struct pollfd rp = {fd, POLLIN, 0};
    poll(&rp, 1, 3000);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t got = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr*)&from, &fl);
    printf("%-44s %ld '%.5s'\n", "udp the echo's reply reaches the new port", (long)got, buf);
    len = sizeof them;
    getsockname(fd, (struct sockaddr*)&them, &len);
    printf("%-44s port %s\n", "udp getsockname: the port it sent from", them.sin_port ? "set" : "0");
  }
  /* The program's own SIGSEGV handler sees its own faults and never the
   * library's (a bad pointer is EFAULT); its action reads back as set. */
  printf("%-44s %s\n", "SIGSEGV action at first", segv_action());
  signal(SIGSEGV, on_segv);
  printf("%-44s %s\n", "SIGSEGV action once set", segv_action());
  SHOW("udp send from an unmapped buffer, handler set", sendto(fd, (void*)16, 5, 0, (struct sockaddr*)&a, sizeof a));
  printf("%-44s %d\n", "the handler ran for it", (int)segv_seen);
  fault_in_handler_guard();
  printf("%-44s %d\n", "the program's own fault reached its handler", (int)segv_seen);
  /* A one-shot handler (SA_RESETHAND, as crash reporters install): a bad
   * pointer does not use it up; the program's own fault does. */
  struct sigaction oneshot;
  memset(&oneshot, 0, sizeof oneshot);
  oneshot.sa_handler = on_segv;
  oneshot.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigaction(SIGSEGV, &oneshot, NULL);
  SHOW("udp send from an unmapped buffer, one-shot set", sendto(fd, (void*)16, 5, 0, (struct sockaddr*)&a, sizeof a));
  printf("%-44s %s\n", "SIGSEGV action after it", segv_action());
  fault_in_handler_guard();
  printf("%-44s %d, then %s\n", "the own fault reached the one-shot", (int)segv_seen, segv_action());
  /* One struct passed as both the new action and the old. */
  struct sigaction both;
  memset(&both, 0, sizeof both);
  both.sa_handler = on_segv;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
  sigaction(SIGSEGV, &both, &both);
#pragma GCC diagnostic pop
  printf("%-44s %s\n", "sigaction(new == old): the old action", both.sa_handler == SIG_DFL ? "SIG_DFL" : "other");
  SHOW("udp send from an unmapped buffer, after it", sendto(fd, (void*)16, 5, 0, (struct sockaddr*)&a, sizeof a));
  fault_in_handler_guard();
  printf("%-44s %d\n", "the own fault reached the handler again", (int)segv_seen);
  SHOW("udp sendto an unmapped address", sendto(fd, "x", 1, 0, (struct sockaddr*)16, sizeof a));
  signal(SIGSEGV, SIG_DFL);
  printf("%-44s %s\n", "SIGSEGV action back to SIG_DFL", segv_action());
  SHOW("udp send from an unmapped buffer, SIG_DFL", sendto(fd, (void*)16, 5, 0, (struct sockaddr*)&a, sizeof a));
  close(fd);
  /* A fault of the program's own under the default action still ends it
   * by SIGSEGV. */
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    *unmapped = 1;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  printf("%-44s %s %d\n", "a child's own fault, default action", WIFSIGNALED(status) ? "signal" : "exit",
         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  return 0;
}
