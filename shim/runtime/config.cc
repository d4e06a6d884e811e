#include "shim/runtime/config.h"

#include "rings/queue_list.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace xdpload::shim {

const std::vector<OptionInfo>& option_table() {
  static const std::vector<OptionInfo> table = {
#define XDPLOAD_OPTION(F, K, D, LO, HI, DOC) {#F, OptionKind::K, D, LO, HI, DOC},
#include "shim/runtime/options.def"
#undef XDPLOAD_OPTION
  };
  return table;
}

std::string option_env_name(const char* field) {
  std::string s = "XDPLOAD_";
  for (const char* p = field; *p; ++p) s += char(toupper(static_cast<unsigned char>(*p)));
  return s;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

bool parse_bool(const char* v, bool* out) {
  static const char* yes[] = {"1", "yes", "on", "true"};
  static const char* no[] = {"0", "no", "off", "false"};
  for (const char* y : yes)
    if (!strcasecmp(v, y)) return *out = true, true;
  for (const char* n : no)
    if (!strcasecmp(v, n)) return *out = false, true;
  return false;
}

// Enum words of "a|b|c".
std::vector<std::string> enum_words(const char* def) {
  std::vector<std::string> words;
  std::string w;
  for (const char* p = def;; ++p) {
    if (*p == '|' || !*p) {
      words.push_back(w);
      w.clear();
      if (!*p) break;
    } else {
      w += *p;
    }
  }
  return words;
}

// Parses `text` for option `o` into `dst`; false with a reason on error.
template <typename T>
bool parse_value(const OptionInfo& o, const char* text, T* dst, ErrorText* why);

bool parse_into(const OptionInfo& o, const char* text, int64_t* dst, ErrorText* why) {
  char* end = nullptr;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (!*text || *end || errno) {
    why->set(EINVAL, "%s=%s is not a whole number (%lld..%lld)", option_env_name(o.field).c_str(),
             text, (long long)o.min, (long long)o.max);
    return false;
  }
  if (v < o.min || v > o.max) {
    why->set(EINVAL, "%s=%s is out of range (%lld..%lld)", option_env_name(o.field).c_str(), text,
             (long long)o.min, (long long)o.max);
    return false;
  }
  *dst = v;
  return true;
}
bool parse_into(const OptionInfo& o, const char* text, bool* dst, ErrorText* why) {
  if (parse_bool(text, dst)) return true;
  why->set(EINVAL, "%s=%s is not a yes/no value (1/0, yes/no, on/off, true/false)",
           option_env_name(o.field).c_str(), text);
  return false;
}
bool parse_into(const OptionInfo&, const char* text, std::string* dst, ErrorText*) {
  *dst = text;
  return true;
}
bool parse_into(const OptionInfo& o, const char* text, int* dst, ErrorText* why) {
  auto words = enum_words(o.def);
  for (size_t i = 0; i < words.size(); ++i)
    if (words[i] == text) return *dst = int(i), true;
  why->set(EINVAL, "%s=%s is not one of %s", option_env_name(o.field).c_str(), text, o.def);
  return false;
}

void set_default(const OptionInfo& o, int64_t* dst) { *dst = strtoll(o.def, nullptr, 10); }
void set_default(const OptionInfo& o, bool* dst) { parse_bool(o.def, dst); }
void set_default(const OptionInfo& o, std::string* dst) { *dst = o.def; }
void set_default(const OptionInfo&, int* dst) { *dst = 0; }

bool is_default(const OptionInfo& o, int64_t v) { return v == strtoll(o.def, nullptr, 10); }
bool is_default(const OptionInfo& o, bool v) {
  bool d = false;
  parse_bool(o.def, &d);
  return v == d;
}
bool is_default(const OptionInfo& o, const std::string& v) { return v == o.def; }
bool is_default(const OptionInfo&, int v) { return v == 0; }

}  // namespace

int parse_config(char** env, Config* out, std::vector<std::string>* warnings, ErrorText* why) {
  const auto& table = option_table();
  size_t index = 0;
  int rc = 0;
#define XDPLOAD_OPTION(F, K, D, LO, HI, DOC)                                        \
  {                                                                                 \
    const OptionInfo& o = table[index++];                                           \
    set_default(o, &out->F);                                                        \
    const char* v = getenv(option_env_name(o.field).c_str());                       \
    if (v && rc == 0) {                                                             \
      if (!parse_into(o, v, &out->F, why)) rc = -EINVAL;                            \
      else if (!is_default(o, out->F))                                              \
        out->non_default.push_back(option_env_name(o.field) + "=" + v);             \
    }                                                                               \
  }
#include "shim/runtime/options.def"
#undef XDPLOAD_OPTION

  // AF_XDP rings index with a mask.
  if (rc == 0 && (out->ring_size & (out->ring_size - 1))) {
    why->set(EINVAL, "XDPLOAD_RING_SIZE=%lld is not a power of two (64, 128, ... 32768)",
             (long long)out->ring_size);
    rc = -EINVAL;
  }

  // XDPLOAD_QUEUE=N, the single queue of old, still works as
  // XDPLOAD_QUEUES=N (which wins when both are set).
  if (rc == 0 && !out->queue.empty()) {
    if (warnings)
      warnings->push_back("XDPLOAD_QUEUE is deprecated: use XDPLOAD_QUEUES (all queues by "
                          "default, or a list such as 0,2-3)");
    if (out->queues == "all" && !getenv("XDPLOAD_QUEUES")) out->queues = out->queue;
  }
  if (rc == 0 && !rings::parse_queue_list(out->queues.c_str(), &out->queue_list)) {
    why->set(EINVAL,
             "XDPLOAD_QUEUES=%s is not 'all' or a list of receive queues such as 0,2-3 "
             "(each 0..%u)",
             out->queues.c_str(), rings::kMaxQueues - 1);
    rc = -EINVAL;
  }

  // XDPLOAD_NUMA: off (empty), auto (the interface's node) or a node.
  if (rc == 0 && !out->numa.empty()) {
    char* end = nullptr;
    long node = strtol(out->numa.c_str(), &end, 10);
    if (out->numa == "auto") {
      out->numa_node = Config::kNumaAuto;
    } else if (isdigit(static_cast<unsigned char>(out->numa[0])) && *end == 0 && node < 1024) {
      out->numa_node = int(node);
    } else {
      why->set(EINVAL, "XDPLOAD_NUMA=%s is not auto or a NUMA node number (0..1023)",
               out->numa.c_str());
      rc = -EINVAL;
    }
  }

  // Unknown XDPLOAD_* variables: a typo should not silently do nothing.
  // Some are read elsewhere: the wrapper's build directory, the stage marks
  // of a STAGE_TRACE=1 build (rings/stage_trace.h), the connections an
  // exec'ing program passed (shim/socket/passed_connections.h).
  static const char* const kReadElsewhere[] = {"XDPLOAD_BUILD", "XDPLOAD_STAGE_TRACE",
                                               "XDPLOAD_STAGE_TRACE_DIR",
                                               "XDPLOAD_STAGE_TRACE_EVENTS",
                                               "XDPLOAD_PASSED_CONNECTIONS"};
  for (char** e = env; e && *e; ++e) {
    if (strncmp(*e, "XDPLOAD_", 8) != 0) continue;
    std::string name(*e, strcspn(*e, "="));
    bool known = false;
    for (const char* n : kReadElsewhere) known = known || name == n;
    std::string best;
    size_t best_d = SIZE_MAX;
    for (const OptionInfo& o : table) {
      std::string n = option_env_name(o.field);
      if (n == name) known = true;
      size_t d = edit_distance(n, name);
      if (d < best_d) best_d = d, best = n;
    }
    if (!known && warnings) {
      std::string w = "unknown variable " + name + " ignored";
      if (best_d <= 4) w += "; did you mean " + best + "?";
      warnings->push_back(w);
    }
  }
  return rc;
}

}  // namespace xdpload::shim
