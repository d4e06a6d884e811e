// Memory: pages that stay put (no swap, no THP compaction, no NUMA
// balancing faults), hugepages for the UMEM, the locked-memory limit the
// UMEM and --mlock need, and the interface on the CPUs' node.
#include <sstream>

#include "tools/tune/checks.h"

namespace xdpload::tune {

namespace {

// The selected word of a sysfs choice: "always [madvise] never" -> madvise.
std::string selected(const std::string& choices) {
  size_t open = choices.find('['), close = choices.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return choices.substr(open + 1, close - open - 1);
}

// A line of /proc/meminfo: "HugePages_Free:  12" -> 12.
std::optional<long long> meminfo(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    if (l.rfind(key + ":", 0) != 0) continue;
    return strtoll(l.c_str() + key.size() + 1, nullptr, 10);
  }
  return std::nullopt;
}

Check check_thp(const HostView& h) {
  Check c{"transparent_hugepages"};
  const std::string path = "/sys/kernel/mm/transparent_hugepage/enabled";
  auto v = h.line(path);
  if (!v) return unknown(c.name, "cannot read " + path);
  std::string mode = selected(*v);
  if (mode.empty()) return unknown(c.name, "cannot parse " + path + ": " + *v);
  c.found = "enabled = " + mode;
  if (mode != "always") {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ": every process's memory may be compacted into huge pages by khugepaged and at "
             "page faults, stalls of tens of microseconds";
  c.fix = "echo madvise > " + path;
  c.changes.push_back({path, "madvise", mode});
  return c;
}

Check check_hugepages(const HostView& h, const Target& t) {
  Check c{"hugepages"};
  auto text = h.read("/proc/meminfo");
  if (!text) return unknown(c.name, "cannot read /proc/meminfo");
  auto total = meminfo(*text, "HugePages_Total"), free = meminfo(*text, "HugePages_Free");
  auto size_kb = meminfo(*text, "Hugepagesize");
  if (!total || !free || !size_kb || *size_kb <= 0)
    return unknown(c.name, "no HugePages lines in /proc/meminfo");
  long long page = *size_kb * 1024;
  long long need = (long long)((t.umem_bytes + page - 1) / page);
  c.found = std::to_string(*free) + " of " + std::to_string(*total) + " " +
            std::to_string(*size_kb) + " kB pages free; the UMEM (" +
            std::to_string(t.umem_bytes >> 20) + " MiB) needs " + std::to_string(need);
  if (*free >= need) {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ": it goes on 4 KiB pages, a TLB miss more per frame touched";
  long long want = *total + need - *free;
  c.fix = "sysctl -w vm.nr_hugepages=" + std::to_string(want) +
          " (at boot: hugepages=" + std::to_string(want) + ")";
  if (auto now = h.number("/proc/sys/vm/nr_hugepages"))
    c.changes.push_back({"/proc/sys/vm/nr_hugepages", std::to_string(want), std::to_string(*now)});
  return c;
}

Check check_swap(const HostView& h) {
  Check c{"swap"};
  auto text = h.read("/proc/swaps");
  if (!text) return unknown(c.name, "cannot read /proc/swaps");
  std::istringstream in(*text);
  std::string l, devices;
  std::getline(in, l);  // the header
  while (std::getline(in, l)) {
    std::string dev = l.substr(0, l.find_first_of(" \t"));
    if (!dev.empty()) devices += (devices.empty() ? "" : ", ") + dev;
  }
  if (devices.empty()) {
    c.status = Status::Ok;
    c.found = "no swap";
    return c;
  }
  c.status = Status::Warn;
  c.found = "swap on " + devices + ": a page of the program's that was swapped out costs a disk read";
  c.fix = "swapoff -a, or lock the program's memory: xdpload --mlock";
  return c;
}

// Capabilities from a /proc/PID/status CapEff line.
bool has_capability(const std::string& status, int cap) {
  size_t at = status.find("CapEff:");
  if (at == std::string::npos) return false;
  unsigned long long bits = strtoull(status.c_str() + at + 7, nullptr, 16);
  return (bits >> cap) & 1;
}

Check check_memlock(const HostView& h, const Target& t) {
  Check c{"memlock"};
  auto limits = h.read("/proc/self/limits");
  auto status = h.read("/proc/self/status");
  if (!limits) return unknown(c.name, "cannot read /proc/self/limits");
  std::istringstream in(*limits);
  std::string l, soft;
  while (std::getline(in, l)) {
    if (l.rfind("Max locked memory", 0) != 0) continue;
    std::istringstream words(l.substr(17));
    words >> soft;
  }
  if (soft.empty()) return unknown(c.name, "no 'Max locked memory' in /proc/self/limits");
  constexpr int kCapIpcLock = 14;
  if (status && has_capability(*status, kCapIpcLock)) {
    c.status = Status::Ok;
    c.found = "CAP_IPC_LOCK: locked memory is not limited by RLIMIT_MEMLOCK";
    return c;
  }
  if (soft == "unlimited") {
    c.status = Status::Ok;
    c.found = "RLIMIT_MEMLOCK unlimited";
    return c;
  }
  unsigned long long bytes = strtoull(soft.c_str(), nullptr, 10);
  c.found = "RLIMIT_MEMLOCK " + std::to_string(bytes >> 10) + " KiB: xdpload --mlock needs it unlimited";
  // The UMEM and the rings count against it too (without CAP_IPC_LOCK).
  if (bytes < t.umem_bytes + (16ull << 20)) {
    c.status = Status::Fail;
    c.found += ", and the UMEM alone (" + std::to_string(t.umem_bytes >> 20) +
               " MiB) cannot be registered under it: acceleration will not start";
  } else {
    c.status = Status::Warn;
  }
  c.fix = "ulimit -l unlimited in the shell that starts the program (LimitMEMLOCK=infinity in a "
          "systemd unit; '* - memlock unlimited' in /etc/security/limits.conf)";
  return c;
}

Check check_numa_locality(const HostView& h, const Target& t) {
  Check c{"numa_locality"};
  auto online = h.line("/sys/devices/system/node/online");
  if (!online) return unknown(c.name, "cannot read /sys/devices/system/node/online");
  auto nodes = parse_cpu_list(*online);
  if (nodes && nodes->size() == 1) {
    c.status = Status::Ok;
    c.found = "one NUMA node";
    return c;
  }
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  auto node = h.number("/sys/class/net/" + t.iface + "/device/numa_node");
  if (!node || *node < 0)
    return unknown(c.name, t.iface + " reports no NUMA node (a virtual device?)");
  auto cpus = h.line("/sys/devices/system/node/node" + std::to_string(*node) + "/cpulist");
  auto local = cpus ? parse_cpu_list(*cpus) : std::nullopt;
  if (!local) return unknown(c.name, "cannot read node " + std::to_string(*node) + "'s CPUs");
  std::set<int> remote = minus(t.cpus, *local);
  if (remote.empty()) {
    c.status = Status::Ok;
    c.found = t.iface + " is on node " + std::to_string(*node) + ", as CPUs " + cpus_text(t);
    return c;
  }
  c.status = Status::Fail;
  c.found = t.iface + " is on node " + std::to_string(*node) + " (CPUs " + *cpus + "); CPUs " +
            cpu_list_text(remote) + " are not: every frame crosses the interconnect";
  c.fix = "run the program on node " + std::to_string(*node) + "'s CPUs: xdpload --cpu " + *cpus +
          " --numa auto";
  return c;
}

}  // namespace

std::vector<Check> check_memory(const HostView& h, const Target& t) {
  std::vector<Check> out;
  out.push_back(check_thp(h));
  out.push_back(check_hugepages(h, t));
  out.push_back(check_swap(h));
  out.push_back(check_memlock(h, t));
  {
    Check c{"numa_balancing"};
    auto v = h.number("/proc/sys/kernel/numa_balancing");
    if (!v) {
      c = unknown(c.name, "cannot read /proc/sys/kernel/numa_balancing");
    } else if (*v == 0) {
      c.status = Status::Ok;
      c.found = "kernel.numa_balancing = 0";
    } else {
      c.status = Status::Warn;
      c.found = "kernel.numa_balancing = " + std::to_string(*v) +
                ": the kernel unmaps the program's pages to see who touches them, a page fault each";
      c.fix = "sysctl -w kernel.numa_balancing=0";
      c.changes.push_back({"/proc/sys/kernel/numa_balancing", "0", std::to_string(*v)});
    }
    out.push_back(c);
  }
  out.push_back(check_numa_locality(h, t));
  return out;
}

}  // namespace xdpload::tune
