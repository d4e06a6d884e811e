// The checks of `xdpload tune`: each looks at one thing on the host that
// shows in a latency-sensitive program's tail, says what it found, a verdict
// and the exact command or boot parameter that fixes it.
//
// A check never changes anything; what --apply may change is listed in its
// `changes`: runtime settings only (sysctls, sysfs files), each with the
// value to put back. Boot parameters, services and ethtool settings are
// printed, never applied.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "tools/tune/host_view.h"

namespace xdpload::tune {

enum class Status { Ok, Warn, Fail, Unknown };
const char* status_name(Status s);

struct Change {
  std::string path;   // as on a real host: /proc/sys/kernel/timer_migration
  std::string value;  // what --apply writes
  std::string old;    // what the undo file writes back
};

struct Check {
  std::string name;
  Status status = Status::Unknown;
  std::string found;
  std::string fix;  // empty when there is nothing to do
  std::vector<Change> changes;
};

// What the checks are about.
struct Target {
  std::string iface;         // "" when there is none
  std::string iface_source;  // "--iface", "XDPLOAD_IFACE", "the default route"
  std::set<int> cpus;
  std::string cpus_source;   // "--cpu", "the isolated CPUs", ...
  unsigned long long umem_bytes = 0;
};

// In the order they are printed; names are stable (scripts read --json).
std::vector<Check> check_cpus(const HostView& h, const Target& t);
std::vector<Check> check_memory(const HostView& h, const Target& t);
std::vector<Check> check_network(const HostView& h, const Target& t);

// Helpers the checks share.
Check unknown(const std::string& name, const std::string& found);
std::string sysfs_cpu(int cpu, const std::string& rest);  // /sys/devices/system/cpu/cpuN/rest
// "1 (default ...)": the target CPUs as the checks print them.
std::string cpus_text(const Target& t);
bool subset(const std::set<int>& a, const std::set<int>& b);
std::set<int> minus(const std::set<int>& a, const std::set<int>& b);
// The kernel command line's value for `param` ("isolcpus=1-3" -> "1-3"),
// nullopt when absent.
std::optional<std::string> cmdline_param(const std::string& cmdline, const std::string& param);
// The fix for a boot parameter.
std::string boot_fix(const std::string& params);

}  // namespace xdpload::tune
