// libFuzzer harness: the XDPLOAD_* environment parser (what profiles, the
// wrapper's flags and users set) over arbitrary values. Each input line
// sets one variable: its first byte picks the option (or, past the table, a
// misspelt name), the rest is the value. parse_config() accepts the set or
// refuses it with a reason, never crashes; an accepted one is coherent.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rings/port_counters.h"
#include "shim/runtime/config.h"

using namespace xdpload;
using namespace xdpload::shim;

extern char** environ;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clearenv();
  const auto& table = option_table();
  size_t i = 0;
  while (i < size) {
    size_t end = i;
    while (end < size && data[end] != '\n') ++end;
    if (end > i) {
      uint8_t pick = data[i];
      std::string value(reinterpret_cast<const char*>(data) + i + 1, end - i - 1);
      if (value.find('\0') != std::string::npos) value.resize(value.find('\0'));
      std::string name = pick < table.size() * 2 ? option_env_name(table[pick % table.size()].field)
                                                  : "XDPLOAD_" + std::to_string(pick);
      setenv(name.c_str(), value.c_str(), 1);
    }
    i = end + 1;
  }
  Config config;
  std::vector<std::string> warnings;
  ErrorText why;
  int rc = parse_config(environ, &config, &warnings, &why);
  if (rc != 0) {
    if (rc != -EINVAL || why.empty() || !memchr(why.text, 0, sizeof why.text)) abort();
    return 0;
  }
  if (config.ring_size & (config.ring_size - 1)) abort();
  for (size_t q = 0; q < config.queue_list.size(); ++q)
    if (config.queue_list[q] >= rings::kMaxQueues || (q && config.queue_list[q] <= config.queue_list[q - 1]))
      abort();
  return 0;
}
