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
// read when a socket of ours starts receiving (bound, joined to a group)
// and about once a second by the progress thread that runs the stack. A
// socket whose inode is no twin of the family's sockets on the stack is
// another program's (or this one's own on the kernel path). One that
// appears between two looks misses the group datagrams of that second.
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
// udp 8 digits, udp6 32): bound to the wildcard address or to a multicast
// one, the only sockets Linux gives group datagrams to.
bool receives_group(const char* local) {
  const char* colon = strrchr(local, ':');
  if (!colon) return false;
  const size_t digits = size_t(colon - local);
  if (strspn(local, "0") >= digits) return true;  // 0.0.0.0 or ::
  if (digits != 8 && digits != 32) return false;
  // The address's first byte: the low byte of the first word, printed last
  // of its eight digits (x86, little-endian).
  const unsigned first = unsigned(strtoul(std::string(local + 6, 2).c_str(), nullptr, 16));
  return digits == 8 ? (first >> 4) == 0xe : first == 0xff;
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
  if (!stack_) return;
  // The family's UDP sockets that receive group datagrams: bound to the
  // wildcard address or to a multicast one (a socket bound to a unicast
  // address receives neither multicast nor broadcast).
  std::vector<PortSocket> ours;
  for (Socket* s = sh_->live; s; s = s->live_next) {
    if (s->kind != Socket::Kind::Udp || !s->accelerated || !s->local.port) continue;
    const uint32_t ip = ntohl(s->local.ip);
    if (ip != INADDR_ANY && (ip >> 28) != 0xe) continue;
    ours.push_back(PortSocket{s->local.port, s->twin_ino});
  }
  auto& shared = sh_->group_shared_ports;
  if (ours.empty() && shared.empty()) return;
  std::vector<PortSocket> kernel;
  read_proc_udp("/proc/net/udp", &kernel);
  read_proc_udp("/proc/net/udp6", &kernel);
  // Another socket on the port, this program's own kernel ones included:
  // any there that is not the kernel twin of one of the family's sockets
  // on the stack.
  auto foreign_on = [&](uint16_t port) {
    return std::any_of(kernel.begin(), kernel.end(), [&](const PortSocket& k) {
      if (k.port != port) return false;
      for (Socket* s = sh_->live; s; s = s->live_next)
        if (s->accelerated && s->twin_ino == k.inode) return false;
      return true;
    });
  };
  std::vector<uint16_t> want;
  for (const PortSocket& o : ours)
    if (std::find(want.begin(), want.end(), o.port) == want.end() && foreign_on(o.port))
      want.push_back(o.port);
  for (uint16_t port : want) {
    if (std::find(shared.begin(), shared.end(), port) != shared.end()) continue;
    int rc = stack_->share_group_frames(port, true);
    if (rc == 0) {
      shared.push_back(port);
      log_at(kLogError,
             "UDP port %u: another program's socket holds the port too: its multicast and "
             "broadcast datagrams go through the kernel, which gives each socket its copy "
             "(this program's are not accelerated while it does)",
             unsigned(port));
    } else {
      static bool said = false;
      if (!said) {
        said = true;
        log_at(kLogError,
               "UDP port %u: another program's socket holds the port too, and cannot be given "
               "its multicast and broadcast datagrams (%s): they all go to this program",
               unsigned(port), strerror(-rc));
      }
    }
  }
  for (size_t i = shared.size(); i-- > 0;) {
    const uint16_t port = shared[i];
    if (std::find(want.begin(), want.end(), port) != want.end()) continue;
    // Gone (or the port is no longer ours): the stack's again.
    stack_->share_group_frames(port, false);
    XLOG(kLogDecision, "UDP port %u: no other program's socket on it now: its multicast and "
         "broadcast datagrams are the stack's again", unsigned(port));
    shared[i] = shared.back();
    shared.pop_back();
  }
}

}  // namespace xdpload::shim
