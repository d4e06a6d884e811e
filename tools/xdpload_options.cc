// xdpload-options: the option table of shim/runtime/options.def, for the wrapper and
// the documentation, so that neither keeps its own copy.
//
//   xdpload-options --list        a human table (xdpload --list-options)
//   xdpload-options --markdown    the README's table
//   xdpload-options --names       one XDPLOAD_NAME=default per line
//   xdpload-options --check [NAME=VALUE...]
//                                 parses the environment (or only the given
//                                 variables) as the library would; prints
//                                 the error or warnings, exits 1 on a bad
//                                 value
//   xdpload-options --version
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "shim/runtime/config.h"
#include "shim/runtime/version.h"

extern char** environ;

using namespace xdpload;
using namespace xdpload::shim;

namespace {

const char* kind_name(OptionKind k) {
  switch (k) {
    case OptionKind::Int: return "int";
    case OptionKind::Bool: return "bool";
    case OptionKind::Str: return "string";
    case OptionKind::Enum: return "choice";
  }
  return "?";
}

std::string default_value(const OptionInfo& o) {
  if (o.kind != OptionKind::Enum) return o.def;
  return std::string(o.def, strcspn(o.def, "|"));
}

std::string range(const OptionInfo& o) {
  switch (o.kind) {
    case OptionKind::Int: return std::to_string(o.min) + ".." + std::to_string(o.max);
    case OptionKind::Bool: return "0|1";
    case OptionKind::Enum: return o.def;
    case OptionKind::Str: return "";
  }
  return "";
}

void list() {
  for (const OptionInfo& o : option_table()) {
    std::string d = default_value(o);
    printf("%-20s %-7s default %-8s %s\n", option_env_name(o.field).c_str(), kind_name(o.kind),
           d.empty() ? "(unset)" : d.c_str(), range(o).c_str());
    printf("%-20s %s\n", "", o.doc);
  }
}

// A '|' inside a markdown table cell must be escaped.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

void markdown() {
  printf("| Variable | Type | Default | Values | Meaning |\n");
  printf("|---|---|---|---|---|\n");
  for (const OptionInfo& o : option_table()) {
    std::string d = default_value(o);
    printf("| `%s` | %s | %s | %s | %s |\n", option_env_name(o.field).c_str(), kind_name(o.kind),
           d.empty() ? "(unset)" : ("`" + d + "`").c_str(), cell(range(o)).c_str(),
           cell(o.doc).c_str());
  }
}

int check() {
  Config c;
  std::vector<std::string> warnings;
  ErrorText why;
  int rc = parse_config(environ, &c, &warnings, &why);
  for (const std::string& w : warnings) fprintf(stderr, "xdpload: %s\n", w.c_str());
  if (rc < 0) {
    fprintf(stderr, "xdpload: %s\n", why.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* cmd = argc > 1 ? argv[1] : "--list";
  if (!strcmp(cmd, "--list")) list();
  else if (!strcmp(cmd, "--markdown")) markdown();
  else if (!strcmp(cmd, "--names"))
    for (const OptionInfo& o : option_table())
      printf("%s=%s\n", option_env_name(o.field).c_str(), default_value(o).c_str());
  else if (!strcmp(cmd, "--check")) {
    if (argc > 2) {
      clearenv();
      for (int i = 2; i < argc; ++i) putenv(argv[i]);
    }
    return check();
  }
  else if (!strcmp(cmd, "--version")) printf("%s\n", XDPLOAD_VERSION);
  else {
    fprintf(stderr,
            "usage: xdpload-options --list|--markdown|--names|--check [NAME=VALUE...]|--version\n");
    return 2;
  }
  return 0;
}
