/* cancel_sleepers: threads cancelled (pthread_cancel) while they block in a
 * socket call, as a program stops a worker it no longer needs. recv(),
 * accept(), poll() and epoll_wait() are cancellation points: the thread
 * ends there, and the program goes on using the same sockets. A
 * cancellation asked for before such a call takes effect at its start. Each thread
 * runs on a stack the program maps itself and unmaps once it has joined
 * the thread (pthread_attr_setstack): whatever a library kept of the
 * thread there is gone then, as it is when glibc frees a cached stack.
 *
 *   cancel_sleepers IP UDP_ECHO_PORT TCP_ECHO_PORT BRIDGE_PORT LISTEN_PORT
 *
 * IP runs a UDP and a TCP echo server (B), and on BRIDGE_PORT a relay that
 * connects back to our LISTEN_PORT for each connection it gets. Prints one
 * line per case; the test compares the output with and without the
 * preload.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STACK_BYTES (256 * 1024)
#define POLLS_CANCELLED 100

static struct sockaddr_in udp_echo, tcp_echo, bridge;

static void die(const char* what) {
  fprintf(stderr, "cancel_sleepers: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct sleeper {
  pthread_t thread;
  void* stack;
  int fd;
  const char* how;
};

static void* sleep_in(void* arg) {
  struct sleeper* s = arg;
  char buf[64];
  if (!strcmp(s->how, "recv")) {
    recv(s->fd, buf, sizeof buf, 0);
  } else if (!strcmp(s->how, "accept")) {
    accept(s->fd, NULL, NULL);
  } else if (!strcmp(s->how, "poll")) {
    struct pollfd p = {s->fd, POLLIN, 0};
    poll(&p, 1, -1);
  } else if (!strcmp(s->how, "epoll_wait")) {
    struct epoll_event ev;
    epoll_wait(s->fd, &ev, 1, -1);
  } else if (!strcmp(s->how, "pending send")) {
    // Cancelled before the call: the thread ends at send(), which sends
    // nothing (else "lost" comes back before the next "ping").
    pthread_cancel(pthread_self());
    send(s->fd, "lost", 4, 0);
  }
  return (void*)1;  // (not cancelled: reported)
}

static void start(struct sleeper* s, int fd, const char* how) {
  s->fd = fd;
  s->how = how;
  s->stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->stack == MAP_FAILED) die("mmap");
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstack(&a, s->stack, STACK_BYTES);
  if (pthread_create(&s->thread, &a, sleep_in, s)) die("pthread_create");
  pthread_attr_destroy(&a);
}

/* Joins the thread (cancelled, or woken by what it waited for), then
 * unmaps its stack. Returns "cancelled" or "returned". */
static const char* finish(struct sleeper* s) {
  void* r;
  pthread_join(s->thread, &r);
  munmap(s->stack, STACK_BYTES);
  return r == PTHREAD_CANCELED ? "cancelled" : "returned";
}

static const char* cancel(struct sleeper* s) {
  pause_ms(200);  // (asleep by then)
  pthread_cancel(s->thread);
  return finish(s);
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr*)&udp_echo, sizeof udp_echo)) die("connect udp");
  return fd;
}

/* One echo on fd (connected): what came back, or the error. */
static void echo(const char* label, int fd) {
  char buf[64];
  if (send(fd, "ping", 4, 0) != 4) {
    printf("%s: send: %s\n", label, strerror(errno));
    return;
  }
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) printf("%s: echo: %s\n", label, strerror(errno));
  else printf("%s: echo %.*s\n", label, (int)n, buf);
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: cancel_sleepers IP UDP_ECHO_PORT TCP_ECHO_PORT BRIDGE_PORT LISTEN_PORT\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  // (One malloc arena: a new arena made in the middle of the count would
  // add its own header to it.)
  mallopt(M_ARENA_MAX, 1);
  udp_echo.sin_family = tcp_echo.sin_family = AF_INET;
  inet_pton(AF_INET, argv[1], &udp_echo.sin_addr);
  tcp_echo.sin_addr = udp_echo.sin_addr;
  udp_echo.sin_port = htons(atoi(argv[2]));
  tcp_echo.sin_port = htons(atoi(argv[3]));
  bridge = tcp_echo;
  bridge.sin_port = htons(atoi(argv[4]));
  struct sleeper s, w;

  /* UDP recv(): the socket is used again once its sleeper is gone. */
  int u = udp_socket();
  start(&s, u, "recv");
  printf("udp recv: %s\n", cancel(&s));
  echo("udp recv, then", u);

  /* TCP recv() on a connection. */
  int t = socket(AF_INET, SOCK_STREAM, 0);
  if (t < 0 || connect(t, (struct sockaddr*)&tcp_echo, sizeof tcp_echo)) die("connect tcp");
  struct timeval tv = {3, 0};
  setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  start(&s, t, "recv");
  printf("tcp recv: %s\n", cancel(&s));
  echo("tcp recv, then", t);

  /* accept() on a listener: it listens on, and the next connection (made
   * back to it by B's relay) goes to the next accept(). */
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[5]))};
  if (l < 0 || bind(l, (struct sockaddr*)&any, sizeof any) || listen(l, 4)) die("listen");
  start(&s, l, "accept");
  printf("accept: %s\n", cancel(&s));
  int via = socket(AF_INET, SOCK_STREAM, 0);
  if (via < 0 || connect(via, (struct sockaddr*)&bridge, sizeof bridge)) die("connect bridge");
  struct pollfd lp = {l, POLLIN, 0};
  int c = poll(&lp, 1, 5000) == 1 ? accept(l, NULL, NULL) : -1;
  printf("accept, then: %s\n", c >= 0 ? "accepted" : "nothing to accept");
  if (c >= 0) close(c);
  close(via);
  close(l);

  /* poll() and epoll_wait() on a UDP socket. */
  start(&s, u, "poll");
  printf("poll: %s\n", cancel(&s));
  echo("poll, then", u);
  /* ...again and again: what a cancelled call had allocated is gone with
   * it (nothing unwinds a cancelled frame's C++ objects in a library built
   * without exceptions). */
  size_t heap_before = mallinfo2().uordblks;
  for (int i = 0; i < POLLS_CANCELLED; ++i) {
    start(&s, u, "poll");
    pause_ms(20);
    pthread_cancel(s.thread);
    finish(&s);
  }
  long grew = (long)(mallinfo2().uordblks - heap_before);
  printf("%d polls cancelled: heap %s\n", POLLS_CANCELLED, grew < 4096 ? "steady" : "grown");
  fprintf(stderr, "cancel_sleepers: the heap grew by %ld bytes over %d cancelled polls\n", grew,
          POLLS_CANCELLED);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = u};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev)) die("epoll");
  start(&s, ep, "epoll_wait");
  printf("epoll_wait: %s\n", cancel(&s));
  echo("epoll_wait, then", u);
  struct epoll_event got;
  printf("epoll_wait, then: %d event(s)\n", epoll_wait(ep, &got, 1, 0));
  close(ep);

  /* A cancellation asked for before a send() takes effect at its start. */
  start(&s, u, "pending send");
  printf("pending send: %s\n", finish(&s));
  echo("pending send, then", u);

  /* Two sleepers: the first waits on its own socket, the second is
   * cancelled; then the first is woken by its echo, and returns. */
  int u2 = udp_socket();
  start(&w, u2, "recv");
  pause_ms(100);
  start(&s, u, "recv");
  printf("second sleeper: %s\n", cancel(&s));
  send(u2, "wake", 4, 0);
  printf("first sleeper: %s\n", finish(&w));
  echo("both, then", u);
  echo("both, then (second socket)", u2);
  close(u2);
  close(u);
  close(t);
  printf("all done\n");
  return 0;
}
