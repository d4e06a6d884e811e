// The library's start: real functions resolved, configuration read. Runs
// before the program's main(); every intercept before this point passes
// straight through (the FdTable is empty).
#include "shim/intercept/libc.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/passed_connections.h"

namespace {

__attribute__((constructor(101))) void xdpload_start() {
  xdpload::libc::resolve();
  xdpload::shim::Runtime::get().init();
  xdpload::shim::adopt_passed_connections();
}

// At exit the connections are finished, then the totals are said. (The
// statistics segment goes with the family's last process, killed or not:
// the kernel removes it.)
__attribute__((destructor)) void xdpload_stop() {
  xdpload::shim::Runtime::get().leave_family();
  xdpload::shim::Runtime::get().shutdown_stats();
  xdpload::shim::Runtime::get().report_clock();
  xdpload::shim::Runtime::get().release_port_at_exit();
  // A fatal signal during the end (the progress thread was kept out of
  // the stack, and left it to us): the process dies by it. Later ones (a
  // SIGPIPE at stdio's last flush) act as without the library.
  // (Not from a vfork child, which shares the parent's memory and its
  // catchers.)
  if (xdpload::shim::Runtime::get().vfork_child()) {
    if (xdpload::shim::fatal_signal_pending()) xdpload::shim::die_by_pending_signal();
  } else {
    xdpload::shim::stop_catching_at_exit();
  }
}

}  // namespace
