// The library's start: real functions resolved, configuration read. Runs
// before the program's main(); every intercept before this point passes
// straight through (the FdTable is empty).
#include "shim/libc.h"
#include "shim/runtime.h"

namespace {

__attribute__((constructor(101))) void xdpload_start() {
  xdpload::libc::resolve();
  xdpload::shim::Runtime::get().init();
}

}  // namespace
