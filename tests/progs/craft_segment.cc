// craft_segment: makes a statistics segment, well-formed or not, for the
// tests that feed xdpload-stat untrusted input.
//
//   craft_segment KIND PID|self [GIVE_UID]
//   craft_segment size         prints a segment's size in bytes
//
// KIND: good (a valid segment for PID, command "crafted", two sockets),
// truncated (half a segment), version (version 99), huge (socket and queue
// counts far beyond their tables), unterminated (strings without a NUL,
// with control characters), empty (zero bytes of the right length: no
// header). PID "self": this process, which holds it. Makes it as the
// library does (shim/stats/stat_shm.h: private, mode 0600 of the caller,
// marked for removal), gives it to GIVE_UID if asked (IPC_SET, as any
// owner may), prints "ready SHMID PID" and holds it until killed: the
// kernel removes it then.
#include <sys/ipc.h>
#include <sys/shm.h>
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
  if (argc == 2 && !strcmp(argv[1], "size")) {
    printf("%zu\n", sizeof(stats::Segment));
    return 0;
  }
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: craft_segment KIND PID|self [GIVE_UID]\n");
    return 2;
  }
  const int pid = !strcmp(argv[2], "self") ? int(getpid()) : atoi(argv[2]);
  std::string kind = argv[1];
  auto seg = std::make_unique<stats::Segment>();
  memset(static_cast<void*>(seg.get()), 0, sizeof *seg);
  size_t len = sizeof *seg;
  if (kind != "empty") {
    memcpy(seg->magic, stats::kMagic, sizeof seg->magic);
    seg->version = stats::kVersion;
    seg->pid = pid;
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
  const int id = shmget(IPC_PRIVATE, len, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) {
    perror("shmget");
    return 1;
  }
  void* at = shmat(id, nullptr, 0);
  shmctl(id, IPC_RMID, nullptr);
  if (at == reinterpret_cast<void*>(-1)) {
    perror("shmat");
    return 1;
  }
  memcpy(at, seg.get(), len);
  if (argc == 4) {
    shmid_ds ds{};
    shmctl(id, IPC_STAT, &ds);
    ds.shm_perm.uid = uid_t(atoi(argv[3]));
    if (shmctl(id, IPC_SET, &ds) != 0) {
      perror("IPC_SET");
      return 1;
    }
  }
  printf("ready %d %d\n", id, pid);
  fflush(stdout);
  for (;;) pause();
  return 0;
}
