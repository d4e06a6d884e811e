/* fork_stress: a family's children killed at any moment, or forked and
 * ended by the thousand.
 *
 *   fork_stress PEER_IP PORT kill ROUNDS
 *
 * The parent keeps a connection to an echo server; each round it forks a
 * child that opens a connection of its own and echoes on it as fast as it
 * can (so that it is often inside the stack, holding its lock, when it
 * dies), while the parent echoes on its own connection for a random few
 * milliseconds, then kills the child with SIGKILL and reaps it. Every echo
 * of the parent must come back whole within 5 s: a parent hung by a dead
 * child's lock or corrupted by its half-done work fails. At the end the
 * parent closes its connection and exits; the test reads what the stack
 * still holds from the exit line.
 *
 *   fork_stress PEER_IP PORT cycles N
 *   fork_stress PEER_IP PORT cycles-own N
 *
 * N times: fork a child that echoes once on the connection it inherited
 * and ends (exit() and _exit() in turn; with cycles-own, after opening a
 * connection of its own, left open for its end to close); the parent
 * echoes after each. Nothing may leak: the test compares what the stack
 * holds at exit after 10 and after 1,000 cycles.
 *
 *   fork_stress PEER_IP PORT cycles-quick N
 *
 * As cycles, but the child ends at once without a socket call: the shape
 * of a fork before exec, where the child's own threads of the library are
 * still starting when it ends (none of them may be inside the stack then).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int dial(const char* ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* One echo of n bytes: 0, or -1 (with the reason on stderr). */
static int echo(int fd, int n, unsigned seed) {
  char out[4096] = {0}, in[4096];
  for (int i = 0; i < n; ++i) out[i] = (char)(seed + (unsigned)i * 7u);
  if (send(fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
    fprintf(stderr, "send: %s\n", strerror(errno));
    return -1;
  }
  int got = 0;
  while (got < n) {
    ssize_t r = recv(fd, in + got, (size_t)(n - got), 0);
    if (r <= 0) {
      fprintf(stderr, "recv: %s\n", r == 0 ? "EOF" : strerror(errno));
      return -1;
    }
    got += (int)r;
  }
  if (memcmp(in, out, (size_t)n) != 0) {
    fprintf(stderr, "echo: wrong bytes\n");
    return -1;
  }
  return 0;
}

static long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* own: 0 echo and end; 1 echo, dial and end; 2 end at once. */
static int cycles(int c0, const char* ip, int port, int n, int own) {
  long failures = 0;
  for (int i = 0; i < n && !failures; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      int rc = own == 2 ? 0 : echo(c0, 100, (unsigned)i) == 0 ? 0 : 1;
      if (own == 1 && dial(ip, port) < 0) rc = 1; /* a connection of its own, left open */
      if (i % 2) _exit(rc);
      exit(rc);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "child %d failed\n", i);
      ++failures;
    }
    if (echo(c0, 200, (unsigned)i) != 0) ++failures;
  }
  close(c0);
  printf("cycles %d, failures %ld\n", n, failures);
  return failures ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* ip = argv[1];
  int port = atoi(argv[2]), rounds = atoi(argv[4]);
  int c0 = dial(ip, port);
  if (c0 < 0) {
    perror("connect");
    return 1;
  }
  if (!strcmp(argv[3], "cycles")) return cycles(c0, ip, port, rounds, 0);
  if (!strcmp(argv[3], "cycles-own")) return cycles(c0, ip, port, rounds, 1);
  if (!strcmp(argv[3], "cycles-quick")) return cycles(c0, ip, port, rounds, 2);
  srand((unsigned)getpid());
  long echoes = 0, failures = 0;
  for (int round = 0; round < rounds && failures == 0; ++round) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      int c1 = dial(ip, port);
      for (unsigned i = 0; c1 >= 0; ++i)
        if (echo(c1, 1 + (int)(i % 4000), i) != 0) break;
      pause();
      _exit(0);
    }
    long until = now_us() + 500 + rand() % 5000;
    while (now_us() < until) {
      if (echo(c0, 1 + rand() % 4000, (unsigned)echoes) != 0) {
        ++failures;
        break;
      }
      ++echoes;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  /* After the last kill, the parent's connection still works. */
  if (failures == 0 && echo(c0, 1000, 42) != 0) ++failures;
  close(c0);
  printf("rounds %d, parent echoes %ld, failures %ld\n", rounds, echoes, failures);
  return failures ? 1 : 0;
}
