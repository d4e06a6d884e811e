#include "tools/tune/checks.h"

#include <algorithm>

namespace xdpload::tune {

const char* status_name(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::Warn: return "warn";
    case Status::Fail: return "fail";
    case Status::Unknown: return "unknown";
  }
  return "unknown";
}

Check unknown(const std::string& name, const std::string& found) {
  Check c{name};
  c.status = Status::Unknown;
  c.found = found;
  return c;
}

std::string sysfs_cpu(int cpu, const std::string& rest) {
  return "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/" + rest;
}

std::string cpus_text(const Target& t) { return t.cpus.empty() ? "(none)" : cpu_list_text(t.cpus); }

bool subset(const std::set<int>& a, const std::set<int>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

std::set<int> minus(const std::set<int>& a, const std::set<int>& b) {
  std::set<int> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

std::optional<std::string> cmdline_param(const std::string& cmdline, const std::string& param) {
  // The last one wins, as in the kernel; "--" ends the kernel's part.
  std::optional<std::string> value;
  size_t pos = 0;
  while (pos < cmdline.size()) {
    size_t end = cmdline.find(' ', pos);
    if (end == std::string::npos) end = cmdline.size();
    std::string word = cmdline.substr(pos, end - pos);
    pos = end + 1;
    if (word == "--") break;
    if (word.rfind(param + "=", 0) == 0) value = word.substr(param.size() + 1);
  }
  return value;
}

std::string boot_fix(const std::string& params) {
  return "boot with " + params +
         " (add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot)";
}

}  // namespace xdpload::tune
