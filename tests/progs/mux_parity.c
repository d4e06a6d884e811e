/* mux_parity: poll, select and epoll semantics that must be the same with
 * and without xdpload. Events on the program's sockets are made on cue by
 * tests/peers/remote_peer.py in the other namespace; every line printed is
 * compared between the two runs (tests/shim/shim-mux-parity.sh).
 *
 *   mux_parity PEER_IP LOCAL_IP */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"

static const char* local;
static int ctl;

static const char* evs(unsigned e) {
  static char b[128];
  b[0] = 0;
  const struct {
    unsigned bit;
    const char* name;
  } names[] = {{EPOLLIN, "IN"},   {EPOLLPRI, "PRI"}, {EPOLLOUT, "OUT"},     {EPOLLERR, "ERR"},
               {EPOLLHUP, "HUP"}, {EPOLLRDHUP, "RDHUP"}, {POLLNVAL, "NVAL"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (e & names[i].bit) {
      strcat(b, names[i].name);
      strcat(b, " ");
    }
  if (!b[0]) strcpy(b, "-");
  return b;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Tells the remote peer to do something and waits for it to be done; then
 * gives the event time to arrive. */
static void peer_do(const char* cmd) {
  char line[128], ok[8];
  snprintf(line, sizeof line, "%s\n", cmd);
  if (write(ctl, line, strlen(line)) < 0) exit(2);
  size_t got = 0;
  while (got < 3) {
    ssize_t n = read(ctl, ok + got, 3 - got);
    if (n <= 0) exit(2);
    got += (size_t)n;
  }
  msleep(50);
}

static int listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of(local, port);
  bind(fd, (struct sockaddr*)&a, sizeof a);
  listen(fd, 16);
  return fd;
}

/* A connection from the remote peer to us: a listener, CONNECT, accept. */
static int remote_connection(int port) {
  int l = listener(port);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "CONNECT %d", port);
  peer_do(cmd);
  int fd = accept(l, NULL, NULL);
  close(l);
  return fd;
}

static void drain(int fd) {
  char buf[65536];
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  while (recv(fd, buf, sizeof buf, 0) > 0) {
  }
  fcntl(fd, F_SETFL, fl);
}

static int by_tag(const void* a, const void* b) {
  return (int)((const struct epoll_event*)a)->data.u32 - (int)((const struct epoll_event*)b)->data.u32;
}

static void show_epoll(const char* what, int ep, int timeout) {
  struct epoll_event e[8];
  int n = epoll_wait(ep, e, 8, timeout);
  if (n < 0) {
    printf("%-50s -1 %s\n", what, en(errno));
    return;
  }
  /* The order of ready descriptors is not specified. */
  qsort(e, (size_t)n, sizeof e[0], by_tag);
  printf("%-50s %d", what, n);
  for (int i = 0; i < n; ++i) printf(" [%d: %s]", (int)e[i].data.u32, evs(e[i].events));
  printf("\n");
}

static void show_poll(const char* what, int fd, short events, int timeout) {
  struct pollfd p = {fd, events, 0};
  int n = poll(&p, 1, timeout);
  printf("%-50s %d %s\n", what, n, n < 0 ? en(errno) : evs((unsigned short)p.revents));
}

static int epoll_with(int fd, unsigned events, unsigned tag) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = events, .data.u32 = tag};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) printf("setup: epoll_ctl: %s\n", en(errno));
  return ep;
}

/* A fresh non-blocking TCP socket shut for reading (ENOTCONN, which Linux
 * records all the same); `show`: print the shutdown's result. */
static int shut_fresh_socket(int show) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int rc = shutdown(fd, SHUT_RD);
  if (show) printf("%-50s %d %s\n", "shutdown SHUT_RD of a fresh socket", rc, rc < 0 ? en(errno) : "");
  return fd;
}

/* A connect that stays pending: .250 of the peer's subnet, where no host
 * answers. */
static void connect_nowhere(int fd, const char* what) {
  struct sockaddr_in nobody = addr_of(peer, 7011);
  nobody.sin_addr.s_addr = (nobody.sin_addr.s_addr & htonl(0xffffff00)) | htonl(250);
  int rc = connect(fd, (struct sockaddr*)&nobody, sizeof nobody);
  printf("%-50s %d %s\n", what, rc, rc < 0 ? en(errno) : "");
}

static volatile sig_atomic_t usr1;
static void on_usr1(int s) {
  (void)s;
  ++usr1;
}
static void* send_usr1(void* arg) {
  msleep(100);
  pthread_kill(*(pthread_t*)arg, SIGUSR1);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  peer = argv[1];
  local = argv[2];
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  ctl = connect_to(7010);
  int fd, ep, ep2;
  struct epoll_event ev;

  /* poll on a connection */
  fd = remote_connection(7600);
  show_poll("poll POLLIN, nothing sent", fd, POLLIN, 50);
  show_poll("poll POLLOUT at once", fd, POLLOUT, 0);
  peer_do("SEND 100");
  show_poll("poll POLLIN after the peer sent", fd, POLLIN, 1000);
  drain(fd);
  show_poll("poll POLLIN after reading it all", fd, POLLIN, 50);
  peer_do("SHUTWR");
  show_poll("poll after the peer's FIN", fd, POLLIN | POLLRDHUP, 1000);

  /* epoll level-triggered */
  close(fd);
  fd = remote_connection(7601);
  ep = epoll_with(fd, EPOLLIN, 1);
  show_epoll("epoll LT, nothing sent", ep, 50);
  peer_do("SEND 100");
  show_epoll("epoll LT after the peer sent", ep, 1000);
  show_epoll("epoll LT again, not read", ep, 50);
  drain(fd);
  show_epoll("epoll LT after reading", ep, 50);
  close(ep);

  /* edge-triggered */
  ep = epoll_with(fd, EPOLLIN | EPOLLET, 2);
  peer_do("SEND 100");
  show_epoll("epoll ET after the peer sent", ep, 1000);
  show_epoll("epoll ET again, not read", ep, 50);
  peer_do("SEND 100");
  show_epoll("epoll ET after more arrived", ep, 1000);
  drain(fd);
  close(ep);

  /* one-shot */
  ep = epoll_with(fd, EPOLLIN | EPOLLONESHOT, 3);
  peer_do("SEND 100");
  show_epoll("epoll ONESHOT first", ep, 1000);
  peer_do("SEND 100");
  show_epoll("epoll ONESHOT, disarmed", ep, 50);
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u32 = 3;
  printf("%-50s %d\n", "epoll_ctl MOD re-arms", epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
  show_epoll("epoll ONESHOT after MOD, data still there", ep, 1000);
  drain(fd);
  close(ep);

  /* one descriptor in two sets, an epoll set in another and in poll */
  ep = epoll_with(fd, EPOLLIN, 4);
  ep2 = epoll_with(fd, EPOLLIN, 5);
  int outer = epoll_with(ep, EPOLLIN, 6);
  peer_do("SEND 10");
  show_epoll("first set", ep, 1000);
  show_epoll("second set", ep2, 1000);
  show_epoll("outer set watching the first", outer, 1000);
  show_poll("poll on the first set's descriptor", ep, POLLIN, 1000);
  drain(fd);
  show_epoll("first set after reading", ep, 50);
  close(outer);
  close(ep2);

  /* close() of a duplicate keeps the registration; the last one ends it */
  int dupfd = dup(fd);
  close(fd);
  peer_do("SEND 10");
  show_epoll("registration after closing one of two copies", ep, 1000);
  drain(dupfd);
  close(dupfd);
  int rc = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  printf("%-50s %d %s\n", "EPOLL_CTL_DEL after the last copy closed", rc, rc < 0 ? en(errno) : "");
  close(ep);

  /* rdhup, reset */
  fd = remote_connection(7602);
  ep = epoll_with(fd, EPOLLIN | EPOLLRDHUP, 7);
  peer_do("SHUTWR");
  show_epoll("epoll after the peer's FIN (RDHUP asked)", ep, 1000);
  close(ep);
  close(fd);
  fd = remote_connection(7603);
  ep = epoll_with(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 8);
  show_epoll("epoll on a fresh connection", ep, 1000);
  peer_do("RESET");
  show_epoll("epoll after the peer's reset", ep, 1000);
  close(ep);
  close(fd);

  /* Edge-triggered EPOLLOUT after EAGAIN: an event comes once space returns
   * (the guarantee programs rely on). */
  fd = connect_to(7011);
  peer_do("ACCEPT");
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ep = epoll_with(fd, EPOLLOUT | EPOLLET, 9);
  show_epoll("epoll EPOLLOUT|ET at first", ep, 1000);
  show_epoll("epoll EPOLLOUT|ET again", ep, 50);
  char big[65536];
  memset(big, 'z', sizeof big);
  int full = 0;
  for (int i = 0; i < 100000; ++i) {
    if (send(fd, big, sizeof big, 0) < 0) {
      full = errno == EAGAIN;
      break;
    }
  }
  printf("%-50s %d\n", "send buffer filled (EAGAIN)", full);
  peer_do("DRAIN");
  int got_out = 0;
  struct epoll_event oe[4];
  for (long start = now_ms(); now_ms() - start < 1000 && !got_out;) {
    int k = epoll_wait(ep, oe, 4, 100);
    for (int i = 0; i < k; ++i)
      if (oe[i].events & EPOLLOUT) got_out = 1;
  }
  printf("%-50s %d\n", "EPOLLOUT|ET event once the peer read", got_out);
  close(ep);
  close(fd);

  /* TCP_NOTSENT_LOWAT: with bytes not yet sent (the peer's window shut, the
   * peer not reading) the socket is not writable under a mark of 1; clearing
   * the mark makes it writable at once, and Linux tells epoll then
   * (sk_write_space), with no acknowledgement to come. */
  fd = connect_to(7011);
  peer_do("ACCEPT");
  fcntl(fd, F_SETFL, O_NONBLOCK);
  int mark = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &mark, sizeof mark);
  int stuck = 0;
  for (int round = 0; round < 50 && !stuck; ++round) {
    while (send(fd, big, sizeof big, 0) > 0) {
    }
    msleep(100); /* what was in flight is acknowledged: still not writable? */
    struct pollfd q = {fd, POLLOUT, 0};
    stuck = poll(&q, 1, 0) == 0;
  }
  printf("%-50s %d\n", "unsent bytes held by the shut window", stuck);
  ep = epoll_with(fd, EPOLLOUT, 14);
  show_epoll("epoll EPOLLOUT, TCP_NOTSENT_LOWAT 1 not met", ep, 0);
  mark = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &mark, sizeof mark);
  show_epoll("epoll EPOLLOUT once TCP_NOTSENT_LOWAT is cleared", ep, 0);
  close(ep);
  close(fd);

  /* A shutdown recorded on a fresh socket (ENOTCONN, but Linux keeps it),
   * then a connect that stays pending (no host answers on .250): the
   * level-triggered set goes on reporting the shut reading side. */
  fd = shut_fresh_socket(1);
  ep = epoll_with(fd, EPOLLIN | EPOLLRDHUP, 15);
  show_epoll("epoll LT, fresh socket shut for reading", ep, 0);
  connect_nowhere(fd, "connect to a host that does not answer");
  show_epoll("epoll LT, connecting, shut for reading", ep, 0);
  close(ep);
  close(fd);
  /* The same, edge-triggered, the edge not yet collected at the connect:
   * Linux reports it once. */
  fd = shut_fresh_socket(0);
  ep = epoll_with(fd, EPOLLIN | EPOLLRDHUP | EPOLLET, 16);
  connect_nowhere(fd, "connect, ET set not yet looked at");
  show_epoll("epoll ET, connecting, shut for reading", ep, 0);
  show_epoll("epoll ET again", ep, 0);
  close(ep);
  close(fd);
  /* One-shot: fired before the connect, it stays disarmed after it until
   * EPOLL_CTL_MOD. */
  fd = shut_fresh_socket(0);
  ep = epoll_with(fd, EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, 17);
  show_epoll("epoll ONESHOT, fresh socket shut for reading", ep, 0);
  connect_nowhere(fd, "connect, the one shot used");
  show_epoll("epoll ONESHOT, connecting, disarmed", ep, 0);
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u32 = 17;
  printf("%-50s %d\n", "epoll_ctl MOD re-arms it", epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
  show_epoll("epoll ONESHOT, connecting, re-armed", ep, 0);
  close(ep);
  close(fd);

  /* a listener is readable when a connection waits */
  int l = listener(7604);
  ep = epoll_with(l, EPOLLIN, 10);
  show_epoll("listener, nobody connecting", ep, 50);
  peer_do("CONNECT 7604");
  show_epoll("listener, a connection waits", ep, 1000);
  fd = accept(l, NULL, NULL);
  printf("%-50s %s\n", "accept", fd >= 0 ? "ok" : en(errno));
  show_epoll("listener after accepting", ep, 50);
  close(ep);

  /* select, with a pipe beside the socket */
  int pfd[2];
  if (pipe(pfd) != 0) return 2;
  fd_set r;
  struct timeval tv = {0, 50000};
  FD_ZERO(&r);
  FD_SET(fd, &r);
  FD_SET(pfd[0], &r);
  int maxfd = fd > pfd[0] ? fd : pfd[0];
  printf("%-50s %d\n", "select, nothing ready", select(maxfd + 1, &r, NULL, NULL, &tv));
  peer_do("SEND 10");
  FD_ZERO(&r);
  FD_SET(fd, &r);
  FD_SET(pfd[0], &r);
  tv.tv_sec = 1;
  tv.tv_usec = 0;
  int n = select(maxfd + 1, &r, NULL, NULL, &tv);
  printf("%-50s %d socket=%d pipe=%d\n", "select after the peer sent", n, FD_ISSET(fd, &r),
         FD_ISSET(pfd[0], &r));
  if (write(pfd[1], "p", 1) != 1) return 2;
  FD_ZERO(&r);
  FD_SET(fd, &r);
  FD_SET(pfd[0], &r);
  n = select(maxfd + 1, &r, NULL, NULL, &tv);
  printf("%-50s %d socket=%d pipe=%d\n", "select with the pipe written too", n, FD_ISSET(fd, &r),
         FD_ISSET(pfd[0], &r));

  /* epoll over a pipe and a socket */
  ep = epoll_with(pfd[0], EPOLLIN, 11);
  ev.events = EPOLLIN;
  ev.data.u32 = 12;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  show_epoll("epoll over a pipe and a socket, both ready", ep, 1000);
  char c;
  if (read(pfd[0], &c, 1) != 1) return 2;
  drain(fd);
  show_epoll("epoll over a pipe and a socket, both read", ep, 50);

  /* epoll over a pipe alone, its data 0 (descriptor 0's data.fd, a null
   * data.ptr): a set with nothing of the stack's in it */
  int ep0 = epoll_with(pfd[0], EPOLLIN, 0);
  show_epoll("epoll over a pipe alone, data 0, not written", ep0, 50);
  if (write(pfd[1], "q", 1) != 1) return 2;
  show_epoll("epoll over a pipe alone, data 0, written", ep0, 1000);
  if (read(pfd[0], &c, 1) != 1) return 2;
  close(ep0);

  /* A pipe and a connection with the same data, both ready: two reports,
   * as Linux gives them (the program cannot tell them apart, but sees
   * both). */
  ep0 = epoll_with(pfd[0], EPOLLIN, 21);
  ev.events = EPOLLIN;
  ev.data.u64 = 21;
  epoll_ctl(ep0, EPOLL_CTL_ADD, fd, &ev);
  peer_do("SEND 10");
  struct pollfd arrived = {fd, POLLIN, 0};
  poll(&arrived, 1, 1000);
  if (write(pfd[1], "r", 1) != 1) return 2;
  show_epoll("epoll, a pipe and a connection, equal data", ep0, 1000);
  if (read(pfd[0], &c, 1) != 1) return 2;
  drain(fd);
  close(ep0);

  /* epoll_ctl errors and EPOLLEXCLUSIVE */
  ev.events = EPOLLIN;
  rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  printf("%-50s %d %s\n", "EPOLL_CTL_ADD twice", rc, rc < 0 ? en(errno) : "");
  rc = epoll_ctl(ep, EPOLL_CTL_MOD, ctl, &ev);
  printf("%-50s %d %s\n", "EPOLL_CTL_MOD of a stranger", rc, rc < 0 ? en(errno) : "");
  rc = epoll_ctl(ep, EPOLL_CTL_DEL, ctl, NULL);
  printf("%-50s %d %s\n", "EPOLL_CTL_DEL of a stranger", rc, rc < 0 ? en(errno) : "");
  int ep3 = epoll_create1(0);
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  printf("%-50s %d\n", "EPOLLEXCLUSIVE accepted", epoll_ctl(ep3, EPOLL_CTL_ADD, fd, &ev));
  rc = epoll_ctl(ep3, EPOLL_CTL_MOD, fd, &ev);
  printf("%-50s %d %s\n", "EPOLLEXCLUSIVE on MOD", rc, rc < 0 ? en(errno) : "");
  close(ep3);

  /* timeouts and signal masks */
  long t0 = now_ms();
  n = epoll_wait(ep, (struct epoll_event[1]){0}, 1, 150);
  printf("%-50s %d waited-at-least-the-timeout=%d\n", "epoll_wait 150 ms, nothing", n,
         now_ms() - t0 >= 145);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_t me = pthread_self(), th;
  pthread_create(&th, NULL, send_usr1, &me);
  n = epoll_pwait(ep, (struct epoll_event[1]){0}, 1, 400, &block);
  printf("%-50s %d %s signals-seen-during=%d\n", "epoll_pwait, SIGUSR1 blocked by the mask", n,
         n < 0 ? en(errno) : "", (int)usr1);
  pthread_join(th, NULL);
  msleep(10);
  usr1 = 0;
  pthread_create(&th, NULL, send_usr1, &me);
  n = epoll_wait(ep, (struct epoll_event[1]){0}, 1, 2000);
  printf("%-50s %d %s handler-ran=%d\n", "epoll_wait interrupted by SIGUSR1", n,
         n < 0 ? en(errno) : "", (int)usr1);
  pthread_join(th, NULL);
  usr1 = 0;
  pthread_create(&th, NULL, send_usr1, &me);
  struct pollfd p = {fd, POLLIN, 0};
  struct timespec pt = {0, 400000000};
  n = ppoll(&p, 1, &pt, &block);
  printf("%-50s %d %s\n", "ppoll, SIGUSR1 blocked by the mask", n, n < 0 ? en(errno) : "");
  pthread_join(th, NULL);
  msleep(10);
  usr1 = 0;
  pthread_create(&th, NULL, send_usr1, &me);
  n = poll(&p, 1, 2000);
  printf("%-50s %d %s handler-ran=%d\n", "poll interrupted by SIGUSR1", n, n < 0 ? en(errno) : "",
         (int)usr1);
  pthread_join(th, NULL);
  close(ep);

  /* poll on a closed descriptor */
  int dead = dup(fd);
  close(dead);
  p.fd = dead;
  p.events = POLLIN;
  printf("%-50s %d %s\n", "poll on a closed descriptor", poll(&p, 1, 0), evs((unsigned short)p.revents));
  close(fd);

  /* UDP */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = addr_of(local, 7605);
  bind(u, (struct sockaddr*)&ua, sizeof ua);
  ep = epoll_with(u, EPOLLIN, 13);
  show_epoll("udp, nothing", ep, 50);
  peer_do("UDP 7605 100");
  show_epoll("udp, a datagram arrived", ep, 1000);
  char ub[200];
  printf("%-50s %ld\n", "udp recv", (long)recv(u, ub, sizeof ub, 0));
  show_epoll("udp, read", ep, 50);
  show_poll("udp poll POLLOUT", u, POLLOUT, 0);
  close(ep);
  close(u);
  return 0;
}
