#include "shim/stats/stat_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xdpload::stats {

std::string dir_for(uid_t uid) {
  return std::string(kShmDir) + "/" + kDirPrefix + std::to_string(uid);
}

std::string path_for(uid_t uid, int pid) { return dir_for(uid) + "/" + std::to_string(pid); }

bool parse_pid(const char* name, int* pid) {
  if (!*name || strlen(name) > 9) return false;
  for (const char* p = name; *p; ++p)
    if (*p < '0' || *p > '9') return false;
  *pid = atoi(name);
  return *pid > 0;
}

bool parse_dir_uid(const char* name, uid_t* uid) {
  size_t n = strlen(kDirPrefix);
  if (strncmp(name, kDirPrefix, n) != 0) return false;
  const char* digits = name + n;
  if (!strcmp(digits, "0")) {
    *uid = 0;
    return true;
  }
  int v;
  if (!parse_pid(digits, &v)) return false;
  *uid = uid_t(v);
  return true;
}

int open_dir(uid_t uid, bool create, ErrorText* why) {
  std::string dir = dir_for(uid);
  if (create && mkdir(dir.c_str(), 0700) == 0 && geteuid() != uid) {
    // Root making the directory of the user it is about to become.
    if (chown(dir.c_str(), uid, gid_t(-1)) != 0) {
      int err = errno;
      rmdir(dir.c_str());
      return why->set(err, "cannot give %s to uid %u: %s", dir.c_str(), unsigned(uid),
                      strerror(err));
    }
  }
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    struct stat st;
    if ((err == ELOOP || err == ENOTDIR) && lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      err = ELOOP;
    if (err == ELOOP)
      return why->set(EPERM, "%s is a symbolic link, not xdpload's directory (remove it)",
                      dir.c_str());
    if (err == ENOTDIR)
      return why->set(EPERM, "%s is not a directory (remove it)", dir.c_str());
    return why->set(err, "cannot open %s: %s", dir.c_str(), strerror(err));
  }
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0) {
    err = errno;
    why->set(err, "cannot read %s: %s", dir.c_str(), strerror(err));
  } else if (st.st_uid != uid) {
    err = EPERM;
    why->set(EPERM, "%s belongs to uid %u, not %u (remove it)", dir.c_str(), unsigned(st.st_uid),
             unsigned(uid));
  } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    err = EPERM;
    why->set(EPERM, "%s is writable by others (mode %03o; remove it)", dir.c_str(),
             unsigned(st.st_mode & 0777));
  }
  if (err) {
    close(fd);
    return -err;
  }
  return fd;
}

int create_segment(uid_t uid, int pid, ErrorText* why) {
  std::string name = std::to_string(pid);
  // Twice: another process of this user may remove the (empty) directory
  // between our mkdir and our create, and a file of a dead process that had
  // our pid may be in the way.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int dfd = open_dir(uid, true, why);
    if (dfd < 0) {
      if (dfd == -ENOENT) continue;
      return dfd;
    }
    int fd = openat(dfd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int err = errno;
    if (fd < 0 && err == EEXIST) {
      // Our pid is ours now: its previous holder is gone. Only a regular
      // file is removed; anything else in our own directory is left alone.
      struct stat st;
      if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        unlinkat(dfd, name.c_str(), 0);
    }
    close(dfd);
    if (fd >= 0) return fd;
    if (err != EEXIST && err != ENOENT)
      return why->set(err, "cannot create %s: %s", path_for(uid, pid).c_str(), strerror(err));
  }
  return why->set(EEXIST, "cannot create %s", path_for(uid, pid).c_str());
}

std::vector<int> remove_dead(uid_t uid) {
  std::vector<int> removed;
  ErrorText why;
  int dfd = open_dir(uid, false, &why);
  if (dfd < 0) return removed;
  DIR* d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return removed;
  }
  while (dirent* e = readdir(d)) {
    int pid;
    if (!parse_pid(e->d_name, &pid)) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != uid)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0) removed.push_back(pid);
  }
  closedir(d);
  return removed;
}

void remove_dir_if_empty(uid_t uid) {
  // Fails (ENOTEMPTY) while another process of this user has a segment.
  rmdir(dir_for(uid).c_str());
}

}  // namespace xdpload::stats
