#include "rings/stage_trace.h"

#if XDPLOAD_STAGE_TRACE
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xdpload::trace {

uint64_t g_stage_mask = 0;

namespace {

struct Event {
  uint32_t stage;
  uint64_t tsc;
};

Event* g_events = nullptr;
uint32_t g_count = 0, g_capacity = 0;
uint64_t g_tsc0 = 0, g_ns0 = 0;

uint64_t raw_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

// Header: the TSC rate (measured over the recording) and the command line,
// so that the report can tell the processes of a run apart.
void dump() {
  const uint64_t mask = g_stage_mask;
  g_stage_mask = 0;
  if (!mask || !g_events) return;
  const uint64_t ns = raw_ns() - g_ns0, ticks = __rdtsc() - g_tsc0;
  const char* dir = getenv("XDPLOAD_STAGE_TRACE_DIR");
  char path[512];
  snprintf(path, sizeof path, "%s/stages-%d.txt", dir && *dir ? dir : "/tmp", int(getpid()));
  FILE* f = fopen(path, "w");
  if (!f) return;
  char cmd[256] = "?";
  if (FILE* c = fopen("/proc/self/cmdline", "r")) {
    size_t n = fread(cmd, 1, sizeof cmd - 1, c);
    cmd[n] = 0;
    for (size_t i = 0; i + 1 < n; ++i)
      if (!cmd[i]) cmd[i] = ' ';
    fclose(c);
  }
  fprintf(f, "# ticks_per_ns %.6f %s\n", ns ? double(ticks) / double(ns) : 0.0, cmd);
  for (uint32_t i = 0; i < g_count; ++i)
    fprintf(f, "%u %llu\n", g_events[i].stage, (unsigned long long)g_events[i].tsc);
  fclose(f);
}

__attribute__((constructor)) void start() {
  const char* which = getenv("XDPLOAD_STAGE_TRACE");
  if (!which || !*which) return;
  uint64_t mask = 0;
  if (!strcmp(which, "all")) {
    mask = ~uint64_t(0);
  } else {
    for (const char* p = which; *p;) {
      char* end;
      unsigned long s = strtoul(p, &end, 10);
      if (end == p || s > 63) break;
      mask |= uint64_t(1) << s;
      p = *end ? end + 1 : end;
    }
  }
  const char* events = getenv("XDPLOAD_STAGE_TRACE_EVENTS");
  g_capacity = events ? uint32_t(strtoul(events, nullptr, 10)) : 2u << 20;
  if (!g_capacity) return;
  g_events = static_cast<Event*>(malloc(sizeof(Event) * g_capacity));
  if (!g_events) return;
  g_ns0 = raw_ns();
  g_tsc0 = __rdtsc();
  atexit(dump);
  g_stage_mask = mask;
}

}  // namespace

void mark_slow(uint32_t stage) {
  g_events[g_count++] = Event{stage, __rdtsc()};
  if (g_count == g_capacity) dump();
}

}  // namespace xdpload::trace
#endif
