/* clock_check: the served clock (clock_gettime as the program sees it, under
 * the preload) against the real one (libc's own clock_gettime, looked up in
 * libc.so.6 itself, which reads the vDSO).
 *
 *   clock_check monotonic SECONDS THREADS   never backwards, within a thread
 *                                           and across threads
 *   clock_check accuracy SECONDS            |served - real| distribution for
 *                                           REALTIME and MONOTONIC
 *   clock_check step                        a +2 s step of CLOCK_REALTIME
 *                                           (then restored) shows in the
 *                                           served REALTIME; MONOTONIC not
 *   clock_check errors                      unknown ids, bad pointers: what
 *                                           happens (compared with and
 *                                           without the preload)
 * Exit 0 when the expectation holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*gettime_fn)(clockid_t, struct timespec*);
static gettime_fn real_gettime;

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }
static int64_t served(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return ns_of(t);
}
static int64_t real(clockid_t c) {
  struct timespec t;
  real_gettime(c, &t);
  return ns_of(t);
}

/* ---- monotonic ---- */
static _Atomic int64_t latest;
static _Atomic int stop;
static _Atomic long violations, reads;

static void* mono_thread(void* arg) {
  (void)arg;
  int64_t prev_mine = 0;
  long n = 0, bad = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    /* Whatever another thread published was read from the clock before it
     * was published, so before our read: ours cannot be smaller. */
    int64_t published = atomic_load_explicit(&latest, memory_order_acquire);
    int64_t now = served(CLOCK_MONOTONIC);
    if (now < published || now < prev_mine) ++bad;
    prev_mine = now;
    int64_t cur = published;
    while (cur < now &&
           !atomic_compare_exchange_weak_explicit(&latest, &cur, now, memory_order_release,
                                                  memory_order_acquire)) {
    }
    ++n;
    /* Now and then a pause, so that anchors happen after idle time too. */
    if ((n & 0xfffff) == 0) usleep(2000 + rand() % 3000);
  }
  atomic_fetch_add(&violations, bad);
  atomic_fetch_add(&reads, n);
  return NULL;
}

static int monotonic(int seconds, int threads) {
  pthread_t t[64];
  if (threads > 64) threads = 64;
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, mono_thread, NULL);
  sleep(seconds);
  atomic_store(&stop, 1);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  printf("monotonic: %d threads, %ld reads, %ld went backwards\n", threads, (long)reads,
         (long)violations);
  return violations == 0 && reads > 1000 ? 0 : 1;
}

/* ---- accuracy ---- */
#define BUCKETS 100001 /* 0..100 us in 1 ns steps, the last: beyond */
static uint32_t* hist[2];

static int accuracy(int seconds) {
  clockid_t ids[2] = {CLOCK_REALTIME, CLOCK_MONOTONIC};
  const char* names[2] = {"REALTIME", "MONOTONIC"};
  for (int k = 0; k < 2; ++k) hist[k] = calloc(BUCKETS, sizeof(uint32_t));
  long samples[2] = {0, 0}, discarded = 0;
  int64_t worst[2] = {0, 0};
  int64_t end = real(CLOCK_MONOTONIC) + (int64_t)seconds * 1000000000;
  long round = 0;
  while (real(CLOCK_MONOTONIC) < end) {
    for (int k = 0; k < 2; ++k) {
      int64_t r1 = real(ids[k]);
      int64_t s = served(ids[k]);
      int64_t r2 = real(ids[k]);
      /* Preempted in between: the bracket says nothing. */
      if (r2 - r1 > 2000) {
        ++discarded;
        continue;
      }
      int64_t d = s - (r1 + r2) / 2;
      if (d < 0) d = -d;
      if (d > worst[k]) worst[k] = d;
      ++hist[k][d < BUCKETS - 1 ? d : BUCKETS - 1];
      ++samples[k];
    }
    /* Bursts and pauses: the clock must hold across both. */
    if (++round % 20000 == 0) usleep(rand() % 5000);
  }
  int ok = 1;
  for (int k = 0; k < 2; ++k) {
    long want50 = samples[k] / 2, want999 = samples[k] - samples[k] / 1000, acc = 0;
    long p50 = -1, p999 = -1;
    for (long b = 0; b < BUCKETS; ++b) {
      acc += hist[k][b];
      if (p50 < 0 && acc >= want50) p50 = b;
      if (p999 < 0 && acc >= want999) p999 = b;
    }
    printf("accuracy %s: %ld samples, |served - real| p50 %ld ns, p99.9 %ld ns, max %lld ns\n",
           names[k], samples[k], p50, p999, (long long)worst[k]);
    if (p999 > 1000 || worst[k] > 10000 || samples[k] < 1000) ok = 0;
  }
  printf("accuracy: %ld samples discarded (preempted)\n", discarded);
  return ok ? 0 : 1;
}

/* ---- a step of the realtime clock ---- */
static int step(void) {
  const int64_t jump = 2000000000; /* +2 s */
  /* Warm the served clock up. */
  for (int i = 0; i < 1000; ++i) served(CLOCK_REALTIME);
  usleep(5000);
  int64_t mono_before = served(CLOCK_MONOTONIC);
  int64_t real_mono_before = real(CLOCK_MONOTONIC);
  struct timespec target;
  int64_t now = real(CLOCK_REALTIME) + jump;
  target.tv_sec = now / 1000000000;
  target.tv_nsec = now % 1000000000;
  if (clock_settime(CLOCK_REALTIME, &target) != 0) {
    perror("clock_settime");
    return 77;
  }
  /* How soon the served clock follows is a figure for bench/ (events), not
   * a pass mark; the 10 s bound only makes sure the clock is stepped back
   * even if it never follows. */
  int64_t t0 = real(CLOCK_MONOTONIC), seen_after = -1;
  while (real(CLOCK_MONOTONIC) - t0 < 10000000000ll) {
    int64_t d = real(CLOCK_REALTIME) - served(CLOCK_REALTIME);
    if (d < 1000000 && d > -1000000) {
      seen_after = real(CLOCK_MONOTONIC) - t0;
      break;
    }
  }
  int64_t mono_after = served(CLOCK_MONOTONIC);
  int64_t real_mono_after = real(CLOCK_MONOTONIC);
  /* Restore: the same step back. */
  now = real(CLOCK_REALTIME) - jump;
  target.tv_sec = now / 1000000000;
  target.tv_nsec = now % 1000000000;
  clock_settime(CLOCK_REALTIME, &target);
  int64_t mono_drift = (mono_after - mono_before) - (real_mono_after - real_mono_before);
  printf("step: served REALTIME followed the +2 s step after %.3f ms; MONOTONIC moved %+lld ns "
         "relative to the real one\n",
         seen_after / 1e6, (long long)mono_drift);
  return seen_after >= 0 && mono_drift < 100000 && mono_drift > -100000
             ? 0
             : 1;
}

/* ---- errors ---- */
static void one_case(const char* name, int which) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct timespec ts;
    struct timeval tv;
    int r = 0;
    errno = 0;
    switch (which) {
      case 0: r = clock_gettime((clockid_t)99, &ts); break;
      case 1: r = clock_gettime((clockid_t)-5, &ts); break; /* a CPU clock of a bad pid */
      case 2: r = clock_gettime(CLOCK_MONOTONIC, (struct timespec*)16); break;
      case 3: r = clock_gettime(CLOCK_REALTIME, (struct timespec*)16); break;
      case 4: r = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, (struct timespec*)16); break;
      case 5: r = gettimeofday((struct timeval*)16, NULL); break;
      case 6: r = (int)time((time_t*)16); break;
      case 7: r = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); break;
      case 8: r = gettimeofday(&tv, NULL); break;
    }
    printf("%-44s %s\n", name, r < 0 ? strerrorname_np(errno) : "ok");
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) printf("%-44s killed by %s\n", name, sigabbrev_np(WTERMSIG(status)));
}

static int errors(void) {
  one_case("clock_gettime(99)", 0);
  one_case("clock_gettime(CPU clock of no process)", 1);
  one_case("clock_gettime(MONOTONIC, bad pointer)", 2);
  one_case("clock_gettime(REALTIME, bad pointer)", 3);
  one_case("clock_gettime(PROCESS_CPUTIME, bad pointer)", 4);
  one_case("gettimeofday(bad pointer)", 5);
  one_case("time(bad pointer)", 6);
  one_case("clock_gettime(THREAD_CPUTIME)", 7);
  one_case("gettimeofday", 8);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  real_gettime = libc ? (gettime_fn)dlsym(libc, "clock_gettime") : NULL;
  if (!real_gettime) {
    fprintf(stderr, "cannot find libc's clock_gettime\n");
    return 2;
  }
  if (argc >= 4 && !strcmp(argv[1], "monotonic")) return monotonic(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 3 && !strcmp(argv[1], "accuracy")) return accuracy(atoi(argv[2]));
  if (argc >= 2 && !strcmp(argv[1], "step")) return step();
  if (argc >= 2 && !strcmp(argv[1], "errors")) return errors();
  fprintf(stderr, "usage: see the comment at the top of clock_check.c\n");
  return 2;
}
