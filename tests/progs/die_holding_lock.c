/* A forked child killed while it holds xdpload's stack lock, in the middle
 * of a send on a connection it shares with its parent (the test seam
 * XL_TEST_DIE_HOLDING_LOCK=77 kills the process that sends 77 bytes, right
 * after it has taken the lock and named the socket).
 *
 *   die_holding_lock PEER_IP ECHO_PORT
 *   die_holding_lock accept LOCAL_IP PORT
 *   die_holding_lock burst LOCAL_IP PORT
 *
 * Two connections to the peer's echo server; the child sends 77 bytes on
 * the first and dies. Then the parent: the first connection must fail
 * with ECONNRESET (its state may be half changed), the second must still
 * echo, and a new connection must work: the stack goes on, nothing hangs.
 * With "accept" (XL_TEST_DIE_HOLDING_LOCK=-1: an accept() dies), the child
 * dies in accept() on the listener it shares: a listener has no
 * connection to reset, and the parent then accepts a connection from the
 * peer and echoes what it sends.
 * With "burst" (XL_TEST_DIE_HOLDING_LOCK=-2: the process that started the
 * stack dies inside a receive burst of more than one frame), the parent
 * binds a UDP socket and forks, then lets datagrams from the peer pile up
 * and dies taking them off the ring, holding the rest of the burst; the
 * child, once its parent is gone, reads what comes for a second and exits,
 * the family's last process (its exit line counts the frames the stack
 * still holds).
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

static int burst_case(const char* local, int port) {
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = addr_of(local, port);
  if (bind(u, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("bind: %s\n", en(errno));
    return 1;
  }
  const pid_t parent = getpid();
  pid_t child = fork();
  if (child == 0) {
    while (getppid() == parent) usleep(10000);
    struct timeval tv = {1, 0};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[2048];
    int got = 0;
    while (recv(u, buf, sizeof buf, 0) > 0) ++got;
    printf("child: its parent gone, it read %s\n", got > 0 ? "datagrams after" : "nothing");
    close(u);
    return 0;
  }
  printf("bound\n");
  sleep(2); /* (the seam kills this process in the first burst of several frames) */
  char buf[2048];
  recv(u, buf, sizeof buf, MSG_DONTWAIT);
  printf("parent: still alive\n");
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 4 && !strcmp(argv[1], "accept")) return accept_case(argv[2], atoi(argv[3]));
  if (argc == 4 && !strcmp(argv[1], "burst")) return burst_case(argv[2], atoi(argv[3]));
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
