// StatPublisher: creates, refreshes and removes this process's statistics
// segment (shim/stats/stat_segment.h).
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
  // At exit (only the process that created it).
  void remove();
  // The process is about to become `uid`: the file becomes its, in its
  // directory, so that it can still remove it.
  void give_to(uid_t uid);
  stats::Segment* segment() { return seg_; }

 private:
  stats::Segment* seg_ = nullptr;
  int owner_pid_ = 0;
  uid_t uid_ = 0;  // whose directory the segment is in
};

}  // namespace xdpload::shim
