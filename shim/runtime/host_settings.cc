#include "shim/runtime/host_settings.h"

#include <dirent.h>
#include <linux/capability.h>
#include <linux/mempolicy.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rings/queue_list.h"
#include "shim/runtime/log.h"

namespace xdpload::shim {

namespace {

bool g_strict = false;
std::vector<std::string>* g_lines = nullptr;

// One line saying which setting the host refused and how to get it; the
// program goes on without it, unless XDPLOAD_STRICT=1.
__attribute__((format(printf, 1, 2))) void refuse(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (g_strict) {
    log_at(kLogError, "fatal: %s (XDPLOAD_STRICT=1)", line);
    exit(EXIT_FAILURE);
  }
  g_lines->push_back(line);
}

// The first line of a sysfs file, "" if there is none.
std::string first_line(const char* path) {
  FILE* f = fopen(path, "re");
  if (!f) return "";
  char buf[256] = {};
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  buf[strcspn(buf, "\n")] = 0;
  return buf;
}

// Is `n` in a kernel list such as "0-3,8"?
bool in_list(const std::string& list, long n) {
  const char* p = list.c_str();
  while (*p) {
    char* end = nullptr;
    long lo = strtol(p, &end, 10), hi = lo;
    if (end == p) return false;
    if (*end == '-') hi = strtol(end + 1, &end, 10);
    if (n >= lo && n <= hi) return true;
    if (*end != ',') break;
    p = end + 1;
  }
  return false;
}

bool has_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1;
}

std::string allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "?";
  std::vector<uint32_t> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(uint32_t(c));
  return rings::format_queue_list(cpus.data(), uint32_t(cpus.size()));
}

}  // namespace

int progress_rt_priority(int prio) { return prio < 99 ? prio + 1 : 99; }

void HostSettings::apply(const Config& c, bool strict, std::vector<std::string>* refusals) {
  c_ = &c;
  g_strict = strict;
  g_lines = refusals;
  apply_rt();
  apply_mlock();
  apply_numa(c.iface);
  check_progress_cpu();
  g_lines = nullptr;
}

// SCHED_FIFO for every thread the process has (at load time, normally the
// main thread alone); the threads it creates later inherit it, as do its
// children.
void HostSettings::apply_rt() {
  int prio = int(c_->rt_prio);
  if (prio == 0) return;
  sched_param sp{};
  sp.sched_priority = prio;
  int err = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      pid_t tid = pid_t(atoi(e->d_name));
      if (tid > 0 && sched_setscheduler(tid, SCHED_FIFO, &sp) != 0 && !err) err = errno;
    }
    closedir(d);
  } else if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
    err = errno;
  }
  if (err) {
    refuse("XDPLOAD_RT_PRIO=%d: SCHED_FIFO refused (%s): it needs CAP_SYS_NICE or RLIMIT_RTPRIO of "
           "at least %d (ulimit -r, LimitRTPRIO= in a systemd unit); running with the "
           "scheduling the program started with",
           prio, strerror(err), prio);
    return;
  }
  rt_on_ = true;
  XLOG(kLogInfo, "threads run SCHED_FIFO at priority %d, the progress thread at %d", prio,
       progress_rt_priority(prio));
}

// mlockall(MCL_FUTURE) under a finite RLIMIT_MEMLOCK would make the
// program's own allocations fail once it is reached: refused up front.
void HostSettings::apply_mlock() {
  if (!c_->mlock) return;
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && !has_cap(CAP_IPC_LOCK)) {
    refuse("XDPLOAD_MLOCK: RLIMIT_MEMLOCK is %llu KiB, and locking all present and future memory "
           "would make the program's allocations fail past it: raise it to unlimited (ulimit -l "
           "unlimited, LimitMEMLOCK=infinity in a systemd unit) or grant CAP_IPC_LOCK; memory not "
           "locked",
           (unsigned long long)(rl.rlim_cur / 1024));
    return;
  }
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    refuse("XDPLOAD_MLOCK: mlockall failed (%s); memory not locked", strerror(errno));
    return;
  }
  mlock_on_ = true;
  XLOG(kLogInfo, "memory locked (mlockall)");
}

void HostSettings::apply_numa(const std::string& iface) {
  int node = c_->numa_node;
  if (node == Config::kNumaOff) return;
  std::string online = first_line("/sys/devices/system/node/online");
  if (node == Config::kNumaAuto) {
    std::string from_dev;
    if (!iface.empty()) {
      std::string path = "/sys/class/net/" + iface + "/device/numa_node";
      from_dev = first_line(path.c_str());
    }
    node = from_dev.empty() ? -1 : atoi(from_dev.c_str());
    if (node < 0) {
      // One node: there is nowhere else for the memory to be.
      if (online == "0" || online.empty()) {
        XLOG(kLogDecision, "XDPLOAD_NUMA=auto: one NUMA node, nothing to place");
        return;
      }
      refuse("XDPLOAD_NUMA=auto: %s has no NUMA node (%s); give the node (--numa N, nodes %s); "
             "memory left where the kernel puts it",
             iface.empty() ? "no interface" : iface.c_str(),
             iface.empty() ? "XDPLOAD_IFACE is unset" : "a virtual device?", online.c_str());
      return;
    }
  }
  std::string with_memory = first_line("/sys/devices/system/node/has_memory");
  if (with_memory.empty()) with_memory = online;
  if (!in_list(with_memory, node)) {
    refuse("XDPLOAD_NUMA=%d: no NUMA node %d with memory on this machine (nodes %s); memory left "
           "where the kernel puts it",
           node, node, with_memory.empty() ? "unknown" : with_memory.c_str());
    return;
  }
  unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {};
  mask[node / (8 * sizeof(unsigned long))] = 1UL << (node % (8 * sizeof(unsigned long)));
  if (syscall(SYS_set_mempolicy, MPOL_BIND, mask, 1024) != 0) {
    refuse("XDPLOAD_NUMA=%d: set_mempolicy failed (%s); memory left where the kernel puts it",
           node, strerror(errno));
    return;
  }
  // What the process has already touched (libraries, the stack) moves too;
  // best effort: a page another process maps stays.
  unsigned long from[1024 / (8 * sizeof(unsigned long))] = {};
  for (long n = 0; n < 1023; ++n)
    if (in_list(online.empty() ? with_memory : online, n))
      from[n / (8 * sizeof(unsigned long))] |= 1UL << (n % (8 * sizeof(unsigned long)));
  syscall(SYS_migrate_pages, 0, 1024, from, mask);
  numa_node_ = node;
  XLOG(kLogInfo, "memory and UMEM bound to NUMA node %d", node);
}

// Against the online CPUs, not the process's affinity: `xdpload --cpu 2
// --progress-cpu 3` narrows the program to CPU 2 and puts the progress
// thread beside it. A CPU its cpuset forbids is said when the thread starts.
void HostSettings::check_progress_cpu() {
  int cpu = int(c_->progress_cpu);
  if (cpu < 0) return;
  std::string online = first_line("/sys/devices/system/cpu/online");
  if (online.empty()) online = allowed_cpus();
  if (cpu >= CPU_SETSIZE || !in_list(online, cpu)) {
    refuse("XDPLOAD_PROGRESS_CPU=%d: no such CPU online (CPUs %s); the progress thread runs "
           "where the program's threads do",
           cpu, online.c_str());
    return;
  }
  cpu_ok_ = true;
}

void HostSettings::after_fork() {
  // Locks and MCL_FUTURE are the parent's alone (mlockall(2)). Locked as
  // they are touched: the child has the parent's mappings, the 4 GiB family
  // arena among them, open for writing by now, which MCL_CURRENT would
  // fill.
  if (mlock_on_) mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
}

void HostSettings::place_progress_thread() {
  // Named, so that top -H, ps -L and chrt -p show which thread it is.
  pthread_setname_np(pthread_self(), "xdpload-bg");
  if (!c_) return;
  if (cpu_ok_) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(int(c_->progress_cpu), &set);
    if (int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set))
      XLOG(kLogError,
           "XDPLOAD_PROGRESS_CPU=%d: cannot pin the progress thread there (%s: its cpuset?); it "
           "runs where the program's threads do",
           int(c_->progress_cpu), strerror(err));
  }
  if (rt_on_) {
    sched_param sp{};
    sp.sched_priority = progress_rt_priority(int(c_->rt_prio));
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      XLOG(kLogError, "progress thread: SCHED_FIFO %d refused (%s)", sp.sched_priority,
           strerror(errno));
  }
}

}  // namespace xdpload::shim
