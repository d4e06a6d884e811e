// Where statistics segments live, and the checks that keep another user out.
//
// A process's segment is /dev/shm/xdpload-<uid>/<pid>: a directory of the
// process's own user, mode 0700, holding files of mode 0600. /dev/shm is
// writable by every user, so nothing there is trusted by name: the
// directory is opened without following a symbolic link and must be a
// directory owned by that uid that no one else can write; files are created
// with O_EXCL | O_NOFOLLOW (never an existing file, never through a link)
// and read only when they are regular files of the directory's owner. The
// sticky bit of /dev/shm keeps other users from renaming or removing a
// directory once it is ours, so later path lookups inside it are safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "rings/error_text.h"

namespace xdpload::stats {

constexpr const char* kShmDir = "/dev/shm";
constexpr const char* kDirPrefix = "xdpload-";

// "/dev/shm/xdpload-<uid>".
std::string dir_for(uid_t uid);
// "/dev/shm/xdpload-<uid>/<pid>".
std::string path_for(uid_t uid, int pid);

// Opens `uid`'s directory (creating it, mode 0700, when `create` and it is
// missing; a directory made by root for another uid is given to that uid)
// and checks it: a real directory, owned by `uid`, writable by no one else.
// Returns a descriptor (O_CLOEXEC) or -errno with the reason.
int open_dir(uid_t uid, bool create, ErrorText* why);

// Creates this process's segment file in `uid`'s directory: never an
// existing file (one left by a dead process with this pid is removed
// first), never through a link. Returns a descriptor or -errno with why.
int create_segment(uid_t uid, int pid, ErrorText* why);

// Removes, from `uid`'s directory, the segments of processes that are gone
// (regular files owned by `uid` named by a pid that no longer runs). Never
// touches anything else. Returns the pids removed.
std::vector<int> remove_dead(uid_t uid);

// Removes `uid`'s directory if it is empty (the last segment is gone).
void remove_dir_if_empty(uid_t uid);

// A decimal pid, and nothing else: > 0, digits only.
bool parse_pid(const char* name, int* pid);
// The uid of a directory name "xdpload-<uid>"; false for any other name.
bool parse_dir_uid(const char* name, uid_t* uid);

}  // namespace xdpload::stats
