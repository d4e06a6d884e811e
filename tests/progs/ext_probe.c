/* ext_probe: the extensions API (include/xdpload/extensions.h) as a program
 * sees it, linked against the stub (shared or static). One line per fact,
 * so that tests/shim/shim-extensions.sh can say what each run must show,
 * with xdpload and without.
 *
 *   ext_probe PEER_IP UDP_ECHO_PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <xdpload/extensions.h>

static void on_alarm(int s) { (void)s; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Blocking UDP round trips through the echo: how many of the waits slept
 * (the counter's growth), or -1 without counters. */
static long round_trips(int fd, int n) {
  struct xdpload_counters c0, c1;
  int have = xdpload_get_counters(&c0, sizeof c0) == 0;
  char b[64];
  for (int i = 0; i < n; ++i) {
    if (send(fd, "ping", 4, 0) != 4 || recv(fd, b, sizeof b, 0) != 4) {
      printf("round trip %d failed: %s\n", i, strerror(errno));
      exit(1);
    }
  }
  if (!have || xdpload_get_counters(&c1, sizeof c1) != 0) return -1;
  return (long)(c1.blocked_waits - c0.blocked_waits);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("present %d\n", xdpload_is_present());

  int fds[2];
  if (pipe(fds) != 0) return 1;
  struct xdpload_fd_info info;
  printf("fd_stat of a pipe %d\n", xdpload_fd_stat(fds[0], &info, sizeof info));

  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in peer = {0};
  peer.sin_family = AF_INET;
  peer.sin_port = htons((uint16_t)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &peer.sin_addr);
  if (connect(u, (struct sockaddr*)&peer, sizeof peer) != 0) return 1;
  round_trips(u, 1);  /* (accelerated by its first send) */
  struct sockaddr_in me;
  socklen_t ml = sizeof me;
  getsockname(u, (struct sockaddr*)&me, &ml);
  memset(&info, 0xa5, sizeof info);
  int r = xdpload_fd_stat(u, &info, sizeof info);
  printf("fd_stat of the UDP socket %d", r);
  if (r == 1)
    printf(" protocol %d listening %d local %s remote %s", info.protocol, info.listening,
           info.local_port == ntohs(me.sin_port) && info.local_ip == me.sin_addr.s_addr ? "matches"
                                                                                         : "differs",
           info.remote_port == ntohs(peer.sin_port) && info.remote_ip == peer.sin_addr.s_addr
               ? "matches"
               : "differs");
  printf("\n");
  printf("fd_stat with a size too small %d\n", xdpload_fd_stat(u, &info, 4));

  struct xdpload_counters c;
  memset(&c, 0, sizeof c);
  r = xdpload_get_counters(&c, sizeof c);
  printf("counters %d", r);
  if (r == 0)
    printf(" frames both ways %s, udp out %s, accelerated udp %llu",
           c.rx_frames > 0 && c.tx_frames > 0 ? "yes" : "no", c.udp_out_datagrams > 0 ? "yes" : "no",
           (unsigned long long)c.accelerated_udp);
  printf("\n");
  printf("counters with a size too small %d\n", xdpload_get_counters(&c, 8));

  unsigned m = 12345;
  r = xdpload_thread_get_spin(&m);
  printf("get_spin %d mask %#x\n", r, r == 0 ? m : 0);
  printf("set_spin out of range %d\n", xdpload_thread_set_spin(XDPLOAD_SPIN_MAX, 1));
  printf("set_spin udp recv on %d\n", xdpload_thread_set_spin(XDPLOAD_SPIN_UDP_RECV, 1));
  r = xdpload_thread_get_spin(&m);
  printf("get_spin %d: udp recv %s, tcp recv %s\n", r,
         r == 0 && (m & (1u << XDPLOAD_SPIN_UDP_RECV)) ? "spins" : "sleeps",
         r == 0 && (m & (1u << XDPLOAD_SPIN_TCP_RECV)) ? "spins" : "sleeps");
  long spun = round_trips(u, 300);
  printf("spinning: waits that slept %s\n", spun < 0 ? "unknown" : spun == 0 ? "none" : "some");

  /* Spinning without limit still ends on a signal (EINTR, no SA_RESTART)
   * and at the socket's timeout, as a sleep would. */
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 0}, {0, 200000}};
  setitimer(ITIMER_REAL, &it, NULL);
  char b[16];
  double t0 = now_s();
  ssize_t n = recv(u, b, sizeof b, 0);
  printf("spinning recv, SIGALRM without SA_RESTART: %zd %s within 5 s %s\n", n,
         n < 0 ? strerrorname_np(errno) : "", now_s() - t0 < 5 ? "yes" : "no");
  struct timeval tv = {0, 100000};
  setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  n = recv(u, b, sizeof b, 0);
  printf("spinning recv, SO_RCVTIMEO: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  tv.tv_usec = 0;
  setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  printf("set_spin all off %d\n", xdpload_thread_set_spin(XDPLOAD_SPIN_ALL, 0));
  long slept = round_trips(u, 300);
  printf("sleeping: waits that slept %s\n", slept < 0 ? "unknown" : slept > 0 ? "some" : "none");
  close(u);
  return 0;
}
