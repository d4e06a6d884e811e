// Host settings a latency-sensitive program asks for (xdpload --rt, --mlock,
// --numa, --progress-cpu): real-time scheduling for its threads, its memory
// locked, its memory and the UMEM on one NUMA node, the progress thread on a
// CPU of its own.
//
// Applied when the library loads, before main(), so that every thread the
// program creates inherits them. A setting the host refuses (no privilege
// for SCHED_FIFO, RLIMIT_MEMLOCK too low, a CPU or node the program may not
// use) is one line naming the fix, and the program runs without it;
// XDPLOAD_STRICT=1 makes it fatal. The line is said as configuration errors
// are (Runtime::say_deferred): by the process that makes a TCP or UDP
// socket, not by every shell or taskset of the run that loads the library.
#pragma once

#include <string>
#include <vector>

#include "shim/runtime/config.h"

namespace xdpload::shim {

class HostSettings {
 public:
  // At library load; `c` must outlive this. A refused setting adds its line
  // to `refusals`, or ends the process when `strict`.
  void apply(const Config& c, bool strict, std::vector<std::string>* refusals);
  // In a child made by fork(): memory locks are not inherited.
  void after_fork();
  // At the start of every progress thread: its CPU and priority.
  void place_progress_thread();

  // The node the UMEM goes on; -1: rings/ chooses (the interface's node,
  // else the one the stack starts on).
  int umem_node() const { return numa_node_; }

 private:
  void apply_rt();
  void apply_mlock();
  void apply_numa(const std::string& iface);
  void check_progress_cpu();

  const Config* c_ = nullptr;
  bool rt_on_ = false;      // the program's threads run SCHED_FIFO
  bool mlock_on_ = false;   // mlockall succeeded
  bool cpu_ok_ = false;     // XDPLOAD_PROGRESS_CPU is one the program may use
  int numa_node_ = -1;
};

// The priority of the progress thread for a program at `prio` (see
// host_settings.cc: one above, so that it preempts a computing thread when
// a TCP timer is due).
int progress_rt_priority(int prio);

}  // namespace xdpload::shim
