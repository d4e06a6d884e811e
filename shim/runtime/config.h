// Config: the XDPLOAD_* environment, parsed and checked once at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rings/error_text.h"

namespace xdpload::shim {

enum class OptionKind { Int, Bool, Str, Enum };

struct OptionInfo {
  const char* field;
  OptionKind kind;
  const char* def;  // Enum: "a|b|c", the first is the default
  int64_t min, max;
  const char* doc;
};
const std::vector<OptionInfo>& option_table();
// "XDPLOAD_SPIN_USEC" for "spin_usec".
std::string option_env_name(const char* field);

struct Config {
#define XDPLOAD_OPTION_Int int64_t
#define XDPLOAD_OPTION_Bool bool
#define XDPLOAD_OPTION_Str std::string
#define XDPLOAD_OPTION_Enum int
#define XDPLOAD_OPTION(F, K, D, LO, HI, DOC) XDPLOAD_OPTION_##K F{};
#include "shim/runtime/options.def"
#undef XDPLOAD_OPTION

  // XDPLOAD_QUEUES parsed: ascending queue numbers, empty for all.
  std::vector<uint32_t> queue_list;

  // XDPLOAD_NUMA parsed: kNumaOff, kNumaAuto or a node number.
  static constexpr int kNumaOff = -2, kNumaAuto = -1;
  int numa_node = kNumaOff;

  // Names (XDPLOAD_X=value) of the options set to a non-default value.
  std::vector<std::string> non_default;
};

// Reads the environment. A bad value is an error (-EINVAL, with the reason);
// unknown XDPLOAD_* variables are reported in `warnings` with the closest
// valid name.
int parse_config(char** environ_vars, Config* out, std::vector<std::string>* warnings,
                 ErrorText* why);

}  // namespace xdpload::shim
