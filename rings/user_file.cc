#include "rings/user_file.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace xdpload::rings {

namespace {

// The directory holding `path`'s last component, if it is sticky and
// writable by others (where other users may plant names); its owner then.
bool in_shared_sticky_dir(const char* path, uid_t* dir_owner) {
  std::string copy(path);
  const char* dir = dirname(copy.data());
  struct stat st;
  if (stat(dir, &st) != 0) return false;
  *dir_owner = st.st_uid;
  return (st.st_mode & S_ISVTX) && (st.st_mode & S_IWOTH);
}

// The planted-link check: -EPERM with the reason, or 0.
int check_link(const char* what, const char* path, ErrorText* why) {
  struct stat lst;
  uid_t dir_owner;
  if (lstat(path, &lst) != 0 || !S_ISLNK(lst.st_mode) || !in_shared_sticky_dir(path, &dir_owner))
    return 0;
  if (lst.st_uid == geteuid() || lst.st_uid == dir_owner) return 0;
  return why->set(EPERM,
                  "%s=%s is a symbolic link of uid %u in a directory every user can write to; "
                  "not followed (as fs.protected_symlinks would not)",
                  what, path, unsigned(lst.st_uid));
}

}  // namespace

int open_user_file_read(const char* what, const char* path, ErrorText* why) {
  if (int rc = check_link(what, path, why); rc < 0) return rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return why->set(errno, "%s=%s: %s", what, path, strerror(errno));
  return fd;
}

int open_user_file_write(const char* what, const char* path, ErrorText* why) {
  if (int rc = check_link(what, path, why); rc < 0) return rc;
  // A new file is ours: no one can have planted it.
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) return fd;
  if (errno != EEXIST) return why->set(errno, "%s=%s: %s", what, path, strerror(errno));
  // An existing name: a link already judged above (followed, creating its
  // target if need be), or a file whose owner decides, as
  // fs.protected_regular does for O_CREAT in such places.
  struct stat lst;
  bool link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
  fd = open(path, O_WRONLY | O_CLOEXEC | (link ? O_CREAT : O_NOFOLLOW), 0644);
  if (fd < 0) return why->set(errno, "%s=%s: %s", what, path, strerror(errno));
  struct stat st;
  uid_t dir_owner;
  if (fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && st.st_uid != geteuid() &&
                              in_shared_sticky_dir(path, &dir_owner) && st.st_uid != dir_owner)) {
    unsigned owner = unsigned(st.st_uid);
    close(fd);
    return why->set(EPERM,
                    "%s=%s belongs to uid %u in a directory every user can write to; not "
                    "overwritten (as fs.protected_regular would not)",
                    what, path, owner);
  }
  if (S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0) {
    int err = errno;
    close(fd);
    return why->set(err, "%s=%s: %s", what, path, strerror(err));
  }
  return fd;
}

}  // namespace xdpload::rings
