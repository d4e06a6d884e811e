// clock_gettime, gettimeofday and time. Until the TSC clock is in place they
// are the real calls.
#include "shim/export.h"

using namespace xdpload;

int xdpload_clock_gettime(clockid_t clock, struct timespec* ts) {
  return libc::clock_gettime(clock, ts);
}

int xdpload_gettimeofday(struct timeval* tv, void* tz) { return libc::gettimeofday(tv, tz); }

time_t xdpload_time(time_t* t) { return libc::time(t); }
