// stamp_offset: how far xdpload's software receive stamp of a frame lies
// from the stamp the kernel gives a frame that arrived with it.
//
//   stamp_offset recv PORT_STACK PORT_KERNEL COUNT
//       run under xdpload with a rule that leaves PORT_KERNEL to the kernel;
//       two sockets with SO_TIMESTAMPING (RX_SOFTWARE | SOFTWARE), read by
//       a non-blocking spin over both.
//   stamp_offset send IP PORT_STACK PORT_KERNEL COUNT
//       COUNT pairs of datagrams, the two of a pair back to back (one to
//       each port), a millisecond between pairs; the order alternates.
//
// Each pair's difference is (stack stamp - kernel stamp). The kernel stamps
// in the softirq that receives the frame (netif_receive_skb); xdpload when
// the frame leaves its AF_XDP receive ring in user space. With the stack's
// datagram first, the difference is the offset less the gap between the
// two frames; with the kernel's first, the offset plus the gap: the mean of
// the two medians is the offset, half their difference the gap. The receive
// end prints the medians, the offset and the gap in microseconds.
#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

int open_socket(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    perror("stamp_offset: socket");
    exit(1);
  }
  int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0) {
    perror("stamp_offset: SO_TIMESTAMPING");
    exit(1);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("stamp_offset: bind");
    exit(1);
  }
  return fd;
}

// A datagram: its pair number and which of the two came first.
struct Probe {
  uint32_t pair;
  uint32_t stack_first;
};

// One datagram if there is one: its probe and software stamp (ns).
bool take(int fd, Probe* p, int64_t* stamp) {
  char cbuf[256];
  iovec iov{p, sizeof *p};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  if (recvmsg(fd, &m, MSG_DONTWAIT) != ssize_t(sizeof *p)) return false;
  *stamp = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
      timespec ts[3];
      memcpy(ts, CMSG_DATA(c), sizeof ts);
      *stamp = int64_t(ts[0].tv_sec) * 1000000000 + ts[0].tv_nsec;
    }
  }
  return *stamp != 0;
}

double median_us(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return double(v[v.size() / 2]) / 1000.0;
}

int receive(uint16_t stack_port, uint16_t kernel_port, uint32_t count) {
  int fs = open_socket(stack_port), fk = open_socket(kernel_port);
  printf("ready\n");
  fflush(stdout);
  std::vector<int64_t> stack_at(count, 0), kernel_at(count, 0);
  std::vector<uint8_t> stack_first(count, 0);
  uint32_t got = 0, missing_stamp = 0, turns = 0;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    // The sender's pace is a millisecond a pair: ten seconds past that
    // without the last pair, what came is what there is.
    if (now.tv_sec - start.tv_sec > int64_t(count) / 1000 + 10 || got == 2 * count) break;
    // The kernel stamps whenever its frame comes, however late it is read:
    // its socket is looked at every 64th turn, so that this thread's
    // system calls do not delay its polls of the stack.
    for (int fd : {fs, fk}) {
      Probe p;
      int64_t at;
      if (fd == fk && (++turns & 63)) continue;
      if (!take(fd, &p, &at)) continue;
      if (p.pair >= count) continue;
      (fd == fs ? stack_at : kernel_at)[p.pair] = at;
      stack_first[p.pair] = uint8_t(p.stack_first);
      ++got;
    }
  }
  std::vector<int64_t> d_stack_first, d_kernel_first;
  for (uint32_t i = 0; i < count; ++i) {
    if (!stack_at[i] || !kernel_at[i]) {
      ++missing_stamp;
      continue;
    }
    (stack_first[i] ? d_stack_first : d_kernel_first).push_back(stack_at[i] - kernel_at[i]);
  }
  const double a = median_us(d_stack_first), b = median_us(d_kernel_first);
  printf("pairs %zu incomplete %u\n", d_stack_first.size() + d_kernel_first.size(), missing_stamp);
  printf("median stack-first %.2f us, kernel-first %.2f us\n", a, b);
  printf("offset %.2f us gap %.2f us\n", (a + b) / 2, (b - a) / 2);
  return d_stack_first.empty() || d_kernel_first.empty() ? 1 : 0;
}

int send(const char* ip, uint16_t stack_port, uint16_t kernel_port, uint32_t count) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to_stack{}, to_kernel{};
  to_stack.sin_family = to_kernel.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &to_stack.sin_addr);
  to_kernel.sin_addr = to_stack.sin_addr;
  to_stack.sin_port = htons(stack_port);
  to_kernel.sin_port = htons(kernel_port);
  for (uint32_t i = 0; i < count; ++i) {
    Probe p{i, i % 2};
    const sockaddr_in* first = p.stack_first ? &to_stack : &to_kernel;
    const sockaddr_in* second = p.stack_first ? &to_kernel : &to_stack;
    sendto(fd, &p, sizeof p, 0, reinterpret_cast<const sockaddr*>(first), sizeof *first);
    sendto(fd, &p, sizeof p, 0, reinterpret_cast<const sockaddr*>(second), sizeof *second);
    usleep(1000);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && !strcmp(argv[1], "recv"))
    return receive(uint16_t(atoi(argv[2])), uint16_t(atoi(argv[3])), uint32_t(atoi(argv[4])));
  if (argc == 6 && !strcmp(argv[1], "send"))
    return send(argv[2], uint16_t(atoi(argv[3])), uint16_t(atoi(argv[4])), uint32_t(atoi(argv[5])));
  fprintf(stderr,
          "usage: stamp_offset recv PORT_STACK PORT_KERNEL COUNT\n"
          "       stamp_offset send IP PORT_STACK PORT_KERNEL COUNT\n");
  return 2;
}
