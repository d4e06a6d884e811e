// TscClock on its own: the trust check, pass-through when not trusted, and
// against a fake "real" clock that slews and steps, that the served clock
// follows without ever going back.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "shim/clock/tsc_clock.h"

using xdpload::shim::TscClock;

namespace {

int64_t ns(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

std::string write_file(const char* name, const char* text) {
  std::string path = std::string("/tmp/tsc_clock_test.") + std::to_string(getpid()) + "." + name;
  FILE* f = fopen(path.c_str(), "w");
  fputs(text, f);
  fclose(f);
  return path;
}

// A "real" clock that runs at `rate` relative to CLOCK_MONOTONIC (NTP
// slewing), with a realtime offset tests can step.
std::atomic<double> g_rate{1.0};
std::atomic<int64_t> g_real_offset{1700000000ll * 1000000000};
int64_t g_origin = 0;
int64_t g_base = 0;  // fake time at g_origin

int64_t fake_mono() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return g_base + int64_t(double(ns(t) - g_origin) * g_rate.load());
}

int fake_clock(clockid_t id, timespec* ts) {
  int64_t v = fake_mono();
  if (id == CLOCK_REALTIME) v += g_real_offset.load();
  else if (id == CLOCK_BOOTTIME) v += 5000000000ll;
  ts->tv_sec = v / 1000000000;
  ts->tv_nsec = v % 1000000000;
  return 0;
}

// Starts the fake clock afresh at `base`, running at the real rate.
void reset_fake_clock(int64_t base) {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  g_origin = ns(t);
  g_base = base;
  g_rate = 1.0;
}

// Re-bases the fake clock so that a rate change does not jump it.
void set_rate(double r) {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  g_base = fake_mono();
  g_origin = ns(t);
  g_rate = r;
}

}  // namespace

TEST(TscClock, TrustNeedsConstantNonstopTscAndTheKernelsClocksource) {
  std::string why;
  auto good_cpu = write_file("cpu", "processor : 0\nflags : fpu tsc constant_tsc nonstop_tsc rdtscp\n");
  auto bad_cpu = write_file("cpu2", "processor : 0\nflags : fpu tsc rdtscp\n");
  auto tsc = write_file("src", "tsc\n");
  auto hpet = write_file("src2", "hpet\n");
  EXPECT_TRUE(TscClock::tsc_trusted(good_cpu.c_str(), tsc.c_str(), &why)) << why;
  EXPECT_FALSE(TscClock::tsc_trusted(bad_cpu.c_str(), tsc.c_str(), &why));
  EXPECT_NE(why.find("not constant and non-stop"), std::string::npos) << why;
  EXPECT_FALSE(TscClock::tsc_trusted(good_cpu.c_str(), hpet.c_str(), &why));
  EXPECT_NE(why.find("hpet"), std::string::npos) << why;
  EXPECT_FALSE(TscClock::tsc_trusted("/nonexistent", tsc.c_str(), &why));
  for (auto& p : {good_cpu, bad_cpu, tsc, hpet}) unlink(p.c_str());
}

TEST(TscClock, NotTrustedServesNothing) {
  TscClock c;
  c.init(false, clock_gettime);
  timespec ts;
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(c.now(CLOCK_MONOTONIC, &ts));
  EXPECT_EQ(c.anchors(), 0u);
}

TEST(TscClock, OtherClockIdsAreNotServed) {
  TscClock c;
  c.init(true, clock_gettime);
  timespec ts;
  // Calibration needs a millisecond between two anchors.
  c.now(CLOCK_MONOTONIC, &ts);
  usleep(1500);
  for (int i = 0; i < 100; ++i) c.now(CLOCK_MONOTONIC, &ts);
  EXPECT_FALSE(c.now(CLOCK_PROCESS_CPUTIME_ID, &ts));
  EXPECT_FALSE(c.now(CLOCK_THREAD_CPUTIME_ID, &ts));
  EXPECT_FALSE(c.now(CLOCK_TAI, &ts));
  // Cheaper in the vDSO than any TSC read: left to it.
  EXPECT_FALSE(c.now(CLOCK_MONOTONIC_COARSE, &ts));
  EXPECT_FALSE(c.now(CLOCK_REALTIME_COARSE, &ts));
  EXPECT_TRUE(c.now(CLOCK_MONOTONIC, &ts));
}

TEST(TscClock, FollowsSlewingAndStepsNeverBackwards) {
  timespec t;
  reset_fake_clock(100000000000ll);
  TscClock c;
  c.init(true, fake_clock);
  // Calibration: the real clock answers until the TSC line is drawn (about
  // a millisecond); from then on every read is served.
  while (!c.now(CLOCK_MONOTONIC, &t)) {
  }
  long served = 0;
  // Served minus the fake clock read on both sides, from a sample whose
  // two fake reads are within 2 us of each other: a preempted sample says
  // nothing and is taken again, never accepted. A read not served fails.
  auto error_now = [&](clockid_t id) -> int64_t {
    for (int tries = 0; tries < 1000; ++tries) {
      timespec a, b, s;
      fake_clock(id, &a);
      bool ok = c.now(id, &s);
      fake_clock(id, &b);
      if (!ok) {
        ADD_FAILURE() << "a read after calibration was not served";
        return INT64_MAX / 2;
      }
      if (ns(b) - ns(a) > 2000) continue;
      ++served;
      return ns(s) - (ns(a) + ns(b)) / 2;
    }
    ADD_FAILURE() << "no sample with a tight bracket in 1000 tries";
    return INT64_MAX / 2;
  };
  // Reads until the clock has anchored `n` more times (about 1 ms apart),
  // never going back; the worst error seen.
  int64_t last = 0;
  auto run = [&](uint64_t n, int64_t* worst) {
    *worst = 0;
    const uint64_t end = c.anchors() + n;
    while (c.anchors() < end) {
      timespec v;
      ASSERT_TRUE(c.now(CLOCK_MONOTONIC, &v));
      ASSERT_GE(ns(v), last) << "went backwards";
      last = ns(v);
      int64_t e = error_now(CLOCK_MONOTONIC);
      if (std::abs(e) > *worst) *worst = std::abs(e);
    }
  };
  // Calibrated, then slewed 400 ppm fast: once the rate's baseline (64 ms,
  // as many anchors) has moved past the change, the served clock follows
  // to a microsecond or two.
  int64_t worst;
  run(100, &worst);
  EXPECT_LT(worst, 2000) << "not following the steady clock";
  set_rate(1.0 + 400e-6);
  run(64, &worst);  // converging
  run(200, &worst);
  EXPECT_LT(worst, 2000) << "not following 400 ppm slewing";
  // A +3 s step of the realtime clock shows after the next anchor; two are
  // waited for, counted rather than timed.
  g_real_offset += 3000000000ll;
  const uint64_t after_step = c.anchors() + 2;
  while (c.anchors() < after_step) error_now(CLOCK_REALTIME);
  EXPECT_LT(std::abs(error_now(CLOCK_REALTIME)), 5000);
  EXPECT_LT(std::abs(error_now(CLOCK_MONOTONIC)), 5000);
  EXPECT_GT(served, 1000);
}

TEST(TscClock, ManyThreadsNeverSeeTimeGoBack) {
  TscClock c;
  c.init(true, clock_gettime);
  std::atomic<int64_t> latest{0};
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, served{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      int64_t mine = 0;
      long n = 0, mine_served = 0;
      while (!stop) {
        int64_t seen = latest.load(std::memory_order_acquire);
        timespec v;
        if (c.now(CLOCK_MONOTONIC, &v)) ++mine_served;
        else clock_gettime(CLOCK_MONOTONIC, &v);
        int64_t now = ns(v);
        if (now < seen || now < mine) ++bad;
        mine = now;
        int64_t cur = seen;
        while (cur < now && !latest.compare_exchange_weak(cur, now)) {
        }
        if ((++n & 0x3ffff) == 0) usleep(1500);
      }
      served += mine_served;
      reads += n;
    });
  usleep(1500000);
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  // The served clock, not the real one, answered nearly all of them (all
  // but those of the first millisecond, calibrating): a clock that never
  // served would pass the monotonic check above on the real clock alone.
  EXPECT_GT(served.load(), reads.load() * 9 / 10) << served.load() << " of " << reads.load();
  EXPECT_GT(c.anchors(), 100u);
}

namespace {
// A "real" clock whose reads made while anchoring are preempted just after
// the time is taken, as a loaded machine does now and then: the TSC read
// that closes a sample's bracket comes `g_preempt_us` later, and the
// sample's midpoint is later than the time it holds.
std::atomic<int> g_preempt_us{0};
std::atomic<bool> g_preempted_now{false};  // a thread sleeps in an anchor
int preempted_clock(clockid_t id, timespec* ts) {
  int rc = fake_clock(id, ts);
  if (TscClock::anchoring_here() && g_preempt_us.load()) {
    g_preempted_now = true;
    usleep(g_preempt_us.load());
    g_preempted_now = false;
  }
  return rc;
}
}  // namespace

// Threads that take the real clock while the TSC line is being drawn (the
// first anchor, and one after every thread was asleep for longer than an
// anchor's interval) and threads that read the line must agree: no value
// below one already served, however late the anchor's sample was.
TEST(TscClock, PreemptedAnchorsNeverTakeTimeBack) {
  reset_fake_clock(200000000000ll);
  g_preempt_us = 300;
  TscClock c;
  c.init(true, preempted_clock);
  std::atomic<int64_t> latest{0};
  std::atomic<bool> stop{false}, pause{false};
  std::atomic<int> paused{0};
  std::atomic<long> bad{0}, served{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      int64_t mine = 0;
      while (!stop) {
        if (pause) {
          ++paused;
          while (pause) usleep(100);
          --paused;
        }
        int64_t seen = latest.load(std::memory_order_acquire);
        timespec v;
        if (c.now(CLOCK_MONOTONIC, &v)) ++served;
        else preempted_clock(CLOCK_MONOTONIC, &v);
        int64_t now = ns(v);
        if (now < seen || now < mine) ++bad;
        mine = now;
        int64_t cur = seen;
        while (cur < now && !latest.compare_exchange_weak(cur, now)) {
        }
      }
    });
  usleep(200000);
  // Everyone asleep for 3 ms: the next anchor restarts the line after a
  // long pause, from another preempted sample.
  for (int round = 0; round < 20; ++round) {
    pause = true;
    while (paused.load() < 4) usleep(50);
    usleep(3000);
    pause = false;
    usleep(20000);
  }
  stop = true;
  for (auto& th : threads) th.join();
  g_preempt_us = 0;
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(served.load(), 1000);
  EXPECT_GT(c.anchors(), 20u);
}

// fork() while another thread anchors: that thread does not exist in the
// child, whose clock must still move on once after_fork_in_child() ran (the
// runtime calls it from pthread_atfork). Without it the child's clock stops
// at the end of the parent's last line, for good.
TEST(TscClock, ForkDuringAnAnchorLeavesTheChildsClockRunning) {
  timespec t;
  reset_fake_clock(300000000000ll);
  g_preempt_us = 0;
  TscClock c;
  c.init(true, preempted_clock);
  while (!c.now(CLOCK_MONOTONIC, &t) || c.anchors() < 3) {
  }
  // From now on an anchor takes over 100 ms (each real read "preempted").
  g_preempt_us = 30000;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) c.now(CLOCK_MONOTONIC, &t);
  });
  // Fork while the reader sleeps inside an anchor.
  while (!g_preempted_now) usleep(100);
  pid_t pid = fork();
  if (pid == 0) {
    g_preempt_us = 0;
    c.after_fork_in_child();
    alarm(20);
    timespec a, b;
    c.now(CLOCK_MONOTONIC, &a);
    usleep(30000);
    c.now(CLOCK_MONOTONIC, &b);
    _exit(ns(b) - ns(a) >= 20000000 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  stop = true;
  reader.join();
  g_preempt_us = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's clock stood still";
}

namespace {
// A "real" clock whose REALTIME and BOOTTIME reads, in every other anchor,
// are preempted just before the time is taken: that anchor's estimate of
// their offsets from MONOTONIC is too high by about half the preemption,
// the next one's is right. (Anchors are counted by their first read, of
// MONOTONIC.)
std::atomic<bool> g_offset_noise{false};
std::atomic<unsigned> g_anchor_reads{0};
int offset_noisy_clock(clockid_t id, timespec* ts) {
  if (TscClock::anchoring_here() && g_offset_noise) {
    static thread_local unsigned attempt = 0;
    static thread_local clockid_t last_id = -1;
    if (id == CLOCK_MONOTONIC && last_id != CLOCK_MONOTONIC) attempt = g_anchor_reads++;
    last_id = id;
    if ((id == CLOCK_REALTIME || id == CLOCK_BOOTTIME) && attempt % 2 == 0) usleep(200);
  }
  return fake_clock(id, ts);
}
}  // namespace

// REALTIME and BOOTTIME are MONOTONIC plus offsets that change only when the
// clock is stepped (NTP slews all three alike): an anchor's noisy estimate
// of an offset must not take them back, while a real step still shows.
TEST(TscClock, NoisyOffsetEstimatesNeverTakeRealtimeBack) {
  timespec t;
  reset_fake_clock(400000000000ll);
  TscClock c;
  g_offset_noise = true;
  c.init(true, offset_noisy_clock);
  while (!c.now(CLOCK_MONOTONIC, &t) || c.anchors() < 3) {
  }
  // Two threads: while one anchors (asleep in its noisy reads), the other
  // reads on, across the publication.
  std::atomic<long> back[2] = {0, 0};
  std::atomic<long> reads{0};
  const clockid_t ids[2] = {CLOCK_REALTIME, CLOCK_BOOTTIME};
  const uint64_t end = c.anchors() + 300;
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] {
      int64_t last[2] = {0, 0};
      long n = 0;
      while (c.anchors() < end) {
        for (int k = 0; k < 2; ++k) {
          timespec v;
          if (!c.now(ids[k], &v)) continue;
          if (ns(v) < last[k]) ++back[k];
          last[k] = ns(v);
        }
        ++n;
      }
      reads += n;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(back[0].load(), 0) << "REALTIME went back " << back[0] << " times in " << reads << " reads";
  EXPECT_EQ(back[1].load(), 0) << "BOOTTIME went back " << back[1] << " times";
  // Steps of the realtime clock show at the next anchor with a tight sample
  // (half of them here; some brackets are also interrupted for real): 50 ms
  // forward, 50 ms back (REALTIME is not monotonic: settimeofday, a leap
  // second), and a small step back (100 us: chrony's makestep can be any
  // size), not worked off over seconds.
  // (How far the served clock is from the real one after 10 anchors.)
  auto step_shows = [&](int64_t step) {
    g_real_offset += step;
    const uint64_t after = c.anchors() + 10;
    while (c.anchors() < after) c.now(CLOCK_REALTIME, &t);
    timespec real, served;
    fake_clock(CLOCK_REALTIME, &real);
    c.now(CLOCK_REALTIME, &served);
    return std::abs(ns(served) - ns(real));
  };
  EXPECT_LT(step_shows(50000000), 2000000) << "the step did not show";
  EXPECT_LT(step_shows(-50000000), 2000000) << "the step back did not show";
  EXPECT_LT(step_shows(-100000), 20000) << "the small step back did not show";
  g_offset_noise = false;
}
