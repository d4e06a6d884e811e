// StatPublisher: creates, refreshes and removes this process's statistics
// segment (shim/stats/stat_segment.h). A process family has one, named by
// (and listed under) the pid of the process that holds it: the one that
// created it, until it leaves the family while others stay (hand_to).
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
  // At exit (only the process that holds it).
  void remove();
  // The holder leaves (exit), or died (its reaper calls this), while `pid`
  // of the family stays: the segment becomes `pid`'s, as xdpload-stat
  // lists it and as the family's last process removes it. Lock held.
  void hand_to(pid_t pid);
  void take_from(pid_t dead);
  // This process holds the segment.
  bool holder() const;
  // The process is about to become `uid`: the file becomes its, in its
  // directory, so that it can still remove it.
  void give_to(uid_t uid);
  stats::Segment* segment() { return seg_; }

 private:
  stats::Segment* seg_ = nullptr;
  int owner_pid_ = 0;  // who created it; the holder is seg_->pid
  uid_t uid_ = 0;  // whose directory the segment is in
};

}  // namespace xdpload::shim
