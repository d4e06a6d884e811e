// ErrorText: the one-line reason that goes with a -errno result.
//
// Setup code returns -errno like the kernel does; the caller that has to tell
// a human what went wrong (the shim's single stderr line, a test) also gets a
// sentence naming the interface, the value or the missing privilege.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace xdpload {

struct ErrorText {
  char text[256] = {};

  // Records the reason and returns -err, so that `return why->set(...)` both
  // explains and fails.
  __attribute__((format(printf, 3, 4))) int set(int err, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return err > 0 ? -err : err;
  }
  bool empty() const { return text[0] == 0; }
  const char* c_str() const { return text; }
};

}  // namespace xdpload
