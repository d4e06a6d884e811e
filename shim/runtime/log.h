// Logging to stderr, one line per message, prefixed "xdpload: ". Written
// with the real write() in one call, so lines from threads do not interleave,
// and without allocating.
#pragma once

namespace xdpload::shim {

enum LogLevel { kLogError = 0, kLogInfo = 1, kLogDecision = 2, kLogDebug = 3 };

void set_log_level(int level);
int log_level();
__attribute__((format(printf, 2, 3))) void log_at(int level, const char* fmt, ...);

#define XLOG(level, ...)                                                   \
  do {                                                                     \
    if (::xdpload::shim::log_level() >= (level)) ::xdpload::shim::log_at(level, __VA_ARGS__); \
  } while (0)

}  // namespace xdpload::shim
