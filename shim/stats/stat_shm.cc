#include "shim/stats/stat_shm.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace xdpload::stats {

Segment* create_segment(int* shmid, ErrorText* why) {
  const int id = shmget(IPC_PRIVATE, sizeof(Segment), IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) {
    const int e = errno;
    why->set(e, "a System V shared memory segment of %zu bytes: %s%s", sizeof(Segment), strerror(e),
             e == ENOSPC || e == ENOMEM ? " (kernel.shmmni and kernel.shmall bound them)" : "");
    return nullptr;
  }
  void* p = shmat(id, nullptr, 0);
  const int attach_errno = errno;
  // Marked for removal at once, attached or not: from here the kernel
  // removes it with its last process.
  shmctl(id, IPC_RMID, nullptr);
  if (p == reinterpret_cast<void*>(-1)) {
    why->set(attach_errno, "attaching the statistics segment: %s", strerror(attach_errno));
    return nullptr;
  }
  *shmid = id;
  return static_cast<Segment*>(p);
}

bool give_segment(int shmid, uid_t uid, ErrorText* why) {
  shmid_ds ds{};
  if (shmctl(shmid, IPC_STAT, &ds) != 0 || (ds.shm_perm.uid = uid, shmctl(shmid, IPC_SET, &ds) != 0)) {
    why->set(errno, "giving the statistics segment to uid %u: %s", unsigned(uid), strerror(errno));
    return false;
  }
  return true;
}

std::vector<ListedSegment> list_segments() {
  std::vector<ListedSegment> out;
  FILE* f = fopen("/proc/sysvipc/shm", "re");
  if (!f) return out;
  char line[512];
  if (!fgets(line, sizeof line, f)) {  // the header
    fclose(f);
    return out;
  }
  while (fgets(line, sizeof line, f)) {
    // key shmid perms size cpid lpid nattch uid gid cuid ...
    long long key;
    int id;
    unsigned perms;
    unsigned long long size;
    int cpid, lpid, nattch;
    unsigned uid, gid, cuid;
    if (sscanf(line, "%lld %d %o %llu %d %d %d %u %u %u", &key, &id, &perms, &size, &cpid, &lpid,
               &nattch, &uid, &gid, &cuid) != 10)
      continue;
    if (key != IPC_PRIVATE || !(perms & SHM_DEST) || size != sizeof(Segment)) continue;
    out.push_back(ListedSegment{id, uid_t(uid), uid_t(cuid)});
  }
  fclose(f);
  return out;
}

int attached_to(int pid, int shmid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE* f = fopen(path, "re");
  if (!f) return -1;
  // "start-end perms offset dev inode /SYSV00000000 (deleted)"
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long long inode;
    char name[64];
    if (sscanf(line, "%*s %*s %*s %*s %llu %63s", &inode, name) == 2 && !strncmp(name, "/SYSV", 5) &&
        inode == (unsigned long long)shmid)
      found = 1;
  }
  fclose(f);
  return found;
}

}  // namespace xdpload::stats
