/* fork_cost: what fork() costs a server, with its listener accelerated
 * (run under xdpload) or not. Opens a TCP listener on ADDR:PORT and one
 * UDP socket, then times N rounds of fork(), the child's _exit(0) and the
 * parent's waitpid(); prints the median and the 99th percentile in
 * microseconds. Under xdpload the child joins the family (its descriptors
 * are counted, a progress thread starts) and leaves it.
 *
 *   fork_cost ADDR PORT N
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  int n = atoi(argv[3]);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &a.sin_addr);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr*)&a, sizeof a) || listen(l, 16)) {
    perror("listen");
    return 1;
  }
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  a.sin_port = htons(atoi(argv[2]) + 1);
  if (bind(u, (struct sockaddr*)&a, sizeof a)) {
    perror("bind");
    return 1;
  }
  double* t = calloc((size_t)n, sizeof *t);
  for (int i = 0; i < n; ++i) {
    double start = now_us();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    t[i] = now_us() - start;
  }
  qsort(t, (size_t)n, sizeof *t, cmp);
  printf("fork+exit+wait us: median %.1f p99 %.1f\n", t[n / 2], t[n * 99 / 100]);
  return 0;
}
