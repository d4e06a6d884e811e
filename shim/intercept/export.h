// The exported intercepts: each is defined as xdpload_<name> and carries
// the libc symbol name through an asm label, declared here from the table,
// so that glibc's own declarations (with their C++ exception specifiers)
// never clash with ours.
#pragma once

#include <cerrno>

#include "shim/intercept/libc.h"

#define XDPLOAD_CALL(ret, name, params, args) \
  extern "C" __attribute__((visibility("default"))) ret xdpload_##name params __asm__(#name);
#include "shim/intercept/intercepts.def"
#undef XDPLOAD_CALL

namespace xdpload::shim {

// The edge between "-errno inside" and "-1 and errno outside": on success
// errno is what it was when the program called.
template <typename T>
inline T done(T r, int saved_errno) {
  if (r < 0) {
    errno = int(-r);
    return T(-1);
  }
  errno = saved_errno;
  return r;
}

}  // namespace xdpload::shim
