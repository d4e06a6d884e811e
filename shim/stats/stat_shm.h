// Where statistics segments live: System V shared memory that the kernel
// removes with the last process that has it attached.
//
// A process's segment is a private segment (IPC_PRIVATE), mode 0600 of the
// process's user, marked for removal (IPC_RMID) as soon as it is attached:
// the kernel destroys it when its last process detaches, however that
// process ends (exit, exec, a crash, SIGKILL), so none outlives its
// family. A forked child inherits the attachment. Nothing of it is in a
// file system, so no other user can plant a file or a link in its way,
// and nothing is left to clean up.
//
// xdpload-stat finds them in /proc/sysvipc/shm (readable by all, the
// segments' owners and sizes only): private, marked for removal, and of a
// segment's exact size; then attaches each (Linux lets a segment marked
// for removal be attached by its id) and checks the header. Only the
// owner (and root) may attach: the mode says so. The owner of a segment
// may give it to any user (IPC_SET): one is trusted only if its creator is
// its owner, or root (a root process that gives its segment to the user it
// becomes); and only if the process it names has it attached (its maps).
// Segments live in an IPC namespace: a process in a container that has
// its own is seen by an xdpload-stat run in that container.
#pragma once

#include <sys/types.h>

#include <vector>

#include "rings/error_text.h"
#include "shim/stats/stat_segment.h"

namespace xdpload::stats {

// Creates this process's segment, attached and already marked for removal,
// zero-filled. *shmid: its id. nullptr with why on failure.
Segment* create_segment(int* shmid, ErrorText* why);

// Gives the segment to `uid` (a program that becomes that user): from then
// on that user may attach it, as its processes are that user's.
bool give_segment(int shmid, uid_t uid, ErrorText* why);

// What /proc/sysvipc/shm lists that may be a segment of ours: private,
// marked for removal, a Segment's size. Not yet checked: attach it first.
struct ListedSegment {
  int shmid;
  uid_t uid;   // its owner
  uid_t cuid;  // its creator's
};
std::vector<ListedSegment> list_segments();

// Process `pid` has segment `shmid` attached: its /proc/PID/maps has the
// segment's mapping (System V shared memory names the shmid as its inode).
// -1 when the maps cannot be read.
int attached_to(int pid, int shmid);

}  // namespace xdpload::stats
