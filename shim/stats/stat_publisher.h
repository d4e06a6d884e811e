// StatPublisher: creates and refreshes this process's statistics segment
// (shim/stats/stat_segment.h, in System V shared memory: stat_shm.h). A
// process family has one, listed under the pid of the process that holds
// it: the one that created it, until it leaves the family while others
// stay (hand_to). The kernel removes it with the family's last process.
#pragma once

#include <sys/types.h>

#include "shim/stats/stat_segment.h"

namespace xdpload::shim {

class StatPublisher {
 public:
  // Creates the segment and moves the live counters into it. Lock held.
  bool start();
  // The socket table, the refreshed figures and a copy of the live
  // counters, all of one instant. Lock held.
  void refresh();
  // A reader (xdpload-stat) asked for a refresh that has not been made.
  bool refresh_asked() const;
  // The holder leaves (exit), or died (its reaper calls this), while `pid`
  // of the family stays: the segment becomes `pid`'s, as xdpload-stat
  // lists it. Lock held.
  void hand_to(pid_t pid);
  void take_from(pid_t dead);
  // This process holds the segment.
  bool holder() const;
  // The process is about to become `uid`: the segment becomes that user's,
  // who may then read it as the process's owner.
  void give_to(uid_t uid);
  // A child forked outside the family (it runs no stack): its copy of the
  // segment becomes private memory at the same address, where the counters
  // placed in it stay valid, so that the child does not keep the family's
  // segment alive. (A forked child of the family shares it.)
  void keep_private_copy();
  stats::Segment* segment() { return seg_; }

 private:
  stats::Segment* seg_ = nullptr;
  int shmid_ = -1;
};

}  // namespace xdpload::shim
