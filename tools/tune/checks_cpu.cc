// The CPUs the program runs on: isolated from the scheduler, the tick, RCU
// callbacks and timers, at full frequency, without deep idle states; and
// the TSC xdpload serves time from.
#include <cctype>
#include <cstdlib>

#include "shim/clock/tsc_clock.h"
#include "tools/tune/checks.h"

namespace xdpload::tune {

namespace {

const char* kCpuDir = "/sys/devices/system/cpu";

// isolcpus=managed_irq,domain,1-3: the CPUs are what follows the flags.
std::string without_flags(std::string list) {
  while (!list.empty() && !isdigit(static_cast<unsigned char>(list[0]))) {
    size_t comma = list.find(',');
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  return list;
}

Check check_online(const HostView& h, const Target& t) {
  Check c{"cpus"};
  auto online = h.line(std::string(kCpuDir) + "/online");
  auto set = online ? parse_cpu_list(*online) : std::nullopt;
  if (!set) return unknown(c.name, "cannot read " + std::string(kCpuDir) + "/online");
  std::set<int> offline = minus(t.cpus, *set);
  if (t.cpus.empty() || !offline.empty()) {
    c.status = Status::Fail;
    c.found = "CPUs " + cpus_text(t) + ": " +
              (t.cpus.empty() ? std::string("none") : cpu_list_text(offline) + " not online") +
              " (online: " + *online + ")";
    c.fix = "xdpload tune --cpu LIST and xdpload --cpu LIST with CPUs among " + *online;
    return c;
  }
  c.status = Status::Ok;
  c.found = "CPUs " + cpus_text(t) + ", online: " + *online;
  return c;
}

// isolcpus and nohz_full: a CPU list in sysfs, the command line as a
// fallback (a kernel older than the sysfs file).
Check check_cpu_list_param(const HostView& h, const Target& t, const std::string& name,
                           const std::string& sysfs, const std::string& why_it_matters) {
  Check c{name};
  std::optional<std::set<int>> have;
  if (auto text = h.line(std::string(kCpuDir) + "/" + sysfs)) {
    have = *text == "(null)" ? std::set<int>{} : parse_cpu_list(*text);
  } else if (auto cmdline = h.line("/proc/cmdline")) {
    auto v = cmdline_param(*cmdline, name);
    have = v ? parse_cpu_list(without_flags(*v)) : std::set<int>{};
  } else {
    return unknown(name, "cannot read " + std::string(kCpuDir) + "/" + sysfs + " or /proc/cmdline");
  }
  if (!have) return unknown(name, "cannot parse the " + name + " CPU list");
  std::set<int> missing = minus(t.cpus, *have);
  if (missing.empty() && !t.cpus.empty()) {
    c.status = Status::Ok;
    c.found = "CPUs " + cpus_text(t) + " are " + name + " (" + cpu_list_text(*have) + ")";
    return c;
  }
  c.status = Status::Warn;
  c.found = "CPUs " + cpu_list_text(missing) + " not " + name + " (" + name + ": " +
            (have->empty() ? "none" : cpu_list_text(*have)) + "): " + why_it_matters;
  c.fix = boot_fix(name + "=" + cpu_list_text(t.cpus));
  return c;
}

Check check_rcu_nocbs(const HostView& h, const Target& t) {
  Check c{"rcu_nocbs"};
  auto cmdline = h.line("/proc/cmdline");
  if (!cmdline) return unknown(c.name, "cannot read /proc/cmdline");
  // nohz_full= implies rcu_nocbs= for its CPUs.
  std::set<int> have;
  auto all = h.line(std::string(kCpuDir) + "/possible");
  for (const char* param : {"rcu_nocbs", "nohz_full"}) {
    auto v = cmdline_param(*cmdline, param);
    if (!v) continue;
    if (*v == "all" && all) v = *all;
    if (auto set = parse_cpu_list(*v)) have.insert(set->begin(), set->end());
  }
  std::set<int> missing = minus(t.cpus, have);
  if (missing.empty() && !t.cpus.empty()) {
    c.status = Status::Ok;
    c.found = "RCU callbacks of CPUs " + cpus_text(t) + " run elsewhere (rcu_nocbs/nohz_full: " +
              cpu_list_text(have) + ")";
    return c;
  }
  c.status = Status::Warn;
  c.found = "CPUs " + cpu_list_text(missing) +
            " run their own RCU callbacks (softirq work between the program's instructions)";
  c.fix = boot_fix("rcu_nocbs=" + cpu_list_text(t.cpus));
  return c;
}

Check check_governor(const HostView& h, const Target& t) {
  Check c{"cpu_governor"};
  std::string slow, seen;
  bool any = false;
  for (int cpu : t.cpus) {
    auto gov = h.line(sysfs_cpu(cpu, "cpufreq/scaling_governor"));
    if (!gov) continue;
    any = true;
    seen += (seen.empty() ? "" : ", ") + std::string("cpu") + std::to_string(cpu) + " " + *gov;
    if (*gov == "performance") continue;
    slow += " " + std::to_string(cpu);
    auto avail = h.line(sysfs_cpu(cpu, "cpufreq/scaling_available_governors"));
    if (avail && (" " + *avail + " ").find(" performance ") != std::string::npos)
      c.changes.push_back({sysfs_cpu(cpu, "cpufreq/scaling_governor"), "performance", *gov});
  }
  if (!any)
    return unknown(c.name, "no cpufreq in sysfs for CPUs " + cpus_text(t) +
                               ": this kernel does not scale their frequency (a VM, or fixed "
                               "in firmware)");
  if (slow.empty()) {
    c.status = Status::Ok;
    c.found = seen;
    return c;
  }
  c.status = Status::Warn;
  c.found = seen + ": a CPU that clocks down between messages answers the next one slower";
  for (int cpu : t.cpus)
    if (h.exists(sysfs_cpu(cpu, "cpufreq/scaling_governor")))
      c.fix += (c.fix.empty() ? "" : "; ") + std::string("echo performance > ") +
               sysfs_cpu(cpu, "cpufreq/scaling_governor");
  return c;
}

// Idle states whose exit latency is above this are deep: waking from them
// shows in every round trip that finds the CPU idle.
constexpr long long kShallowExitUs = 2;

Check check_idle(const HostView& h, const Target& t) {
  Check c{"cpu_idle"};
  std::string deep, shallow;
  bool any = false;
  for (int cpu : t.cpus) {
    for (const std::string& state : h.list(sysfs_cpu(cpu, "cpuidle"))) {
      if (state.rfind("state", 0) != 0) continue;
      std::string dir = sysfs_cpu(cpu, "cpuidle/" + state);
      auto name = h.line(dir + "/name");
      auto latency = h.number(dir + "/latency");
      auto disabled = h.number(dir + "/disable");
      if (!name || !latency || !disabled) continue;
      any = true;
      std::string what = "cpu" + std::to_string(cpu) + " " + *name + " (" +
                         std::to_string(*latency) + " us)";
      if (*disabled) continue;
      if (*latency <= kShallowExitUs) {
        shallow += (shallow.empty() ? "" : ", ") + what;
        continue;
      }
      deep += (deep.empty() ? "" : ", ") + what;
      c.changes.push_back({dir + "/disable", "1", "0"});
      c.fix += (c.fix.empty() ? "" : "; ") + std::string("echo 1 > ") + dir + "/disable";
    }
  }
  if (!any) {
    auto driver = h.line(std::string(kCpuDir) + "/cpuidle/current_driver");
    return unknown(c.name, "no cpuidle states in sysfs for CPUs " + cpus_text(t) +
                               (driver ? " (cpuidle driver " + *driver + ")" : ""));
  }
  if (deep.empty()) {
    c.status = Status::Ok;
    c.found = "enabled idle states exit within " + std::to_string(kShallowExitUs) +
              " us: " + (shallow.empty() ? std::string("none") : shallow);
    return c;
  }
  c.status = Status::Warn;
  c.found = "deep idle states enabled: " + deep + ": a message that finds the CPU there waits for it to wake";
  c.fix += " (or at boot: processor.max_cstate=1 intel_idle.max_cstate=0)";
  return c;
}

// A sysctl whose healthy value is `good`.
Check check_sysctl(const HostView& h, const std::string& name, const std::string& key,
                   long long good, const std::string& why_bad, bool apply) {
  Check c{name};
  std::string path = "/proc/sys/" + key;
  for (char& ch : path)
    if (ch == '.') ch = '/';
  auto v = h.number(path);
  if (!v) return unknown(name, "cannot read " + path);
  c.found = key + " = " + std::to_string(*v);
  if (*v == good) {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ": " + why_bad;
  c.fix = "sysctl -w " + key + "=" + std::to_string(good);
  if (apply) c.changes.push_back({path, std::to_string(good), std::to_string(*v)});
  return c;
}

Check check_tsc(const HostView& h) {
  Check c{"tsc"};
  std::string source_path = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
  if (!h.exists("/proc/cpuinfo") || !h.exists(source_path))
    return unknown(c.name, "cannot read /proc/cpuinfo or " + source_path);
  std::string why;
  if (shim::TscClock::tsc_trusted(h.real("/proc/cpuinfo").c_str(), h.real(source_path).c_str(),
                                  &why)) {
    c.status = Status::Ok;
    c.found = "constant, non-stop TSC, the kernel's clocksource: xdpload serves clock_gettime from it";
    return c;
  }
  c.status = Status::Warn;
  c.found = why + ": xdpload serves clock_gettime from the vDSO instead (about twice the cost)";
  c.fix = "on a VM, give the guest an invariant TSC (KVM: -cpu host,+invtsc); on hardware, "
          "check the BIOS and tsc=reliable";
  return c;
}

}  // namespace

std::vector<Check> check_cpus(const HostView& h, const Target& t) {
  std::vector<Check> out;
  out.push_back(check_online(h, t));
  out.push_back(check_cpu_list_param(h, t, "isolcpus", "isolated",
                                     "the scheduler may run other tasks there"));
  out.push_back(check_cpu_list_param(h, t, "nohz_full", "nohz_full",
                                     "the scheduler tick interrupts them every few ms"));
  out.push_back(check_rcu_nocbs(h, t));
  out.push_back(check_governor(h, t));
  out.push_back(check_idle(h, t));
  out.push_back(check_sysctl(h, "timer_migration", "kernel.timer_migration", 0,
                             "timers of other CPUs may be moved to the program's", true));
  out.push_back(check_sysctl(h, "nmi_watchdog", "kernel.nmi_watchdog", 0,
                             "a perf NMI visits every CPU every few seconds", true));
  {
    // Not applied: with it off, a spinning SCHED_FIFO thread can starve its
    // CPU's kernel threads forever; do it only with isolated CPUs.
    Check rt = check_sysctl(h, "sched_rt_runtime", "kernel.sched_rt_runtime_us", -1,
                            "a SCHED_FIFO thread (xdpload --rt) that never sleeps is stopped "
                            "for up to 50 ms of each second when another task wants its CPU",
                            false);
    if (rt.status == Status::Warn) rt.fix += " (with isolated CPUs only: a spinning real-time thread then never gives way)";
    out.push_back(rt);
  }
  out.push_back(check_tsc(h));
  return out;
}

}  // namespace xdpload::tune
