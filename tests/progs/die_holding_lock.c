/* A forked child killed while it holds xdpload's stack lock, in the middle
 * of a send on a connection it shares with its parent (the test seam
 * XL_TEST_DIE_HOLDING_LOCK=77 kills the process that sends 77 bytes, right
 * after it has taken the lock and named the socket).
 *
 *   die_holding_lock PEER_IP ECHO_PORT
 *   die_holding_lock accept LOCAL_IP PORT
 *
 * Two connections to the peer's echo server; the child sends 77 bytes on
 * the first and dies. Then the parent: the first connection must fail
 * with ECONNRESET (its state may be half changed), the second must still
 * echo, and a new connection must work: the stack goes on, nothing hangs.
 * With "accept" (XL_TEST_DIE_HOLDING_LOCK=-1: an accept() dies), the child
 * dies in accept() on the listener it shares: a listener has no
 * connection to reset, and the parent then accepts a connection from the
 * peer and echoes what it sends.
 */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "parity.h"

static struct sockaddr_in echo_peer;

static int connected(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&echo_peer, sizeof echo_peer) != 0) {
    printf("connect: %s\n", en(errno));
    exit(1);
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static const char* echo(int fd, const char* msg) {
  size_t n = strlen(msg);
  if (send(fd, msg, n, MSG_NOSIGNAL) != (ssize_t)n) return en(errno);
  char back[64];
  ssize_t got = recv(fd, back, n, MSG_WAITALL);
  if (got < 0) return en(errno);
  return got == (ssize_t)n && !memcmp(back, msg, n) ? "echoed" : "wrong bytes";
}

static int accept_case(const char* local, int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of(local, port);
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 8) != 0) {
    printf("listen: %s\n", en(errno));
    return 1;
  }
  pid_t child = fork();
  if (child == 0) {
    accept(l, NULL, NULL);
    _exit(0);
  }
  unsetenv("XL_TEST_DIE_HOLDING_LOCK"); /* (the seam is the child's: read at its first use) */
  int status = 0;
  waitpid(child, &status, 0);
  printf("child: %s\n", WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
  printf("listening\n");
  struct timeval tv = {10, 0};
  setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int c = accept(l, NULL, NULL);
  if (c < 0) {
    printf("accept after: %s\n", en(errno));
    return 1;
  }
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[2];
  ssize_t n = recv(c, buf, sizeof buf, MSG_WAITALL);
  if (n > 0) send(c, buf, (size_t)n, 0);
  printf("accept after: %s\n", n == 2 ? "accepted and echoed" : "nothing read");
  close(c);
  close(l);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 4 && !strcmp(argv[1], "accept")) return accept_case(argv[2], atoi(argv[3]));
  if (argc != 3) return 2;
  echo_peer = addr_of(argv[1], atoi(argv[2]));
  int first = connected(), second = connected();
  printf("before: first %s, second %s\n", echo(first, "one"), echo(second, "two"));
  pid_t child = fork();
  if (child == 0) {
    char buf[77];
    memset(buf, 'k', sizeof buf);
    send(first, buf, sizeof buf, 0);
    _exit(0); /* (without the seam: the bytes went; the echo is read below) */
  }
  int status = 0;
  waitpid(child, &status, 0);
  printf("child: %s\n", WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
  printf("after: first %s\n", echo(first, "three"));
  printf("after: second %s\n", echo(second, "four"));
  int third = connected();
  printf("after: a new connection %s\n", echo(third, "five"));
  close(first);
  close(second);
  close(third);
  return 0;
}
