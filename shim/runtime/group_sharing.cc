// UDP ports the stack holds together with another program's kernel socket,
// for multicast and broadcast.
//
// Linux gives a multicast or broadcast datagram to every socket bound to
// its port (IP_MULTICAST_ALL, on by default): several programs of a host
// read one market-data feed, say. The XDP program steers a port's frames
// to the stack whole, so a kernel socket of another program on the same
// port got none of them. XDP cannot hand one frame to both, so while such
// a socket exists the port's group frames go to the kernel (the steering
// map's third bitmap, rings/steer_maps.h), which delivers to it and to the
// stack socket's kernel twin, which the stack socket reads (udp_receive's
// kernel side): both get every datagram, the stack's no longer accelerated
// while it lasts. Unicast stays the stack's (Linux gives it to one socket).
//
// Which sockets hold a port: /proc/net/udp and udp6 of this namespace,
// read for the ports of the family's sockets that joined a multicast
// group, at each join and about once a second by the progress thread that
// runs the stack (its wake-ups come at least every second: a look may come
// up to two seconds after the previous). A socket whose inode is no twin
// of the family's is another program's (or this one's own on the kernel
// path). One that appears between two looks misses the group datagrams of
// that time. While a port is shared its receives look at the kernel side
// every time (Socket::kernel_fed): a system call each, the price of the
// kernel's delivery.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/udp_socket.h"

namespace xdpload::shim {

namespace {

struct PortSocket {
  uint16_t port;
  uint64_t inode;
};

// /proc/net/udp's local address, "ADDR:PORT" in hex, ADDR as the kernel
// prints it (each 32-bit word of the network-order address in host order:
// udp 8 digits, udp6 32): bound to the wildcard address, a multicast one
// or the limited broadcast one, the sockets Linux gives group datagrams
// to. (One bound to its subnet's broadcast address is not told: the mask
// is not here.)
bool receives_group(const char* local) {
  const char* colon = strrchr(local, ':');
  if (!colon) return false;
  const size_t digits = size_t(colon - local);
  if (strspn(local, "0") >= digits) return true;  // 0.0.0.0 or ::
  if (digits != 8 && digits != 32) return false;
  // A word's first byte is its low byte, printed last of its eight digits
  // (x86, little-endian).
  auto first_byte = [&](size_t word) {
    return unsigned(strtoul(std::string(local + word * 8 + 6, 2).c_str(), nullptr, 16));
  };
  if (digits == 8) return (first_byte(0) >> 4) == 0xe || !strncmp(local, "FFFFFFFF", 8);
  // IPv6 multicast, or an IPv4-mapped multicast address (::ffff:a.b.c.d).
  return first_byte(0) == 0xff ||
         (!strncmp(local, "0000000000000000FFFF0000", 24) && (first_byte(3) >> 4) == 0xe);
}

// The sockets of /proc/net/FILE (udp or udp6 of this namespace) that may
// receive group datagrams: "sl local_address rem_address st
// tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...".
void read_proc_udp(const char* file, std::vector<PortSocket>* out) {
  int fd = ::open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = libc::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, size_t(n));
  }
  libc::close(fd);
  size_t at = text.find('\n');  // (the header)
  while (at != std::string::npos && at + 1 < text.size()) {
    const size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    at = end;
    char local[64];
    unsigned long long inode = 0;
    if (sscanf(line.c_str(), " %*s %63s %*s %*s %*s %*s %*s %*s %*s %llu", local, &inode) != 2)
      continue;
    if (!receives_group(local)) continue;
    out->push_back(PortSocket{uint16_t(strtoul(strrchr(local, ':') + 1, nullptr, 16)), uint64_t(inode)});
  }
}

}  // namespace

void Runtime::look_at_group_sharing() {
  // (A broker's program cannot set the map: the broker has no message for
  // it yet. Said when it mattered, below.)
  if (!stack_ || !stack_->port()) return;
  static bool broker_said = false;
  if (broker_said && stack_->port()->brokered()) return;
  // The ports whose sharing matters: those of the family's UDP sockets on
  // the stack that joined a multicast group. (A port only bound, whose
  // broadcast another program may want too, is not looked at: a /proc
  // read at every bind would cost a resolver that binds a port per query.)
  std::vector<uint16_t> ports;
  for (Socket* s = sh_->live; s; s = s->live_next)
    if (s->kind == Socket::Kind::Udp && s->accelerated && s->local.port &&
        static_cast<UdpSocket*>(s)->groups > 0 &&
        std::find(ports.begin(), ports.end(), s->local.port) == ports.end())
      ports.push_back(s->local.port);
  auto& shared = sh_->group_shared_ports;
  if (ports.empty() && shared.empty()) return;
  std::vector<PortSocket> kernel;
  if (!ports.empty()) {
    read_proc_udp("/proc/net/udp", &kernel);
    read_proc_udp("/proc/net/udp6", &kernel);
  }
  // Ours: the kernel twins of the family's sockets on the stack, and of
  // this process's sockets not yet decided (a twin bound a moment before
  // its socket goes on the stack is not another program's).
  std::vector<uint64_t> own;
  for (Socket* s = sh_->live; s; s = s->live_next) own.push_back(s->twin_ino);
  for (int fd = 0; fd <= fds_.high(); ++fd)
    if (Socket* s = fds_.get(fd)) own.push_back(s->twin_ino);
  std::sort(own.begin(), own.end());
  // Another socket on the port, this program's own kernel ones included,
  // that group datagrams reach (receives_group).
  auto foreign_on = [&](uint16_t port) {
    return std::any_of(kernel.begin(), kernel.end(), [&](const PortSocket& k) {
      return k.port == port && !std::binary_search(own.begin(), own.end(), k.inode);
    });
  };
  std::vector<uint16_t> want;
  for (uint16_t port : ports)
    if (foreign_on(port)) want.push_back(port);
  for (uint16_t port : want) {
    if (std::find(shared.begin(), shared.end(), port) != shared.end()) continue;
    int rc = stack_->share_group_frames(port, true);
    if (rc == 0) {
      shared.push_back(port);
      log_at(kLogError,
             "UDP port %u: another socket, not on the stack, holds the port too: its multicast "
             "and broadcast datagrams go through the kernel, which gives each socket its copy "
             "(through the kernel, not accelerated, while it does)",
             unsigned(port));
    } else {
      static bool said = false;
      broker_said = stack_->port()->brokered();
      if (!said) {
        said = true;
        log_at(kLogError,
               "UDP port %u: another socket, not on the stack, holds the port too, and cannot be "
               "given its multicast and broadcast datagrams (%s): they all go to this program",
               unsigned(port), strerror(-rc));
      }
    }
  }
  for (size_t i = shared.size(); i-- > 0;) {
    const uint16_t port = shared[i];
    if (std::find(want.begin(), want.end(), port) != want.end()) continue;
    // Gone (or the port is no longer ours): the stack's again.
    stack_->share_group_frames(port, false);
    XLOG(kLogDecision, "UDP port %u: no other socket on it now: its multicast and broadcast "
         "datagrams are the stack's again", unsigned(port));
    shared[i] = shared.back();
    shared.pop_back();
  }
  // Receives on a shared port look at the kernel side every time (the
  // datagrams are there now, not on the stack).
  for (Socket* s = sh_->live; s; s = s->live_next)
    if (s->kind == Socket::Kind::Udp)
      __atomic_store_n(&s->kernel_fed,
                       std::find(shared.begin(), shared.end(), s->local.port) != shared.end(),
                       __ATOMIC_RELAXED);
}

}  // namespace xdpload::shim
