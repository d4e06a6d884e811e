/* fork_child: what a forked child of an xdpload process may do.
 *
 *   fork_child PEER_IP PORT use     connect (accelerated), fork; the child
 *       does pipe I/O (kernel only), an echo round on the inherited socket
 *       (which works as on the kernel: the stack is the family's), closes
 *       it; the parent's socket still works afterwards.
 *   fork_child PEER_IP PORT hold    connect, fork a child that sleeps 30 s,
 *       print "ready" and sleep (the test kills the parent, then the child,
 *       with SIGKILL).
 *   fork_child PEER_IP PORT udp-kick UDP_PORT   a connected UDP socket to
 *       an echo at PEER_IP:UDP_PORT, one round, fork a child that sends a
 *       datagram on it and dies by SIGKILL; the parent must get the echo of
 *       the dead child's datagram (XL_TEST_CHILD_DIES_IN_KICK makes an
 *       xdpload child die in the kick that sends it, before the system
 *       call: a child's frames wait on its own tx ring). The parent spins
 *       for the echo (3 s at most).
 *   fork_child PEER_IP PORT vfork-exit   connect, vfork a child that calls
 *       exit() (not _exit(): wrong, and common), which runs the library's
 *       exit handlers in the parent's memory; the parent's socket still
 *       works afterwards.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int echo_round(int fd, const char* msg) {
  char buf[64] = {0};
  size_t n = strlen(msg);
  if (send(fd, msg, n, 0) != (ssize_t)n) return -1;
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return memcmp(buf, msg, n) == 0 ? 0 : -1;
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  printf("parent echo before fork: %s\n", echo_round(fd, "before") == 0 ? "ok" : "FAILED");
  if (!strcmp(argv[3], "hold")) {
    if (fork() == 0) {
      sleep(30);
      _exit(0);
    }
    printf("ready\n");
    pause();
    return 0;
  }
  if (!strcmp(argv[3], "udp-kick") && argc > 4) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b = a;
    b.sin_port = htons(atoi(argv[4]));
    struct timeval tv = {3, 0};
    if (connect(u, (struct sockaddr*)&b, sizeof b) != 0 ||
        setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
      perror("udp");
      return 1;
    }
    char buf[64];
    ssize_t r = send(u, "before", 6, 0) == 6 ? recv(u, buf, sizeof buf, 0) : -1;
    printf("parent udp echo before fork: %s\n", r == 6 && !memcmp(buf, "before", 6) ? "ok" : "FAILED");
    pid_t pid = fork();
    if (pid == 0) {
      send(u, "child", 5, 0);
      raise(SIGKILL);
      _exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child killed: %s\n", WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? "yes" : "no");
    /* Spinning, not asleep: a sleeper's poll() of the AF_XDP sockets
       would make the kernel send what waits on any of their rings. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
      r = recv(u, buf, sizeof buf, MSG_DONTWAIT);
      clock_gettime(CLOCK_MONOTONIC, &t);
    } while (r < 0 && errno == EAGAIN && t.tv_sec - t0.tv_sec < 3);
    printf("the dead child's datagram echoed: %s\n", r == 5 && !memcmp(buf, "child", 5) ? "ok" : "FAILED");
    return 0;
  }
  if (!strcmp(argv[3], "vfork-exit")) {
    pid_t pid = vfork();
    if (pid == 0) exit(0);
    int status;
    waitpid(pid, &status, 0);
    printf("parent echo after a vfork child's exit(): %s\n",
           echo_round(fd, "after-vfork") == 0 ? "ok" : "FAILED");
    return 0;
  }
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const char msg[] = "through a pipe";
    ssize_t w = write(p[1], msg, sizeof msg);
    errno = 0;
    int echo = echo_round(fd, "child");
    int e = errno;
    printf("child: pipe write %s, echo on the inherited socket %s %s, close %s\n",
           w == sizeof msg ? "ok" : "FAILED", echo == 0 ? "ok" : "FAILED",
           echo == 0 ? "" : strerrorname_np(e), close(fd) == 0 ? "ok" : "FAILED");
    _exit(0);
  }
  close(p[1]);
  char buf[64] = {0};
  ssize_t r = read(p[0], buf, sizeof buf);
  int status;
  waitpid(pid, &status, 0);
  printf("parent read from the child's pipe: %s\n", r > 0 ? buf : "FAILED");
  printf("child exit status: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  printf("parent echo after the child closed its copy: %s\n",
         echo_round(fd, "after") == 0 ? "ok" : "FAILED");
  return 0;
}
