#include "shim/clock/tsc_clock.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace xdpload::shim {

namespace {

constexpr int64_t kNsPerMs = 1000000;
// Largest rate correction applied in one interval: 500 ppm, NTP's own
// limit, so that a bad sample cannot bend the clock.
constexpr double kMaxCorrection = 500e-6;
// Errors beyond this are not slewed away: the line restarts at the real
// value (forward only for the monotonic clocks).
constexpr int64_t kJumpNs = 1000000;

// Set while this thread anchors: a signal handler that interrupts it must
// not wait for the anchor it interrupted.
thread_local bool t_anchoring = false;
// How long a caller waits for another thread's anchor before serving the
// end of the current line (the anchoring thread was preempted).
constexpr uint64_t kWaitTicks = 100000;

int64_t to_ns(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

// A bracket this narrow (about 0.3 us here, a vDSO read taking 20-40 ns)
// places its read within a fraction of a microsecond: only such samples
// re-estimate the realtime and boot offsets.
constexpr uint64_t kTightTicks = 1000;

// What a tight bracket is on this machine, for a clock whose narrowest
// bracket so far is `narrowest`: kTightTicks, or a few times the narrowest
// where that clock is slower to read (a system call rather than the vDSO).
uint64_t tight_ticks(uint64_t narrowest) {
  if (narrowest == UINT64_MAX) return kTightTicks;  // (none seen yet)
  return std::max(kTightTicks, 4 * narrowest);
}

// A real clock read bracketed by two TSC reads; the TSC at its middle. An
// interrupt or preemption inside the bracket leaves the middle far from the
// moment the clock was read: the narrowest of a few tries is kept, and a
// try narrower than `enough` ends them.
bool bracketed(TscClock::RealFn real, clockid_t id, uint64_t* tsc, int64_t* ns,
               uint64_t* width = nullptr, uint64_t enough = 20000) {
  uint64_t best_width = UINT64_MAX;
  for (int tries = 0; tries < 4; ++tries) {
    timespec t;
    _mm_lfence();
    uint64_t a = __rdtsc();
    if (real(id, &t) != 0) return false;
    _mm_lfence();
    uint64_t b = __rdtsc();
    if (b - a < best_width) {
      best_width = b - a;
      *tsc = a + (b - a) / 2;
      *ns = to_ns(t);
    }
    if (b - a < enough) break;
  }
  if (width) *width = best_width;
  return true;
}

// A fall of an offset beyond this, measured from tight samples, is a step of
// the realtime clock, not their noise.
constexpr int64_t kStepBackNs = 5000;

uint64_t mult_for(double ns_per_tick) { return uint64_t(ns_per_tick * double(1ull << 32)); }

}  // namespace

// constinit: no dynamic initializer, which would run after our own
// constructor (priority 101) and reset the clock it set up.
constinit TscClock g_served_clock;

bool TscClock::tsc_trusted(const char* cpuinfo, const char* clocksource, std::string* why) {
  FILE* f = fopen(cpuinfo, "re");
  if (!f) {
    *why = std::string("cannot read ") + cpuinfo;
    return false;
  }
  char line[8192];
  bool constant = false, nonstop = false, found_flags = false;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "flags", 5) != 0) continue;
    found_flags = true;
    constant = strstr(line, " constant_tsc") != nullptr;
    nonstop = strstr(line, " nonstop_tsc") != nullptr;
    break;
  }
  fclose(f);
  if (!found_flags || !constant || !nonstop) {
    *why = "the CPU's TSC is not constant and non-stop";
    return false;
  }
  f = fopen(clocksource, "re");
  if (!f) {
    *why = std::string("cannot read ") + clocksource;
    return false;
  }
  char src[64] = {};
  bool ok = fgets(src, sizeof src, f) != nullptr;
  fclose(f);
  src[strcspn(src, "\n")] = 0;
  if (!ok || strcmp(src, "tsc") != 0) {
    *why = std::string("the kernel's clocksource is ") + (ok ? src : "unknown") + ", not tsc";
    return false;
  }
  return true;
}

bool TscClock::anchoring_here() { return t_anchoring; }

void TscClock::init(bool enabled, RealFn real, bool fenced) {
  real_ = real;
  fenced_ = fenced;
  enabled_ = enabled && real;
}

void TscClock::after_fork_in_child() {
  // Another thread of the parent may have been anchoring: it does not exist
  // here, and would otherwise leave the flags set and a copy odd for good.
  if (t_anchoring) return;
  anchoring_.store(false, std::memory_order_relaxed);
  if (active_.load(std::memory_order_relaxed) < 0) drawing_first_.store(false, std::memory_order_relaxed);
  for (Params& p : params_) {
    uint32_t s = p.seq.load(std::memory_order_relaxed);
    if (s & 1) p.seq.store(s + 1, std::memory_order_relaxed);
  }
}

bool TscClock::slow_path(clockid_t id, timespec* ts) {
  // Whoever finds the anchor due takes it; everyone else waits a little for
  // it, then carries on with what is published (or the real clock, while
  // calibrating).
  bool expected = false;
  if (anchoring_.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
    t_anchoring = true;
    // Still due? Another thread may have anchored since this one looked:
    // a second anchor now would switch lines before the end of the first.
    int i = active_.load(std::memory_order_acquire);
    if (i < 0 || read_tsc() >= params_[i].next_anchor_tsc) anchor();
    t_anchoring = false;
    anchoring_.store(false, std::memory_order_release);
  } else if (!t_anchoring) {
    // Another thread anchors (a few hundred nanoseconds): wait for it,
    // within bounds, rather than serve a stale line.
    uint64_t give_up = __rdtsc() + kWaitTicks;
    while (anchoring_.load(std::memory_order_acquire) && __rdtsc() < give_up) _mm_pause();
  }
  if (active_.load(std::memory_order_acquire) < 0) return serve_real_calibrating(id, ts);
  return serve_published(id, ts);
}

bool TscClock::serve_published(clockid_t id, timespec* ts) {
  // Serve from what is published now. If the anchor is still not done, time
  // stays at the end of the current line: stale, but never ahead of what is
  // served after it.
  for (;;) {
    int i = active_.load(std::memory_order_acquire);
    const Params& p = params_[i];
    uint32_t s = p.seq.load(std::memory_order_acquire);
    uint64_t tsc = read_tsc();
    if (tsc > p.next_anchor_tsc) tsc = p.next_anchor_tsc;
    timespec out;
    if (!fill(p, id, tsc, &out)) return false;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (p.seq.load(std::memory_order_relaxed) != s || active_.load(std::memory_order_relaxed) != i ||
        (s & 1))
      continue;
    *ts = out;
    return true;
  }
}

bool TscClock::serve_real_calibrating(clockid_t id, timespec* ts) {
  timespec v;
  if (real_(id, &v) != 0) return false;  // the caller's own call gives the errno
  int k = id == CLOCK_MONOTONIC ? kMonoMax
        : id == CLOCK_MONOTONIC_RAW ? kRawMax
        : id == CLOCK_BOOTTIME ? kBootMax : -1;
  if (k >= 0) {
    // Noted, then the check that the first line is not being drawn: if it
    // is, the anchor may have read the maxima before this value was noted,
    // and the line (not yet published) may start below it. The value is then
    // never handed out: the line answers, once published. (A signal handler
    // interrupting the anchoring thread itself cannot wait for it, and is
    // answered by the real clock: the one read that may be above the line.)
    int64_t n = to_ns(v);
    int64_t cur = real_served_max_[k].load(std::memory_order_relaxed);
    while (cur < n && !real_served_max_[k].compare_exchange_weak(cur, n, std::memory_order_relaxed)) {
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (drawing_first_.load(std::memory_order_relaxed) && !t_anchoring) {
      // The anchor is a few reads away from publishing, unless its thread
      // was preempted: spin, then sleep a little (a yield would not let a
      // lower-priority anchoring thread run under SCHED_FIFO). Bounded: an
      // anchoring thread stopped for good (a debugger) costs each caller a
      // few milliseconds and the real clock's answer, never a hang.
      for (int spins = 0; active_.load(std::memory_order_acquire) < 0; ++spins) {
        if (spins < 1000) {
          _mm_pause();
        } else if (spins < 1040) {
          // (The system call: libc's nanosleep is a cancellation point, which
          // clock_gettime is not; errno is the caller's.)
          timespec pause{0, 50000};
          const int saved = errno;
          syscall(SYS_nanosleep, &pause, nullptr);
          errno = saved;
        } else {
          *ts = v;
          return true;
        }
      }
      return serve_published(id, ts);
    }
  }
  *ts = v;
  return true;
}

void TscClock::anchor() {
  Sample now;
  uint64_t t_real, t_boot;
  int64_t real_ns, boot_ns;
  uint64_t w_mono, w_real, w_boot;
  // The clocks whose tightness counts are tried again while a try is not
  // tight (the first read of an anchor often is not: its cache lines are
  // cold after a millisecond of other work, 2000 ticks against 130 here).
  if (!bracketed(real_, CLOCK_MONOTONIC, &now.tsc, &now.mono, &w_mono, tight_ticks(min_width_[0])))
    return;
  uint64_t t_raw;
  if (!bracketed(real_, CLOCK_MONOTONIC_RAW, &t_raw, &now.raw)) return;
  if (!bracketed(real_, CLOCK_REALTIME, &t_real, &real_ns, &w_real, tight_ticks(min_width_[1])))
    return;
  if (!bracketed(real_, CLOCK_BOOTTIME, &t_boot, &boot_ns, &w_boot, tight_ticks(min_width_[2])))
    return;

  if (!have_first_) {
    first_ = last_ = now;
    have_first_ = true;
    return;  // one point gives no rate: keep using the real clock
  }
  int active = active_.load(std::memory_order_relaxed);
  // Calibration: a millisecond of baseline before serving anything.
  if (active < 0 && now.mono - first_.mono < kNsPerMs) return;
  // Tight by this machine's measure (tight_ticks), for each clock.
  auto tight = [](uint64_t w, uint64_t* narrowest) {
    *narrowest = std::min(*narrowest, w);
    return w < tight_ticks(*narrowest);
  };
  const bool mono_tight = tight(w_mono, &min_width_[0]);
  const bool real_tight = mono_tight && tight(w_real, &min_width_[1]);
  const bool boot_tight = mono_tight && tight(w_boot, &min_width_[2]);
  // The first line's offsets stand until a step or a tighter sample: they
  // are taken from tight brackets only (the real clock answers meanwhile).
  if (active < 0 && !(real_tight && boot_tight)) return;

  // The rate over the longest baseline that still follows slewing: from the
  // reference point, which moves forward once it is over 64 ms old.
  double ns_per_tick = double(now.mono - first_.mono) / double(now.tsc - first_.tsc);
  double raw_per_tick = double(now.raw - first_.raw) / double(now.tsc - first_.tsc);
  if (now.mono - first_.mono > 64 * kNsPerMs) first_ = last_;
  last_ = now;
  __atomic_store_n(&ticks_per_ms_, uint64_t(1e6 / ns_per_tick), __ATOMIC_RELAXED);
  // Offsets of REALTIME and BOOTTIME from MONOTONIC at the same instant.
  int64_t real_offset = real_ns - (now.mono + int64_t(double(int64_t(t_real - now.tsc)) * ns_per_tick));
  int64_t boot_offset = boot_ns - (now.mono + int64_t(double(int64_t(t_boot - now.tsc)) * ns_per_tick));

  // The first line follows values read from the real clock by other
  // callers: it must not start below what the real clock answered while
  // calibrating. The sample just taken may be late (its bracket preempted),
  // and callers may have read the real clock since. From here on, a
  // calibrating caller that reads the real clock waits for the line instead.
  int64_t floor_mono = INT64_MIN, floor_raw = INT64_MIN;
  if (active < 0) {
    drawing_first_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    floor_mono = std::max(real_served_max_[kMonoMax].load(std::memory_order_relaxed),
                          real_served_max_[kBootMax].load(std::memory_order_relaxed) - boot_offset);
    floor_raw = real_served_max_[kRawMax].load(std::memory_order_relaxed);
  }
  // The new lines start a little in the future, so that no reader can see
  // the new parameters with a TSC value past the switch before they exist;
  // readers see them once published, after this TSC value. The first line's
  // switch is 1 us away, and it is flat before it.
  const uint64_t visible_from = ordered_tsc();
  uint64_t switch_tsc = visible_from + (active < 0 ? ticks_per_ms_ / 1000 : ticks_per_ms_ / 100);
  uint64_t next = switch_tsc + ticks_per_ms_;
  auto next_line = [&](const Piecewise* old, uint64_t old_end, int64_t real_at_now, double rate,
                       int64_t floor, Piecewise* out) {
    int64_t real_at_switch = real_at_now + int64_t(double(switch_tsc - now.tsc) * rate);
    if (!old) {
      int64_t base = std::max(real_at_switch, floor);
      Line flat = Line::make(switch_tsc, base, 0);
      Line l = Line::make(switch_tsc, base, mult_for(rate));
      *out = Piecewise{flat, l, switch_tsc};
      return;
    }
    uint64_t mult = mult_for(rate);
    int64_t base;
    if (switch_tsc > old_end + ticks_per_ms_) {
      // A long pause without calls: the old line was never served past its
      // end (callers wait for the anchor). Restart on the real clock, never
      // below what was served, and cover the time before the switch too
      // (readers see the line from now on): with the line itself where it
      // stays above what was served, else a ramp (a late sample can put the
      // real clock's estimate near the old line's end).
      int64_t served_max = old->at(old_end);
      base = real_at_switch > served_max ? real_at_switch : served_max;
      Line l = Line::make(switch_tsc, base, mult);
      if (l.at(visible_from) >= served_max) {
        *out = Piecewise{l, l, switch_tsc};
      } else {
        // From the old line's end, when readers first see it, to the new
        // line's base at the switch: never below, never ahead.
        uint64_t span = switch_tsc - visible_from;
        uint64_t rise = uint64_t(base - served_max);
        Line ramp = Line::make(visible_from, served_max,
                               span ? uint64_t(((unsigned __int128)rise << kShift) / span) : 0);
        *out = Piecewise{ramp, l, switch_tsc};
      }
      return;
    }
    int64_t ours_at_switch = old->at(switch_tsc);
    int64_t err = real_at_switch - ours_at_switch;
    base = ours_at_switch;
    if (err > kJumpNs) {
      base = real_at_switch;  // far behind: catch up at once (forward)
    } else {
      // Slew: reach the real clock by the next anchor.
      double correction = double(err) / (double(ticks_per_ms_) * rate);
      if (correction > kMaxCorrection) correction = kMaxCorrection;
      if (correction < -kMaxCorrection) correction = -kMaxCorrection;
      mult = mult_for(rate * (1.0 + correction));
    }
    *out = Piecewise{old->after, Line::make(switch_tsc, base, mult), switch_tsc};
  };

  int target = active < 0 ? 0 : 1 - active;
  Params& p = params_[target];
  // Odd while written: a reader that started on this copy two publications
  // ago notices and retries.
  p.seq.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const Params* old = active < 0 ? nullptr : &params_[active];
  uint64_t old_end = old ? old->next_anchor_tsc : 0;
  next_line(old ? &old->mono : nullptr, old_end, now.mono, ns_per_tick, floor_mono, &p.mono);
  next_line(old ? &old->raw : nullptr, old_end, now.raw, raw_per_tick, floor_raw, &p.raw);
  // REALTIME and BOOTTIME are MONOTONIC plus offsets that change only when
  // the clock is stepped or the machine suspended (NTP slews all three
  // alike), but each anchor estimates them anew, with its brackets' noise:
  // a wrong estimate, then a right one, would take them back at a switch.
  // - Only a tight sample re-estimates an offset; a loose one (its bracket
  //   interrupted) keeps the old, so that every offset in use is within a
  //   fraction of a microsecond (the first line waits for a tight sample).
  // - A tight estimate lower by more than kStepBackNs is the realtime clock
  //   stepped back (settimeofday, a leap second): taken at once, as Linux
  //   shows it; so is any step forward.
  // - A lower one within kStepBackNs is noise: the offset falls by at most
  //   what MONOTONIC gained between the old line's last value and the new
  //   line's first, so that nothing served before is above what is served
  //   after.
  // BOOTTIME's offset only grows in the kernel (suspend): never a step back.
  if (old) {
    const int64_t gained = std::max<int64_t>(0, p.mono.at(visible_from) - old->mono.at(old_end));
    const int64_t real_change = real_offset - old->real_offset;
    if (!real_tight) real_offset = old->real_offset;
    else if (real_change > -kStepBackNs && real_change < 0)
      real_offset = std::max(real_offset, old->real_offset - gained);
    if (!boot_tight) boot_offset = old->boot_offset;
    else boot_offset = std::max(boot_offset, old->boot_offset - gained);
  }
  p.real_offset = real_offset;
  p.boot_offset = boot_offset;
  p.real_offset_sec = real_offset / 1000000000;
  p.real_offset_nsec = real_offset % 1000000000;
  p.boot_offset_sec = boot_offset / 1000000000;
  p.boot_offset_nsec = boot_offset % 1000000000;
  p.next_anchor_tsc = next;
  p.seq.fetch_add(1, std::memory_order_release);
  active_.store(target, std::memory_order_release);
  anchors_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace xdpload::shim
