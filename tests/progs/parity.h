/* What the parity programs (errno_parity, mux_parity) share: errno names,
 * addresses, a TCP connection to the peer, short sleeps. Each program sets
 * `peer` from its command line. */
#pragma once
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const char* peer;

/* errno's name ("ECONNREFUSED"), the same in every run. */
static const char* en(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "?";
}

static struct sockaddr_in addr_of(const char* ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

/* A msghdr over one buffer, with a control buffer (NULL: none). */
static __attribute__((unused)) void msg_over(struct msghdr* m, struct iovec* iov, void* buf,
                                             size_t len, void* control, size_t controllen) {
  iov->iov_base = buf;
  iov->iov_len = len;
  memset(m, 0, sizeof *m);
  m->msg_iov = iov;
  m->msg_iovlen = 1;
  m->msg_control = control;
  m->msg_controllen = controllen;
}

/* A TCP connection to the peer's port; exits if there is none (setup). */
static __attribute__((unused)) int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = addr_of(peer, port);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("setup: connect to %d failed: %s\n", port, en(errno));
    exit(1);
  }
  return fd;
}

static __attribute__((unused)) void msleep(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
