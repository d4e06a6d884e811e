/* Hardware receive stamps as a program reads them (SO_TIMESTAMPING with
 * SOF_TIMESTAMPING_RAW_HARDWARE): UDP datagrams from the peer's
 * dgram_source.py and the echo of a TCP connection, each read with recvmsg,
 * its control messages printed one line per message.
 *
 *   hw_stamps LOCAL_IP SOURCE_IP SOURCE_PORT ECHO_PORT IFNAME
 *
 * A hardware stamp (ts[2]) is judged against CLOCK_MONOTONIC, the clock of
 * xdpload's test fake (XL_TEST_FAKE_HW_STAMP: the XDP program's
 * bpf_ktime_get_ns() where the driver gave none; far from REALTIME, so that
 * a software stamp in its place would not pass): "in range" when it is
 * between the request and recvmsg's return. A software stamp (ts[0]) is
 * judged against CLOCK_REALTIME the same way. On the kernel over a veth
 * pair there is never a hardware stamp, as with any NIC that does not
 * stamp. */
#define _GNU_SOURCE
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <stdint.h>
#include <net/if.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "parity.h"

#ifndef SCM_TIMESTAMPING_PKTINFO
#define SCM_TIMESTAMPING_PKTINFO 58
#endif
#define OPT_RX_FILTER (1u << 17)

static const char* local;
static struct sockaddr_in source;
static unsigned ifindex;

/* CLOCK_MONOTONIC straight from the kernel (the system call, which the
 * preload does not serve from the TSC): the fake stamp is the kernel's
 * clock, and a served reading a microsecond behind it made an echo's
 * stamp fall "after recvmsg" now and then. CLOCK_REALTIME as the program
 * reads it, the clock software stamps are served in. */
static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  if (c == CLOCK_MONOTONIC) syscall(SYS_clock_gettime, c, &ts);
  else clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char* judge(int64_t t, int64_t from, int64_t to) {
  return t < from ? "before the request" : t > to ? "after recvmsg" : "in range";
}

/* Prints the control messages of one received message. */
static int64_t last_hw;
static int hw_back;
static void show(const char* what, int i, struct msghdr* m, int64_t rt0, int64_t rt1, int64_t mono0,
                 int64_t mono1, size_t frame_len) {
  printf("%s %d: flags %#x\n", what, i, m->msg_flags);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    printf("  cmsg level %d type %d len %zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING_PKTINFO) {
      struct scm_ts_pktinfo p;
      memcpy(&p, CMSG_DATA(c), sizeof p);
      printf(": interface %s, length %s (%u)", p.if_index == ifindex ? "ours" : "wrong",
             p.pkt_length == frame_len ? "the frame's" : "wrong", p.pkt_length);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
      struct timespec ts[3];
      memcpy(ts, CMSG_DATA(c), sizeof ts);
      int64_t sw = (int64_t)ts[0].tv_sec * 1000000000 + ts[0].tv_nsec;
      int64_t hw = (int64_t)ts[2].tv_sec * 1000000000 + ts[2].tv_nsec;
      printf(": software %s, ts[1] %s, hardware %s", sw ? judge(sw, rt0, rt1) : "none",
             ts[1].tv_sec || ts[1].tv_nsec ? "set" : "zero", hw ? judge(hw, mono0, mono1) : "none");
      if (hw && hw < last_hw) ++hw_back;
      if (hw) last_hw = hw;
    }
    printf("\n");
  }
}

/* recvmsg into one buffer, with a control buffer. */
static ssize_t receive(int fd, struct msghdr* m, struct iovec* iov, void* buf, size_t len,
                       void* control, size_t controllen) {
  msg_over(m, iov, buf, len, control, controllen);
  return recvmsg(fd, m, 0);
}

static void udp_case(const char* name, unsigned flags) {
  printf("%s\n", name);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = addr_of(local, 9740);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("setup: bind: %s\n", en(errno));
    exit(1);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
    printf("  setsockopt: %s\n", en(errno));
  const int count = 4, size = 100;
  int64_t rt0 = now_ns(CLOCK_REALTIME), mono0 = now_ns(CLOCK_MONOTONIC);
  char req[64];
  int n = snprintf(req, sizeof req, "%d %d 0 64", count, size);
  sendto(fd, req, (size_t)n, 0, (struct sockaddr*)&source, sizeof source);
  for (int i = 0; i < count; ++i) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) {
      printf("  datagram %d: none within 5 s\n", i);
      break;
    }
    char data[200], control[256];
    struct iovec iov;
    struct msghdr m;
    ssize_t r = receive(fd, &m, &iov, data, sizeof data, control, sizeof control);
    int64_t rt1 = now_ns(CLOCK_REALTIME), mono1 = now_ns(CLOCK_MONOTONIC);
    if (r != size) printf("  datagram %d: %zd bytes\n", i, r);
    show("  datagram", i, &m, rt0, rt1, mono0, mono1, 14 + 20 + 8 + (size_t)size);
  }
  close(fd);
}

static void tcp_case(const char* name, int port, unsigned flags) {
  printf("%s\n", name);
  int fd = connect_to(port);
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
    printf("  setsockopt: %s\n", en(errno));
  for (int i = 0; i < 3; ++i) {
    int64_t rt0 = now_ns(CLOCK_REALTIME), mono0 = now_ns(CLOCK_MONOTONIC);
    char msg[100];
    memset(msg, 'a' + i, sizeof msg);
    if (send(fd, msg, sizeof msg, 0) != (ssize_t)sizeof msg) printf("  send: %s\n", en(errno));
    char back[100], control[256];
    size_t have = 0;
    while (have < sizeof back) {
      struct iovec iov;
      struct msghdr m;
      ssize_t r = receive(fd, &m, &iov, back + have, sizeof back - have, control, sizeof control);
      if (r <= 0) {
        printf("  echo %d: %s\n", i, r ? en(errno) : "end of stream");
        break;
      }
      have += (size_t)r;
      int64_t rt1 = now_ns(CLOCK_REALTIME), mono1 = now_ns(CLOCK_MONOTONIC);
      if (have == sizeof back) show("  echo", i, &m, rt0, rt1, mono0, mono1, 0);
    }
  }
  close(fd);
}

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  local = argv[1];
  source = addr_of(argv[2], atoi(argv[3]));
  peer = argv[2];
  int echo_port = atoi(argv[4]);
  ifindex = if_nametoindex(argv[5]);
  const unsigned sw = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  const unsigned hw = SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
  udp_case("udp: software and hardware, with OPT_PKTINFO", sw | hw | SOF_TIMESTAMPING_OPT_PKTINFO);
  udp_case("udp: hardware only", hw);
  udp_case("udp: hardware reporting only", SOF_TIMESTAMPING_RAW_HARDWARE);
  udp_case("udp: hardware reporting only, filtered", SOF_TIMESTAMPING_RAW_HARDWARE | OPT_RX_FILTER);
  udp_case("udp: software only", sw);
  tcp_case("tcp: software and hardware", echo_port, sw | hw);
  tcp_case("tcp: hardware only", echo_port, hw);
  fprintf(stderr, "hardware stamps out of order: %d\n", hw_back);
  return 0;
}
