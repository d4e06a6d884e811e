// TscClock: CLOCK_MONOTONIC, _RAW, REALTIME and BOOTTIME from the TSC, kept
// in step with the kernel's clocks. (The _COARSE clocks and time() are
// cheaper in the vDSO, which reads them without the TSC: they pass through.)
//
// Time is a line of the TSC, base + ((tsc - tsc0) * mult >> 32), re-anchored
// against the real clocks (the vDSO) about every millisecond by whichever
// caller first finds the anchor due. A new line is continuous with the old
// one at its switch point and corrects the error it measured over the next
// interval (slewing, never stepping), so NTP's slewing is followed and
// MONOTONIC never goes back. REALTIME and BOOTTIME are MONOTONIC plus the
// offsets the kernel keeps; a step of the realtime clock shows at the next
// anchor.
//
// Safe in any thread and in signal handlers, no system call on the fast
// path, never blocks (a caller waits a little, bounded, for an anchor another
// thread is making): the parameters are double-buffered; the anchoring caller
// writes the copy nobody reads and publishes it; a reader that raced with a
// publication retries.
//
// Used only where the TSC is trustworthy: constant and non-stop, and the
// kernel's own clocksource (which means the kernel found it synchronized
// across CPUs). Elsewhere every call goes to the real clock_gettime.
#pragma once

#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace xdpload::shim {

class TscClock {
 public:
  using RealFn = int (*)(clockid_t, timespec*);

  // enabled: the TSC is trusted and serving is wanted. real: the real call.
  // fenced: every read is ordered after the caller's earlier loads (lfence),
  // which makes time monotonic across threads; unfenced reads cost half as
  // much here but are monotonic across threads only beyond the few tens of
  // nanoseconds a load can still be in flight.
  void init(bool enabled, RealFn real, bool fenced = true);
  bool enabled() const { return enabled_; }

  // Fills *ts for a served clock and returns true (while calibrating, from the
  // real clock); false: not served (another clock id, or the real clock
  // failed) and the caller uses the real call.
  inline bool now(clockid_t id, timespec* ts);

  // Whether the TSC can be trusted, from /proc/cpuinfo's flags and the
  // kernel's current clocksource (paths given for tests).
  static bool tsc_trusted(const char* cpuinfo, const char* clocksource, std::string* why);

  // In a forked child (pthread_atfork): forgets an anchor another thread of
  // the parent was making.
  void after_fork_in_child();

  // Whether the calling thread is anchoring now (for tests: a fake real
  // clock that plays the anchoring thread's preemption).
  static bool anchoring_here();

  // Number of re-anchorings so far (a diagnostic for tests and the bench).
  uint64_t anchors() const { return anchors_.load(std::memory_order_relaxed); }
  // TSC ticks per millisecond once calibrated, 0 before or when the TSC is
  // not trusted: for throttles in spin loops, where an unordered rdtsc
  // (a few ns) stands in for a clock read.
  uint64_t ticks_per_ms() const {
    return enabled_ && active_.load(std::memory_order_relaxed) >= 0
               ? __atomic_load_n(&ticks_per_ms_, __ATOMIC_RELAXED)
               : 0;
  }

 private:
  static constexpr int kShift = 32;

  // One piece of a served clock: value(tsc) = base + ((tsc - tsc0) * mult >> 32).
  // The base is also kept split into seconds and nanoseconds, so that the
  // fast path adds instead of dividing.
  struct Line {
    uint64_t tsc0 = 0;
    int64_t base = 0;
    uint64_t mult = 0;
    int64_t base_sec = 0, base_nsec = 0;
    static Line make(uint64_t tsc0, int64_t base, uint64_t mult) {
      Line l;
      l.tsc0 = tsc0;
      l.base = base;
      l.mult = mult;
      l.base_sec = base / 1000000000;
      l.base_nsec = base % 1000000000;
      return l;
    }
    int64_t delta(uint64_t tsc) const {
      uint64_t d = tsc - tsc0;
      // The usual case, well under a second past the anchor: 64 bits suffice.
      if (d < (1ull << 31) && mult < (1ull << 32)) return int64_t((d * mult) >> kShift);
      // Signed: a line may be read a little before its tsc0.
      return int64_t((__int128)int64_t(d) * (__int128)mult >> kShift);
    }
    int64_t at(uint64_t tsc) const { return base + delta(tsc); }
  };
  // A served clock: `before` for TSC values before `switch_tsc`, `after` from
  // it on. `before` is the previous parameters' `after`, so readers of either
  // generation agree exactly until the switch.
  struct Piecewise {
    Line before, after;
    uint64_t switch_tsc = 0;
    const Line& line(uint64_t tsc) const { return tsc < switch_tsc ? before : after; }
    int64_t at(uint64_t tsc) const { return line(tsc).at(tsc); }
  };
  struct Params {
    std::atomic<uint32_t> seq{0};  // odd while written
    Piecewise mono;  // CLOCK_MONOTONIC
    Piecewise raw;   // CLOCK_MONOTONIC_RAW
    int64_t real_offset = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC
    int64_t boot_offset = 0;  // CLOCK_BOOTTIME - CLOCK_MONOTONIC
    int64_t real_offset_sec = 0, real_offset_nsec = 0, boot_offset_sec = 0, boot_offset_nsec = 0;
    uint64_t next_anchor_tsc = 0;
  };

  static uint64_t ordered_tsc() {
    // lfence: rdtsc must not be taken before the loads above it, the
    // caller's included (a time another thread published, say).
    _mm_lfence();
    return __rdtsc();
  }
  uint64_t read_tsc() const { return fenced_ ? ordered_tsc() : __rdtsc(); }
  // Fills *ts from parameters `p` at `tsc`; false for a clock not served.
  static bool fill(const Params& p, clockid_t id, uint64_t tsc, timespec* ts);
  bool slow_path(clockid_t id, timespec* ts);
  // Serves the published line at the current TSC, clamped to its end.
  bool serve_published(clockid_t id, timespec* ts);
  // Before the first line: the real clock answers, and what it answered is
  // noted so that the first line starts above it (see anchor()).
  bool serve_real_calibrating(clockid_t id, timespec* ts);
  void anchor();

  bool enabled_ = false;
  bool fenced_ = true;
  RealFn real_ = nullptr;
  Params params_[2];
  std::atomic<int> active_{-1};  // -1: not calibrated yet
  // The largest MONOTONIC, MONOTONIC_RAW and BOOTTIME values the real clock
  // answered while calibrating, and whether the first line is being drawn
  // from them: a Dekker pair, so that every real value handed out is either
  // seen by the anchor or served again from the line (serve_real_calibrating).
  enum { kMonoMax, kRawMax, kBootMax, kMaxes };
  std::atomic<int64_t> real_served_max_[kMaxes] = {};
  std::atomic<bool> drawing_first_{false};
  std::atomic<bool> anchoring_{false};
  std::atomic<uint64_t> anchors_{0};
  uint64_t ticks_per_ms_ = 0;
  // Calibration and rate estimation: a reference point and the latest anchor.
  struct Sample {
    uint64_t tsc = 0;
    int64_t mono = 0, raw = 0;
  };
  Sample first_{}, last_{};
  bool have_first_ = false;
  // The narrowest brackets seen (ticks): MONOTONIC, REALTIME, BOOTTIME.
  uint64_t min_width_[3] = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
};

inline bool TscClock::fill(const Params& p, clockid_t id, uint64_t tsc, timespec* ts) {
  const Line* l;
  int64_t off_sec = 0, off_nsec = 0;
  // The _COARSE clocks are not served: the vDSO reads them from the kernel's
  // data page without touching the TSC (about 3 ns here, a TSC read alone
  // costs 10), and their tick resolution is all they promise.
  switch (id) {
    case CLOCK_MONOTONIC: l = &p.mono.line(tsc); break;
    case CLOCK_REALTIME:
      l = &p.mono.line(tsc);
      off_sec = p.real_offset_sec;
      off_nsec = p.real_offset_nsec;
      break;
    case CLOCK_BOOTTIME:
      l = &p.mono.line(tsc);
      off_sec = p.boot_offset_sec;
      off_nsec = p.boot_offset_nsec;
      break;
    case CLOCK_MONOTONIC_RAW: l = &p.raw.line(tsc); break;
    default: return false;
  }
  int64_t sec = l->base_sec + off_sec;
  int64_t nsec = l->base_nsec + off_nsec + l->delta(tsc);
  while (nsec >= 1000000000) {
    nsec -= 1000000000;
    ++sec;
  }
  while (nsec < 0) {
    nsec += 1000000000;
    --sec;
  }
  ts->tv_sec = sec;
  ts->tv_nsec = nsec;
  return true;
}

inline bool TscClock::now(clockid_t id, timespec* ts) {
  // Another clock (a _COARSE one, CPU time): answered before any TSC read,
  // so that it costs what the real call costs and no more.
  if (!enabled_ || !(id == CLOCK_MONOTONIC || id == CLOCK_REALTIME || id == CLOCK_MONOTONIC_RAW ||
                     id == CLOCK_BOOTTIME))
    return false;
  for (;;) {
    int i = active_.load(std::memory_order_acquire);
    if (i < 0) return slow_path(id, ts);
    const Params& p = params_[i];
    uint32_t s = p.seq.load(std::memory_order_acquire);
    uint64_t tsc = read_tsc();
    if (tsc >= p.next_anchor_tsc) return slow_path(id, ts);
    timespec out;
    if (!fill(p, id, tsc, &out)) return false;
    // Valid only if nothing was published while we read.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (p.seq.load(std::memory_order_relaxed) == s &&
        active_.load(std::memory_order_relaxed) == i && !(s & 1)) {
      *ts = out;
      return true;
    }
  }
}

// The process-wide clock the intercepts serve from (a plain global: a
// function-local static would cost an initialization check per call).
extern TscClock g_served_clock;
inline TscClock& served_clock() { return g_served_clock; }

}  // namespace xdpload::shim
