// An epoll set made after a fork, watching a socket that the child then
// moves between the stack and the kernel: the set is in the parent alone,
// and the change happens in the child.
//
//   fork_epoll_handover exec IP PORT
//       connects to IP:PORT (a server that sends "hello" a second later),
//       forks; the child execs sleep(1), which inherits the connection; the
//       parent watches it (edge-triggered, for input) and prints what its
//       epoll_wait reported: "readable hello" on Linux.
//   fork_epoll_handover exec-poll|exec-select|exec-nested IP PORT
//       the same, the parent asleep in poll() or select() on the set's
//       descriptor, or in epoll_wait on a second set that holds the first,
//       before it asks the first set (without waiting) what is ready.
//   fork_epoll_handover to-stack IP PORT
//       the parent watches a bound, unconnected TCP socket (level-triggered,
//       for input, output and peer shutdown); the child connects it to
//       IP:PORT (a server that sends nothing). Prints the events the
//       parent's epoll_wait then reported for it: "OUT" on Linux, where the
//       unconnected socket had reported HUP.
//
// Under xdpload, in the first the exec hands the connection from the stack
// to the kernel in the child (the set must start watching the kernel
// socket, which the child cannot do: the set's descriptor is not in its
// table; a sleeper on the set's descriptor from outside must make the
// change once woken, and an outer set must make its inner set's: which
// wake-up comes first, the one the change sends or the child's departure,
// is not told apart); in the second the socket joins the stack there (the set must
// stop watching the kernel socket, which would go on reporting HUP).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void print_events(uint32_t ev) {
  const struct {
    uint32_t bit;
    const char* name;
  } names[] = {{EPOLLIN, "IN"}, {EPOLLOUT, "OUT"}, {EPOLLRDHUP, "RDHUP"}, {EPOLLHUP, "HUP"}, {EPOLLERR, "ERR"}};
  const char* sep = "";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (ev & names[i].bit) {
      printf("%s%s", sep, names[i].name);
      sep = " ";
    }
  printf("\n");
}

int main(int argc, char** argv) {
  const char* how = argc == 4 ? argv[1] : "";
  const int exec_case = !strncmp(how, "exec", 4);
  if (!(exec_case && (!strcmp(how, "exec") || !strcmp(how, "exec-poll") || !strcmp(how, "exec-select") ||
                      !strcmp(how, "exec-nested"))) &&
      strcmp(how, "to-stack")) {
    fprintf(stderr, "usage: see the comment at the top of fork_epoll_handover.c\n");
    return 2;
  }
  struct sockaddr_in peer = {.sin_family = AF_INET};
  inet_pton(AF_INET, argv[2], &peer.sin_addr);
  peer.sin_port = htons((uint16_t)atoi(argv[3]));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (exec_case) {
    if (connect(s, (struct sockaddr*)&peer, sizeof peer)) die("connect");
  } else {
    // Bound before the fork: under xdpload the stack is then up and shared
    // with the child, which connects through it.
    struct sockaddr_in any = {.sin_family = AF_INET};
    if (bind(s, (struct sockaddr*)&any, sizeof any)) die("bind");
  }
  int go[2], connected[2], finish[2];
  if (pipe(go) || pipe(connected) || pipe(finish)) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  char c;
  if (child == 0) {
    if (read(go[0], &c, 1) != 1) _exit(1);
    usleep(300000);  // (exec: the parent is asleep in epoll_wait by now)
    if (exec_case) {
      // The new program inherits the connection (no FD_CLOEXEC).
      execl("/bin/sleep", "sleep", "1", (char*)NULL);
      die("child: exec");
    }
    if (connect(s, (struct sockaddr*)&peer, sizeof peer)) die("child: connect");
    if (write(connected[1], "c", 1) != 1) _exit(1);
    if (read(finish[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  // The set is made after the fork: the child does not have it.
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = exec_case ? EPOLLIN | EPOLLET : EPOLLIN | EPOLLOUT | EPOLLRDHUP};
  ev.data.u64 = 42;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev)) die("epoll_ctl");
  struct epoll_event out[4];
  if (exec_case) {
    // Asleep until the server's bytes come, a second after the connect.
    int n;
    if (!strcmp(how, "exec")) {
      if (write(go[1], "g", 1) != 1) die("write");
      n = epoll_wait(ep, out, 4, 5000);
    } else {
      int woken;
      if (!strcmp(how, "exec-poll")) {
        struct pollfd p = {.fd = ep, .events = POLLIN};
        if (write(go[1], "g", 1) != 1) die("write");
        woken = poll(&p, 1, 5000);
      } else if (!strcmp(how, "exec-select")) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(ep, &r);
        struct timeval tv = {.tv_sec = 5};
        if (write(go[1], "g", 1) != 1) die("write");
        woken = select(ep + 1, &r, NULL, NULL, &tv);
      } else {
        int outer = epoll_create1(0);
        struct epoll_event oev = {.events = EPOLLIN};
        if (outer < 0 || epoll_ctl(outer, EPOLL_CTL_ADD, ep, &oev)) die("outer set");
        if (write(go[1], "g", 1) != 1) die("write");
        woken = epoll_wait(outer, &oev, 1, 5000);
      }
      if (woken < 0) die("wait");
      n = woken ? epoll_wait(ep, out, 4, 0) : 0;
    }
    if (n == 0) {
      printf("nothing reported in 5 s\n");
    } else if (n == 1 && out[0].data.u64 == 42 && (out[0].events & EPOLLIN)) {
      char buf[16] = {0};
      ssize_t got = read(s, buf, sizeof buf - 1);
      printf("readable %s\n", got > 0 ? buf : "(nothing read)");
    } else {
      printf("%d events, the first: ", n);
      print_events(n > 0 ? out[0].events : 0);
    }
  } else {
    if (write(go[1], "g", 1) != 1 || read(connected[0], &c, 1) != 1) die("pipes");
    int n = epoll_wait(ep, out, 4, 2000);
    if (n != 1 || out[0].data.u64 != 42) {
      printf("%d events after the connect\n", n);
    } else {
      print_events(out[0].events);
    }
  }
  if (write(finish[1], "f", 1) != 1) die("write");
  int status;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
