// craft_segment: writes a statistics segment, well-formed or not, for the
// tests that feed xdpload-stat untrusted input.
//
//   craft_segment KIND PATH PID
//
// KIND: good (a valid segment for PID, command "crafted", two sockets),
// truncated (half a segment), version (version 99), huge (socket and queue
// counts far beyond their tables), unterminated (strings without a NUL,
// with control characters), otherpid (names PID + 1), empty (zero bytes of
// the right length: no header). Creates PATH (mode 0600); exits 0.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "shim/stats/stat_segment.h"

using namespace xdpload;

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: craft_segment KIND PATH PID\n");
    return 2;
  }
  std::string kind = argv[1];
  auto seg = std::make_unique<stats::Segment>();
  memset(static_cast<void*>(seg.get()), 0, sizeof *seg);
  size_t len = sizeof *seg;
  if (kind != "empty") {
    memcpy(seg->magic, stats::kMagic, sizeof seg->magic);
    seg->version = stats::kVersion;
    seg->pid = atoi(argv[3]);
    snprintf(seg->command, sizeof seg->command, "crafted");
    snprintf(seg->iface, sizeof seg->iface, "xa0");
    snprintf(seg->mode, sizeof seg->mode, "skb/copy");
    seg->interface_queues = 4;
    seg->port.nqueues = 2;
    seg->port_at_refresh.nqueues = 2;  // (what a reader shows: the refreshed copy)
    seg->queue_id[1] = 1;
    seg->nsockets = seg->total_sockets = 2;
    for (int i = 0; i < 2; ++i) {
      stats::SocketRow& r = seg->sockets[i];
      r.proto = IPPROTO_UDP;
      r.state = 7;
      r.accelerated = 1;
      r.fd = 3 + i;
      r.local_port = uint16_t(9000 + i);
    }
  }
  if (kind == "truncated") len /= 2;
  if (kind == "version") seg->version = 99;
  if (kind == "huge") {
    seg->nsockets = seg->total_sockets = 0xffffffffu;
    seg->port.nqueues = 0xffffffffu;
    seg->port_at_refresh.nqueues = 0xffffffffu;
  }
  if (kind == "unterminated") {
    memset(seg->command, 'A', sizeof seg->command);
    memset(seg->iface, '\x1b', sizeof seg->iface);
    memset(seg->mode, 'M', sizeof seg->mode);
  }
  if (kind == "otherpid") seg->pid += 1;
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  if (write(fd, seg.get(), len) != ssize_t(len)) {
    perror("write");
    return 1;
  }
  close(fd);
  return 0;
}
