/* What the programs of threads that leave blocking calls abnormally share
 * (cancel_sleepers: pthread_cancel; jump_sleepers: a handler's siglongjmp):
 * the UDP echo peer, a connected socket to it, one echo, short sleeps, and
 * threads that block in a call on a stack the program maps itself and
 * unmaps once it has joined them (whatever a library kept of the thread
 * there is gone then, as when glibc frees a cached stack). Each program
 * sets `udp_echo` from its command line. */
#pragma once
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in udp_echo;
/* B's relay: each connection to it connects back to our listener. */
static struct sockaddr_in bridge;

static void die(const char* what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
  exit(1);
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A UDP socket connected to the echo peer, receives timed out at 3 s. */
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

#define STACK_BYTES (256 * 1024)

struct sleeper {
  pthread_t thread;
  void* stack;
  int fd;
  const char* how;
};

/* Blocks in the call s->how names ("recv..." , "accept", "poll", "wide
 * poll", "epoll_wait") on s->fd. False: no such call. */
static int block_in(struct sleeper* s) {
  char buf[64];
  if (!strncmp(s->how, "recv", 4)) {
    recv(s->fd, buf, sizeof buf, 0);
  } else if (!strcmp(s->how, "accept")) {
    accept(s->fd, NULL, NULL);
  } else if (!strcmp(s->how, "poll")) {
    struct pollfd p = {s->fd, POLLIN, 0};
    poll(&p, 1, -1);
  } else if (!strcmp(s->how, "wide poll")) {
    /* More entries than poll() keeps without the heap (the same socket
     * 24 times). */
    struct pollfd p[24];
    for (int i = 0; i < 24; ++i) p[i] = (struct pollfd){s->fd, POLLIN, 0};
    poll(p, 24, -1);
  } else if (!strcmp(s->how, "epoll_wait")) {
    struct epoll_event ev;
    epoll_wait(s->fd, &ev, 1, -1);
  } else {
    return 0;
  }
  return 1;
}

/* Starts fn(s) on a stack of its own. */
static void start_sleeper(struct sleeper* s, int fd, const char* how, void* (*fn)(void*)) {
  s->fd = fd;
  s->how = how;
  s->stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->stack == MAP_FAILED) die("mmap");
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstack(&a, s->stack, STACK_BYTES);
  if (pthread_create(&s->thread, &a, fn, s)) die("pthread_create");
  pthread_attr_destroy(&a);
}

/* Joins the thread, unmaps its stack, returns what it returned. */
static void* join_sleeper(struct sleeper* s) {
  void* r;
  pthread_join(s->thread, &r);
  munmap(s->stack, STACK_BYTES);
  return r;
}

/* A TCP listener on `port`. */
static int listener(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (l < 0 || bind(l, (struct sockaddr*)&any, sizeof any) || listen(l, 4)) die("listen");
  return l;
}

/* A connection made back to listener l through the relay: accepted within
 * 5 s or not (printed under `label`); then both ends and l are closed. */
static void accept_bridged(const char* label, int via, int l);
static void accept_through_bridge(const char* label, int l) {
  int via = socket(AF_INET, SOCK_STREAM, 0);
  if (via < 0 || connect(via, (struct sockaddr*)&bridge, sizeof bridge)) die("connect bridge");
  accept_bridged(label, via, l);
}

/* The same, once `via` is connected to the relay. */
static void accept_bridged(const char* label, int via, int l) {
  struct pollfd lp = {l, POLLIN, 0};
  int c = poll(&lp, 1, 5000) == 1 ? accept(l, NULL, NULL) : -1;
  printf("%s: %s\n", label, c >= 0 ? "accepted" : "nothing to accept");
  if (c >= 0) close(c);
  close(via);
  close(l);
}
