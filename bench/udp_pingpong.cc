// udp_pingpong: the leanest program the socket API allows, for the bench to
// run under xdpload (and on the kernel) beside sockperf: a non-blocking
// recvfrom() spin and a sendto(), nothing else per message. The difference
// to sockperf's figures is sockperf's own work; the difference to the raw
// AF_XDP floor is what the stack and the socket calls cost.
//
//   udp_pingpong echo PORT
//   udp_pingpong ping IP PORT SECONDS      64-byte round trips; prints
//       percentiles in microseconds, like sockperf --full-rtt.
//
// With UDP_PINGPONG_STAMPS=1 both ends ask for software receive timestamps
// (SO_TIMESTAMPING, RX_SOFTWARE | SOFTWARE) and read with recvmsg, as a
// market-data handler does; the ping end says how many replies carried one.
// UDP_PINGPONG_STAMPS=hw: hardware ones too (RX_HARDWARE | RAW_HARDWARE).
#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

bool g_stamps = false;
bool g_hw_stamps = false;
uint64_t g_stamped = 0;

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int open_socket(uint16_t bind_port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    perror("udp_pingpong: socket");
    exit(1);
  }
  if (g_stamps) {
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (g_hw_stamps) flags |= SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(bind_port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("udp_pingpong: bind");
    exit(1);
  }
  return fd;
}

// Spins until a datagram comes; false at the deadline.
bool receive(int fd, char* buf, size_t n, sockaddr_in* from, int64_t deadline) {
  for (uint32_t spins = 0;; ++spins) {
    if (g_stamps) {
      char control[128];
      iovec iov{buf, n};
      msghdr m{};
      m.msg_name = from;
      m.msg_namelen = sizeof *from;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      if (recvmsg(fd, &m, 0) >= 0) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) ++g_stamped;
        return true;
      }
    } else {
      socklen_t len = sizeof *from;
      if (recvfrom(fd, buf, n, 0, reinterpret_cast<sockaddr*>(from), &len) >= 0) return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      perror("udp_pingpong: recvfrom");
      exit(1);
    }
    if ((spins & 1023) == 0 && deadline && now_ns() > deadline) return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  char buf[2048];
  const char* stamps = getenv("UDP_PINGPONG_STAMPS");
  g_hw_stamps = stamps && !strcmp(stamps, "hw");
  g_stamps = stamps && (!strcmp(stamps, "1") || g_hw_stamps);
  if (argc == 3 && !strcmp(argv[1], "echo")) {
    int fd = open_socket(uint16_t(atoi(argv[2])));
    sockaddr_in from{};
    for (;;) {
      receive(fd, buf, sizeof buf, &from, 0);
      sendto(fd, buf, 64, 0, reinterpret_cast<sockaddr*>(&from), sizeof from);
    }
  }
  if (argc != 5 || strcmp(argv[1], "ping")) {
    fprintf(stderr, "usage: see the comment at the top of bench/udp_pingpong.cc\n");
    return 2;
  }
  int fd = open_socket(0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(uint16_t(atoi(argv[3])));
  inet_pton(AF_INET, argv[2], &to.sin_addr);
  int64_t end = now_ns() + int64_t(atof(argv[4]) * 1e9);
  std::vector<uint32_t> rtts;
  rtts.reserve(4 << 20);
  memset(buf, 'p', 64);
  uint64_t lost = 0;
  while (now_ns() < end) {
    int64_t t0 = now_ns();
    sendto(fd, buf, 64, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    sockaddr_in from{};
    if (!receive(fd, buf, sizeof buf, &from, t0 + 100000000)) {
      ++lost;
      continue;
    }
    rtts.push_back(uint32_t(now_ns() - t0));
  }
  if (rtts.empty()) {
    fprintf(stderr, "udp_pingpong: no echo came back\n");
    return 1;
  }
  // The first tenth is warm-up (ARP, caches), as sockperf skips its own.
  std::vector<uint32_t> s(rtts.begin() + long(rtts.size() / 10), rtts.end());
  std::sort(s.begin(), s.end());
  auto pct = [&](double p) { return s[std::min(s.size() - 1, size_t(p / 100 * double(s.size())))] / 1000.0; };
  printf("round trips %zu lost %llu\n", s.size(), (unsigned long long)lost);
  if (g_stamps) printf("replies with a receive timestamp %llu of %zu\n", (unsigned long long)g_stamped, rtts.size());
  printf("percentile 50.000 = %.3f\npercentile 99.000 = %.3f\npercentile 99.900 = %.3f\n"
         "<MAX> observation = %.3f\n",
         pct(50), pct(99), pct(99.9), s.back() / 1000.0);
  return 0;
}
