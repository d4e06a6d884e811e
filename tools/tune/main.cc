// xdpload tune: audits the host for a latency-sensitive program on some
// CPUs and one interface (tools/tune/checks.h).
//
//   xdpload tune [--iface IF] [--cpu LIST] [--json] [--apply [--undo FILE]]
//
// Prints each check with its verdict (ok, warn, fail, unknown), what it
// found and the fix. Changes nothing unless --apply is given; then it
// applies the runtime settings the checks list, prints each, and writes a
// shell script that puts every one back.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "tools/tune/checks.h"

namespace xdpload::tune {
namespace {

void usage(FILE* out) {
  fprintf(out,
          "usage: xdpload tune [--iface IF] [--cpu LIST] [--json] [--apply [--undo FILE]]\n"
          "\n"
          "Checks this host for running a latency-sensitive program under xdpload on CPUs LIST\n"
          "with interface IF: CPU isolation, interrupts, frequency and idle states, memory,\n"
          "the NIC's queues, rings and coalescing, the kernel's AF_XDP. Each check prints ok,\n"
          "warn, fail or unknown, what it found and the command that fixes it.\n"
          "  --iface IF    default: XDPLOAD_IFACE, else the default route's interface\n"
          "  --cpu LIST    the program's CPUs (as xdpload --cpu); default: the isolated CPUs,\n"
          "                else every online CPU but the first\n"
          "  --json        {\"checks\":[{\"name\",\"status\",\"found\",\"fix\"}...]}\n"
          "  --apply       apply the runtime settings that can be undone (sysctls, sysfs):\n"
          "                each is printed, and the commands that undo them are written to\n"
          "  --undo FILE   (default ./xdpload-tune-undo-TIME.sh); run it with sh to undo\n"
          "Boot parameters, services and ethtool settings are printed, never applied.\n"
          "XDPLOAD_SYSROOT=DIR reads (and --apply writes) DIR/proc, DIR/sys instead of /.\n");
}

[[noreturn]] void usage_error(const char* fmt, const char* arg) {
  fprintf(stderr, "xdpload tune: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see xdpload tune --help)\n");
  exit(2);
}

// Length of the valid UTF-8 sequence at s[i], 0 if there is none (no
// overlong forms, surrogates or code points past U+10FFFF: what a strict
// JSON reader accepts).
size_t utf8_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = at(0);
  size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >> 4) == 0xe ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((at(k) >> 6) != 2) return 0;
  if ((c == 0xe0 && at(1) < 0xa0) || (c == 0xed && at(1) >= 0xa0)) return 0;
  if ((c == 0xf0 && at(1) < 0x90) || (c == 0xf4 && at(1) >= 0x90)) return 0;
  return n;
}

// A JSON string; bytes that are not UTF-8 (a file of garbage quoted in a
// finding) become U+FFFD.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char ch = s[i];
    if (ch >= 0x80) {
      size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += char(ch);
        }
    }
  }
  return out + "\"";
}

// The interface of the default route, from /proc/net/route.
std::string default_route_iface(const HostView& h) {
  auto text = h.read("/proc/net/route");
  if (!text) return "";
  std::istringstream in(*text);
  std::string l;
  std::getline(in, l);
  while (std::getline(in, l)) {
    std::istringstream words(l);
    std::string iface, dest;
    if (words >> iface >> dest && dest == "00000000") return iface;
  }
  return "";
}

unsigned long long env_number(const char* name, unsigned long long def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  char* end = nullptr;
  unsigned long long n = strtoull(v, &end, 10);
  return *end == 0 && n > 0 ? n : def;
}

Target resolve_target(const HostView& h, const char* iface, const char* cpu_arg) {
  Target t;
  if (iface) {
    t.iface = iface, t.iface_source = "--iface";
  } else if (const char* env = getenv("XDPLOAD_IFACE"); env && *env) {
    t.iface = env, t.iface_source = "XDPLOAD_IFACE";
  } else {
    t.iface = default_route_iface(h);
    t.iface_source = t.iface.empty() ? "none found: give --iface" : "the default route";
  }
  if (t.iface.find('/') != std::string::npos || t.iface == "." || t.iface == "..")
    usage_error("'%s' is not an interface name", t.iface.c_str());
  if (cpu_arg) {
    auto set = parse_cpu_list(cpu_arg);
    if (!set || set->empty()) usage_error("--cpu %s is not a CPU list such as 2 or 0-3,6", cpu_arg);
    t.cpus = *set, t.cpus_source = "--cpu";
  } else {
    auto isolated = h.line("/sys/devices/system/cpu/isolated");
    auto iso = isolated ? parse_cpu_list(*isolated) : std::nullopt;
    auto online = h.line("/sys/devices/system/cpu/online");
    auto on = online ? parse_cpu_list(*online) : std::nullopt;
    if (iso && !iso->empty()) {
      t.cpus = *iso, t.cpus_source = "the isolated CPUs; give --cpu";
    } else if (on && on->size() > 1) {
      t.cpus = *on;
      t.cpus.erase(t.cpus.begin());
      t.cpus_source = "every online CPU but the first, left to the system; give --cpu";
    } else if (on) {
      t.cpus = *on, t.cpus_source = "the only online CPU; give --cpu";
    } else {
      t.cpus_source = "none known; give --cpu";
    }
  }
  // The UMEM the program will map, as the library sizes it.
  t.umem_bytes = env_number("XDPLOAD_FRAMES", 16384) * env_number("XDPLOAD_FRAME_SIZE", 4096);
  return t;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

struct Applied {
  std::string path, value, old;
  int err = 0;
};

// Applies every change of the checks that are not ok; the undo file is
// written first and grows with each change, so that an apply stopped half
// way is undone all the same.
std::vector<Applied> apply(const HostView& h, const std::vector<Check>& checks,
                           const std::string& undo_path, bool* failed) {
  std::vector<Applied> done;
  FILE* undo = fopen(undo_path.c_str(), "wex");
  if (!undo) {
    fprintf(stderr, "xdpload tune: cannot create the undo file %s: %s\n", undo_path.c_str(),
            strerror(errno));
    *failed = true;
    return done;
  }
  time_t now = time(nullptr);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
  fprintf(undo, "#!/bin/sh\n# Written by xdpload tune --apply at %s: puts back what it changed.\n"
                "# Run as root: sh %s\n",
          when, undo_path.c_str());
  fflush(undo);
  for (const Check& c : checks) {
    if (c.status == Status::Ok) continue;
    for (const Change& ch : c.changes) {
      Applied a{ch.path, ch.value, ch.old};
      fprintf(undo, "printf '%%s\\n' %s > %s\n", shell_quote(ch.old).c_str(),
              shell_quote(h.real(ch.path)).c_str());
      // Nothing is changed that the undo file could not put back.
      if (fflush(undo) != 0 || ferror(undo)) {
        fprintf(stderr, "xdpload tune: cannot write the undo file %s (%s): stopped before %s\n",
                undo_path.c_str(), strerror(errno), ch.path.c_str());
        *failed = true;
        fclose(undo);
        return done;
      }
      a.err = h.write(ch.path, ch.value);
      if (a.err) *failed = true;
      done.push_back(a);
    }
  }
  fchmod(fileno(undo), 0700);
  fclose(undo);
  return done;
}

}  // namespace
}  // namespace xdpload::tune

int main(int argc, char** argv) {
  using namespace xdpload::tune;
  const char* iface = nullptr;
  const char* cpus = nullptr;
  const char* undo = nullptr;
  bool json = false, do_apply = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc || !*argv[i + 1]) usage_error("%s needs a value", name);
      return argv[++i];
    };
    if (a == "--iface") iface = value("--iface");
    else if (a == "--cpu") cpus = value("--cpu");
    else if (a == "--json") json = true;
    else if (a == "--apply") do_apply = true;
    else if (a == "--undo") undo = value("--undo");
    else if (a == "-h" || a == "--help") return usage(stdout), 0;
    else usage_error("unknown option %s", argv[i]);
  }
  if (undo && !do_apply) usage_error("%s: --undo goes with --apply", "--undo");

  const char* root = getenv("XDPLOAD_SYSROOT");
  HostView host(root && *root ? root : "/");
  Target target = resolve_target(host, iface, cpus);

  std::vector<Check> checks;
  for (auto* group : {check_cpus, check_memory, check_network}) {
    std::vector<Check> part = group(host, target);
    checks.insert(checks.end(), part.begin(), part.end());
  }

  std::vector<Applied> applied;
  std::string undo_path;
  bool failed = false;
  if (do_apply) {
    if (undo) {
      undo_path = undo;
    } else {
      char name[64];
      snprintf(name, sizeof name, "xdpload-tune-undo-%lld.sh", (long long)time(nullptr));
      undo_path = name;
    }
    applied = apply(host, checks, undo_path, &failed);
  }

  int counts[4] = {};
  for (const Check& c : checks) ++counts[int(c.status)];
  if (json) {
    printf("{\"iface\":%s,\"cpus\":%s,\"checks\":[", json_string(target.iface).c_str(),
           json_string(cpu_list_text(target.cpus)).c_str());
    for (size_t i = 0; i < checks.size(); ++i) {
      const Check& c = checks[i];
      printf("%s\n {\"name\":%s,\"status\":\"%s\",\"found\":%s,\"fix\":%s}", i ? "," : "",
             json_string(c.name).c_str(), status_name(c.status), json_string(c.found).c_str(),
             json_string(c.fix).c_str());
    }
    printf("]");
    if (do_apply) {
      printf(",\"undo\":%s,\"applied\":[", json_string(undo_path).c_str());
      for (size_t i = 0; i < applied.size(); ++i)
        printf("%s{\"path\":%s,\"value\":%s,\"was\":%s,\"error\":%s}", i ? "," : "",
               json_string(applied[i].path).c_str(), json_string(applied[i].value).c_str(),
               json_string(applied[i].old).c_str(),
               json_string(applied[i].err ? strerror(applied[i].err) : "").c_str());
      printf("]");
    }
    printf("}\n");
  } else {
    printf("xdpload tune: interface %s (%s), CPUs %s (%s)\n",
           target.iface.empty() ? "(none)" : target.iface.c_str(), target.iface_source.c_str(),
           cpus_text(target).c_str(), target.cpus_source.c_str());
    for (const Check& c : checks) {
      printf("  %-7s %-21s %s\n", status_name(c.status), c.name.c_str(), c.found.c_str());
      if (!c.fix.empty() && c.status != Status::Ok) printf("  %-7s %-21s fix: %s\n", "", "", c.fix.c_str());
    }
    printf("%d ok, %d warn, %d fail, %d unknown\n", counts[0], counts[1], counts[2], counts[3]);
    if (do_apply) {
      for (const Applied& a : applied) {
        if (a.err)
          printf("not applied: %s = %s: %s\n", a.path.c_str(), a.value.c_str(), strerror(a.err));
        else
          printf("applied: %s = %s (was %s)\n", a.path.c_str(), a.value.c_str(), a.old.c_str());
      }
      size_t changed = 0;
      for (const Applied& a : applied) changed += a.err == 0;
      printf("%zu setting%s changed; undo with: sh %s\n", changed, changed == 1 ? "" : "s",
             undo_path.c_str());
    }
  }
  return failed ? 1 : 0;
}
