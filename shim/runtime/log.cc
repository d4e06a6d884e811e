#include "shim/runtime/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "shim/intercept/libc.h"

namespace xdpload::shim {

namespace {
int g_level = 0;
}

void set_log_level(int level) { g_level = level; }
int log_level() { return g_level; }

void log_at(int, const char* fmt, ...) {
  char line[512] = "xdpload: ";
  size_t at = 9;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line + at, sizeof line - at - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  at += size_t(n) < sizeof line - at - 1 ? size_t(n) : sizeof line - at - 2;
  line[at++] = '\n';
  int saved = errno;
  libc::write(2, line, at);
  errno = saved;
}

}  // namespace xdpload::shim
