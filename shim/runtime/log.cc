#include "shim/runtime/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
  // Our line to a standard error that is a closed pipe must not end the
  // program by SIGPIPE (it would not have written there without us): the
  // signal is held for the write, and taken back if the write raised it.
  sigset_t pipe_only, before, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &before);
  if (libc::write(2, line, at) < 0 && errno == EPIPE && !was_pending) {
    timespec now{};
    sigtimedwait(&pipe_only, nullptr, &now);
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  errno = saved;
}

}  // namespace xdpload::shim
