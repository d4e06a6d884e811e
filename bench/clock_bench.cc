// The served clock against the real one, per clock id, in one run.
//
// Run under the preload (bench/run.sh does): "served" is clock_gettime as a
// program sees it (the intercept), "real" is libc's own clock_gettime, found
// through libc's handle (the vDSO behind it). gettimeofday and time likewise.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/time.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace {

using gettime_fn = int (*)(clockid_t, timespec*);
using gettimeofday_fn = int (*)(timeval*, void*);
using time_fn = time_t (*)(time_t*);
gettime_fn real_gettime;
gettimeofday_fn real_gettimeofday;
time_fn real_time;

void* libc_symbol(const char* name) {
  static void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* p = libc ? dlsym(libc, name) : nullptr;
  if (!p) {
    fprintf(stderr, "cannot find libc's %s\n", name);
    exit(1);
  }
  return p;
}

const clockid_t kClocks[] = {CLOCK_REALTIME,        CLOCK_MONOTONIC,       CLOCK_MONOTONIC_RAW,
                             CLOCK_BOOTTIME,        CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE};
const char* kNames[] = {"REALTIME", "MONOTONIC", "MONOTONIC_RAW", "BOOTTIME", "REALTIME_COARSE",
                        "MONOTONIC_COARSE"};

void BM_real(benchmark::State& st) {
  clockid_t c = kClocks[st.range(0)];
  timespec ts;
  for (auto _ : st) {
    real_gettime(c, &ts);
    benchmark::DoNotOptimize(ts);
  }
  st.SetLabel(kNames[st.range(0)]);
}

void BM_served(benchmark::State& st) {
  clockid_t c = kClocks[st.range(0)];
  timespec ts;
  for (auto _ : st) {
    clock_gettime(c, &ts);
    benchmark::DoNotOptimize(ts);
  }
  st.SetLabel(kNames[st.range(0)]);
}

void BM_real_gettimeofday(benchmark::State& st) {
  timeval tv;
  for (auto _ : st) {
    real_gettimeofday(&tv, nullptr);
    benchmark::DoNotOptimize(tv);
  }
}
void BM_served_gettimeofday(benchmark::State& st) {
  timeval tv;
  for (auto _ : st) {
    gettimeofday(&tv, nullptr);
    benchmark::DoNotOptimize(tv);
  }
}
void BM_real_time(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(real_time(nullptr));
}
void BM_served_time(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(time(nullptr));
}

}  // namespace

BENCHMARK(BM_real)->DenseRange(0, 5)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_served)->DenseRange(0, 5)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_real_gettimeofday)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_served_gettimeofday)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_real_time)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_served_time)->Repetitions(3)->ReportAggregatesOnly(true);

int main(int argc, char** argv) {
  real_gettime = reinterpret_cast<gettime_fn>(libc_symbol("clock_gettime"));
  real_gettimeofday = reinterpret_cast<gettimeofday_fn>(libc_symbol("gettimeofday"));
  real_time = reinterpret_cast<time_fn>(libc_symbol("time"));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
