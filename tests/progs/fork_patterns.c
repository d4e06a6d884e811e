/* fork_patterns: the shapes in which servers fork, as a server (run in A,
 * with or without xdpload) and its client (run in B, on the kernel). The
 * client prints what it saw; the test compares the client's transcript with
 * and without the preload, and the server's own report.
 *
 *   fork_patterns server accept-fork PORT N    accept, fork a child per
 *       connection that echoes lines until EOF; the parent closes its copy.
 *   fork_patterns server prefork PORT W        listen, fork W workers that
 *       accept (blocking) and answer "worker K\n", then close; on SIGTERM
 *       the parent stops them and prints how many each served.
 *   fork_patterns server udp-turns PORT        one UDP socket: the parent
 *       answers the first datagram, a child the second, the parent the third.
 *   fork_patterns server parent-exits PORT     listen, fork; the parent
 *       exits at once, the child accepts one connection and echoes.
 *   fork_patterns server threaded PORT         a second thread polls a UDP
 *       socket of its own while the main thread forks; the child accepts one
 *       connection and echoes.
 *   fork_patterns client PATTERN IP PORT [N]   the other side of each (N:
 *       connections for accept-fork, workers for prefork: ten each).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 16

static void die(const char* what) {
  fprintf(stderr, "fork_patterns: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
  if (listen(fd, 64) < 0) die("listen");
  printf("listening\n");
  return fd;
}

/* Echoes lines, each prefixed, until EOF (however TCP cut them). */
static void echo_lines(int fd, const char* who) {
  char buf[512];
  size_t have = 0;
  ssize_t n;
  while ((n = read(fd, buf + have, sizeof buf - have)) > 0) {
    have += (size_t)n;
    char* start = buf;
    char* nl;
    while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
      char out[600];
      int m = snprintf(out, sizeof out, "%s: %.*s\n", who, (int)(nl - start), start);
      if (write(fd, out, (size_t)m) != m) die("write");
      start = nl + 1;
    }
    have -= (size_t)(start - buf);
    memmove(buf, start, have);
    if (have == sizeof buf) have = 0; /* a line too long: dropped */
  }
  if (n < 0) die("read");
}

static volatile sig_atomic_t g_stop = 0;
static void on_term(int sig) { (void)sig; g_stop = 1; }
/* Without SA_RESTART: a blocked accept() or pause() returns EINTR. */
static void catch_term(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

static int serve_accept_fork(int port, int n) {
  int l = listener(port);
  for (int i = 0; i < n; ++i) {
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(l);
      echo_lines(c, "child");
      close(c);
      _exit(0);
    }
    close(c);
  }
  int bad = 0, status;
  for (int i = 0; i < n; ++i)
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
  printf("children done, %d failed\n", bad);
  return bad ? 1 : 0;
}

static int serve_prefork(int port, int workers) {
  if (workers > MAX_WORKERS) workers = MAX_WORKERS;
  int l = listener(port);
  int pipes[MAX_WORKERS][2];
  pid_t pids[MAX_WORKERS];
  for (int w = 0; w < workers; ++w) {
    if (pipe(pipes[w]) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      catch_term();
      int served = 0;
      while (!g_stop) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
          if (errno == EINTR) continue;
          die("accept");
        }
        char msg[32];
        int m = snprintf(msg, sizeof msg, "worker %d\n", w);
        if (write(c, msg, (size_t)m) != m) die("write");
        close(c);
        ++served;
        /* Tell the parent at once: a SIGTERM may end the loop any time. */
        if (write(pipes[w][1], "x", 1) != 1) die("pipe write");
      }
      _exit(0);
    }
    pids[w] = pid;
    close(pipes[w][1]);
  }
  close(l);
  catch_term();
  printf("workers ready\n");
  while (!g_stop) pause();
  int total = 0;
  for (int w = 0; w < workers; ++w) {
    kill(pids[w], SIGTERM);
    waitpid(pids[w], NULL, 0);
    char buf[256];
    ssize_t r;
    int count = 0;
    while ((r = read(pipes[w][0], buf, sizeof buf)) > 0) count += (int)r;
    printf("worker %d served %d\n", w, count);
    total += count;
  }
  printf("served %d\n", total);
  return 0;
}

static int udp_socket(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
  return fd;
}

static void udp_answer(int fd, const char* who) {
  char buf[256];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&from, &fl);
  if (n < 0) die("recvfrom");
  char out[300];
  int m = snprintf(out, sizeof out, "%s: %.*s", who, (int)n, buf);
  if (sendto(fd, out, (size_t)m, 0, (struct sockaddr*)&from, fl) != m) die("sendto");
}

static int serve_udp_turns(int port) {
  int fd = udp_socket(port);
  printf("listening\n");
  udp_answer(fd, "parent");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    udp_answer(fd, "child");
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  udp_answer(fd, "parent");
  printf("udp turns done, child %s\n",
         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
  return 0;
}

static int serve_parent_exits(int port) {
  int l = listener(port);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid > 0) {
    printf("parent exits, child %d serves\n", (int)pid);
    return 0;
  }
  int c = accept(l, NULL, NULL);
  if (c < 0) die("accept");
  close(l);
  echo_lines(c, "orphan");
  close(c);
  return 0;
}

static void* spin_udp(void* arg) {
  int fd = *(int*)arg;
  struct pollfd p = {fd, POLLIN, 0};
  for (;;) poll(&p, 1, 1);
  return NULL;
}

static int serve_threaded(int port) {
  int l = listener(port);
  static int ufd;
  ufd = udp_socket(port + 1);
  pthread_t t;
  if (pthread_create(&t, NULL, spin_udp, &ufd) != 0) die("pthread_create");
  usleep(20000);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    echo_lines(c, "threaded child");
    close(c);
    _exit(0);
  }
  close(l);
  int status;
  waitpid(pid, &status, 0);
  printf("threaded child %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
  return 0;
}

/* ---- client ---- */

static int dial(const char* ip, int port) {
  for (int tries = 0; tries < 100; ++tries) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) == 0) return fd;
    close(fd);
    usleep(50000);
  }
  die("connect");
  return -1;
}

/* Reads until EOF (or 5 s of silence), prints what came. */
static void read_all(int fd, const char* label) {
  char buf[4096];
  size_t have = 0;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r == 0) break;
    if (r < 0) {
      printf("%s: no EOF (%s)\n", label, strerror(errno));
      break;
    }
    have += (size_t)r;
  }
  buf[have] = 0;
  printf("%s: %s", label, buf);
  if (have && buf[have - 1] != '\n') printf("\n");
}

static void echo_client(const char* ip, int port, const char* label, int lines) {
  int fd = dial(ip, port);
  for (int i = 0; i < lines; ++i) {
    char msg[64];
    int m = snprintf(msg, sizeof msg, "line %d\n", i);
    if (write(fd, msg, (size_t)m) != m) die("write");
    usleep(10000);
  }
  shutdown(fd, SHUT_WR);
  read_all(fd, label);
  close(fd);
}

static int client(const char* pattern, const char* ip, int port, int n) {
  if (!strcmp(pattern, "accept-fork")) {
    for (int i = 0; i < n; ++i) {
      char label[32];
      snprintf(label, sizeof label, "connection %d", i);
      echo_client(ip, port, label, 3);
    }
  } else if (!strcmp(pattern, "prefork")) {
    /* Ten connections per worker. */
    int ok = 0, conns = n * 10;
    for (int i = 0; i < conns; ++i) {
      int fd = dial(ip, port);
      char buf[64] = {0};
      ssize_t r, have = 0;
      struct timeval tv = {5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      while ((r = read(fd, buf + have, sizeof buf - 1 - (size_t)have)) > 0) have += r;
      if (r == 0 && !strncmp(buf, "worker ", 7)) ++ok;
      else printf("connection %d: got '%s' (%s)\n", i, buf, r < 0 ? strerror(errno) : "EOF");
      close(fd);
    }
    printf("prefork: %d of %d answered once, then EOF\n", ok, conns);
  } else if (!strcmp(pattern, "udp-turns")) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 3; ++i) {
      char msg[32], buf[256];
      int m = snprintf(msg, sizeof msg, "datagram %d", i);
      ssize_t r = -1;
      /* The server may not be reading yet: resend once a second. */
      for (int tries = 0; tries < 5 && r < 0; ++tries) {
        sendto(fd, msg, (size_t)m, 0, (struct sockaddr*)&a, sizeof a);
        tv.tv_sec = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        r = recv(fd, buf, sizeof buf - 1, 0);
      }
      if (r < 0) printf("datagram %d: no answer\n", i);
      else printf("datagram %d: %.*s\n", i, (int)r, buf);
    }
  } else if (!strcmp(pattern, "parent-exits")) {
    echo_client(ip, port, "orphan connection", 3);
  } else if (!strcmp(pattern, "threaded")) {
    echo_client(ip, port, "threaded connection", 3);
  } else {
    fprintf(stderr, "unknown pattern %s\n", pattern);
    return 2;
  }
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 4 && !strcmp(argv[1], "server")) {
    const char* p = argv[2];
    int port = atoi(argv[3]);
    int n = argc > 4 ? atoi(argv[4]) : 4;
    if (!strcmp(p, "accept-fork")) return serve_accept_fork(port, n);
    if (!strcmp(p, "prefork")) return serve_prefork(port, n);
    if (!strcmp(p, "udp-turns")) return serve_udp_turns(port);
    if (!strcmp(p, "parent-exits")) return serve_parent_exits(port);
    if (!strcmp(p, "threaded")) return serve_threaded(port);
  } else if (argc >= 5 && !strcmp(argv[1], "client")) {
    return client(argv[2], argv[3], atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 4);
  }
  fprintf(stderr, "usage: see the comment at the top of tests/progs/fork_patterns.c\n");
  return 2;
}
