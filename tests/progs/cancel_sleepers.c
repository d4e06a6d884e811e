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

#include "sleepers.h"

#define POLLS_CANCELLED 100

static struct sockaddr_in tcp_echo;

static void* sleep_in(void* arg) {
  struct sleeper* s = arg;
  if (!strcmp(s->how, "pending send")) {
    // Cancelled before the call: the thread ends at send(), which sends
    // nothing (else "lost" comes back before the next "ping").
    pthread_cancel(pthread_self());
    send(s->fd, "lost", 4, 0);
  } else {
    block_in(s);
  }
  return (void*)1;  // (not cancelled: reported)
}

static void start(struct sleeper* s, int fd, const char* how) { start_sleeper(s, fd, how, sleep_in); }

/* Joins the thread (cancelled, or woken by what it waited for), then
 * unmaps its stack. Returns "cancelled" or "returned". */
static const char* finish(struct sleeper* s) {
  void* r = join_sleeper(s);
  return r == PTHREAD_CANCELED ? "cancelled" : "returned";
}

static const char* cancel(struct sleeper* s) {
  pause_ms(200);  // (asleep by then)
  pthread_cancel(s->thread);
  return finish(s);
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
  int l = listener(atoi(argv[5]));
  start(&s, l, "accept");
  printf("accept: %s\n", cancel(&s));
  accept_through_bridge("accept, then", l);

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
  /* The same with 24 entries: past what poll() keeps off the heap. */
  heap_before = mallinfo2().uordblks;
  for (int i = 0; i < POLLS_CANCELLED; ++i) {
    start(&s, u, "wide poll");
    pause_ms(20);
    pthread_cancel(s.thread);
    finish(&s);
  }
  grew = (long)(mallinfo2().uordblks - heap_before);
  printf("%d wide polls cancelled: heap %s\n", POLLS_CANCELLED, grew < 4096 ? "steady" : "grown");
  fprintf(stderr, "cancel_sleepers: the heap grew by %ld bytes over %d cancelled wide polls\n",
          grew, POLLS_CANCELLED);
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
