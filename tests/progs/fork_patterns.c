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
 *   fork_patterns server inetd PORT N          accept, fork a child per
 *       connection that puts it on fds 0 and 1 and execs this program as
 *       `fork_patterns stdio-echo` (inetd's shape); the parent closes its copy.
 *   fork_patterns server epoll-shared PORT     one epoll set made before
 *       fork, with the listener in it: the child adds a UDP socket of its
 *       own (PORT + 1) to it; the parent, waiting on the set, accepts the
 *       connections and sees the child's socket ready, then lets the child
 *       answer the datagram (the set is one object in both processes).
 *   fork_patterns server killed-child PORT     accept, fork a child per
 *       connection that says its pid, then echoes (first) or reads nothing
 *       (second); the parent closes its copy and lives on. The client kills
 *       each child with SIGKILL and says how its connection ended.
 *   fork_patterns stdio-echo                   echoes lines from fd 0 to 1.
 *   fork_patterns client PATTERN IP PORT [N]   the other side of each (N:
 *       connections for accept-fork and inetd, workers for prefork: ten each).
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
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
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

/* Echoes lines read from `in` to `out`, each prefixed, until EOF (however
 * TCP cut them). */
static void echo_lines_to(int in, int out_fd, const char* who) {
  char buf[512];
  size_t have = 0;
  ssize_t n;
  while ((n = read(in, buf + have, sizeof buf - have)) > 0) {
    have += (size_t)n;
    char* start = buf;
    char* nl;
    while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
      char out[600];
      int m = snprintf(out, sizeof out, "%s: %.*s\n", who, (int)(nl - start), start);
      if (write(out_fd, out, (size_t)m) != m) die("write");
      start = nl + 1;
    }
    have -= (size_t)(start - buf);
    memmove(buf, start, have);
    if (have == sizeof buf) have = 0; /* a line too long: dropped */
  }
  if (n < 0) die("read");
}

static void echo_lines(int fd, const char* who) { echo_lines_to(fd, fd, who); }

static volatile sig_atomic_t g_stop = 0;
static void on_term(int sig) { (void)sig; g_stop = 1; }
/* Without SA_RESTART: a blocked accept() or pause() returns EINTR. */
static void catch_term(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

/* Accepts a connection on `l` and forks: the child (0 returned) has closed
 * its copy of the listener; *c is the connection in both. */
static pid_t accept_fork(int l, int* c) {
  *c = accept(l, NULL, NULL);
  if (*c < 0) die("accept");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) close(l);
  return pid;
}

/* accept-fork's and inetd's shape: accept, fork a child that serves the
 * connection with `serve` (and ends), the parent closes its copy; then
 * waits for the n children and says how many failed, after `label`. */
static int serve_forking(int port, int n, void (*serve)(int c), const char* label) {
  int l = listener(port);
  for (int i = 0; i < n; ++i) {
    int c;
    if (accept_fork(l, &c) == 0) {
      serve(c);
      _exit(0);
    }
    close(c);
  }
  int bad = 0, status;
  for (int i = 0; i < n; ++i)
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad;
  printf("%s done, %d failed\n", label, bad);
  return bad ? 1 : 0;
}

static void echo_child(int c) {
  echo_lines(c, "child");
  close(c);
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

static const char* g_self; /* this program, for inetd's exec */

/* inetd's child: the connection on fds 0 and 1, then this program again
 * as `stdio-echo`. */
static void exec_echo_child(int c) {
  if (dup2(c, 0) < 0 || dup2(c, 1) < 0) die("dup2");
  close(c);
  execl(g_self, g_self, "stdio-echo", (char*)NULL);
  die("exec");
}

static int serve_epoll_shared(int port) {
  int l = listener(port);
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0) die("epoll_ctl listener");
  int added[2], go[2];
  if (pipe(added) < 0 || pipe(go) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(l);
    close(added[0]);
    close(go[1]);
    int u = udp_socket(port + 1);
    /* The number the parent's listener has in the set: Linux tells the
     * two interests apart by their files. */
    if (u != l) {
      fprintf(stderr, "fork_patterns: the UDP socket is %d, not the listener's %d\n", u, l);
      _exit(1);
    }
    /* One shot: the parent sees it once, then the child reads it. */
    struct epoll_event uev = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 2};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, u, &uev) < 0) die("epoll_ctl udp (child)");
    if (write(added[1], "a", 1) != 1) die("pipe write");
    char c;
    if (read(go[0], &c, 1) != 1) die("pipe read");
    udp_answer(u, "child, after the parent saw it ready");
    _exit(0);
  }
  close(added[1]);
  close(go[0]);
  char c;
  if (read(added[0], &c, 1) != 1) die("pipe read (the child failed)");
  int accepted = 0, seen = 0;
  while (accepted < 2 || !seen) {
    struct epoll_event got[4];
    int k = epoll_wait(ep, got, 4, 20000);
    if (k < 0) die("epoll_wait");
    if (k == 0) {
      printf("epoll-shared: nothing in 20 s (accepted %d, child's socket seen %d)\n", accepted, seen);
      break;
    }
    for (int i = 0; i < k; ++i) {
      if (got[i].data.u32 == 1) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0) die("accept");
        if (write(fd, "accepted\n", 9) != 9) die("write");
        close(fd);
        ++accepted;
      } else if (got[i].data.u32 == 2 && !seen) {
        seen = 1;
        if (write(go[1], "g", 1) != 1) die("pipe write");
      } else {
        printf("epoll-shared: unexpected event data %u\n", got[i].data.u32);
      }
    }
  }
  int status;
  waitpid(pid, &status, 0);
  printf("epoll-shared: accepted %d, the child's socket seen ready through the shared set: %s, child %s\n",
         accepted, seen ? "yes" : "no", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
  return 0;
}

static int serve_killed_child(int port) {
  int l = listener(port);
  pid_t kids[2];
  for (int i = 0; i < 2; ++i) {
    int c;
    pid_t pid = accept_fork(l, &c);
    if (pid == 0) {
      char msg[32];
      int m = snprintf(msg, sizeof msg, "pid %d\n", (int)getpid());
      if (write(c, msg, (size_t)m) != m) die("write");
      if (i == 0) echo_lines(c, "child");
      for (;;) pause(); /* (the second reads nothing: its bytes stay unread) */
    }
    kids[i] = pid;
    close(c);
  }
  close(l);
  /* The parent lives on while its children are killed: it is their
   * family's survivor. */
  for (int i = 0; i < 2; ++i) {
    int status;
    if (waitpid(kids[i], &status, 0) < 0) die("waitpid");
    printf("child %d %s\n", i,
           WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? "killed by SIGKILL" : "ended otherwise");
  }
  sleep(2); /* (lives on a little: the connections end while it lives) */
  printf("killed-child: parent done\n");
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

/* Sends a datagram and prints the answer (resent once a second: the server
 * may not be reading yet). */
static void udp_exchange(const char* ip, int port, const char* label) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t r = -1;
  for (int tries = 0; tries < 10 && r < 0; ++tries) {
    sendto(fd, label, strlen(label), 0, (struct sockaddr*)&a, sizeof a);
    r = recv(fd, buf, sizeof buf - 1, 0);
  }
  if (r < 0) printf("%s: no answer\n", label);
  else printf("%s: %.*s\n", label, (int)r, buf);
  close(fd);
}

static double mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Connection i of killed-child: learns the child's pid, echoes a line
 * (i == 0) or sends bytes the child never reads (i == 1), kills the child
 * with SIGKILL (client and server share the host's pid namespace) and says
 * how the connection ended: EOF after the bytes sent before (Linux's close
 * of an idle connection) or a reset (its close with unread bytes). The
 * issue asks for the end within a second; the time is on stderr. */
static void killed_child_client(const char* ip, int port, int i) {
  int fd = dial(ip, port);
  char buf[256];
  size_t have = 0;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (!memchr(buf, '\n', have)) {
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r <= 0) {
      printf("connection %d: no pid line\n", i);
      close(fd);
      return;
    }
    have += (size_t)r;
  }
  int pid = atoi(buf + 4);
  if (i == 0) {
    if (write(fd, "hello\n", 6) != 6) die("write");
    have = 0;
    while (!memchr(buf, '\n', have)) {
      ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
      if (r <= 0) break;
      have += (size_t)r;
    }
    printf("connection %d: %.*s", i, (int)have, buf);
  } else {
    if (write(fd, "never read\n", 11) != 11) die("write");
    /* Acknowledged: on the child's side, unread. */
    int unacked = 1;
    for (int tries = 0; tries < 500 && unacked; ++tries) {
      if (ioctl(fd, SIOCOUTQ, &unacked) < 0) die("SIOCOUTQ");
      if (unacked) usleep(10000);
    }
  }
  double t0 = mono();
  if (kill(pid, SIGKILL) < 0) die("kill");
  tv.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t r = read(fd, buf, sizeof buf);
  double took = mono() - t0;
  const char* how = r == 0 ? "EOF" : r > 0 ? "more bytes" : errno == ECONNRESET ? "reset" : strerror(errno);
  fprintf(stderr, "connection %d: ended (%s) %.3f s after the kill\n", i, how, took);
  printf("connection %d: after SIGKILL of its child: %s%s\n", i, how,
         r <= 0 && (errno == ECONNRESET || r == 0) ? (took < 1.0 ? " within a second" : " LATER than a second") : "");
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
  } else if (!strcmp(pattern, "inetd")) {
    for (int i = 0; i < n; ++i) {
      char label[32];
      snprintf(label, sizeof label, "connection %d", i);
      echo_client(ip, port, label, 3);
    }
  } else if (!strcmp(pattern, "epoll-shared")) {
    for (int i = 0; i < 2; ++i) {
      char label[32];
      snprintf(label, sizeof label, "connection %d", i);
      int fd = dial(ip, port);
      read_all(fd, label);
      close(fd);
      if (i == 0) udp_exchange(ip, port + 1, "datagram");
    }
  } else if (!strcmp(pattern, "killed-child")) {
    for (int i = 0; i < 2; ++i) killed_child_client(ip, port, i);
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
  g_self = argv[0];
  if (argc == 2 && !strcmp(argv[1], "stdio-echo")) {
    echo_lines_to(0, 1, "exec'd echo");
    return 0;
  }
  if (argc >= 4 && !strcmp(argv[1], "server")) {
    const char* p = argv[2];
    int port = atoi(argv[3]);
    int n = argc > 4 ? atoi(argv[4]) : 4;
    if (!strcmp(p, "accept-fork")) return serve_forking(port, n, echo_child, "children");
    if (!strcmp(p, "prefork")) return serve_prefork(port, n);
    if (!strcmp(p, "udp-turns")) return serve_udp_turns(port);
    if (!strcmp(p, "parent-exits")) return serve_parent_exits(port);
    if (!strcmp(p, "threaded")) return serve_threaded(port);
    if (!strcmp(p, "inetd")) return serve_forking(port, n, exec_echo_child, "inetd children");
    if (!strcmp(p, "epoll-shared")) return serve_epoll_shared(port);
    if (!strcmp(p, "killed-child")) return serve_killed_child(port);
  } else if (argc >= 5 && !strcmp(argv[1], "client")) {
    return client(argv[2], argv[3], atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 4);
  }
  fprintf(stderr, "usage: see the comment at the top of tests/progs/fork_patterns.c\n");
  return 2;
}
