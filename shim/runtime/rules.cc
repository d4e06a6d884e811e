#include "shim/runtime/rules.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "rings/user_file.h"

namespace xdpload::shim {

const char* role_name(Role r) {
  switch (r) {
    case Role::TcpServer: return "tcp_server";
    case Role::TcpClient: return "tcp_client";
    case Role::UdpReceiver: return "udp_receiver";
    case Role::UdpSender: return "udp_sender";
    case Role::Any: return "any";
  }
  return "?";
}

namespace {

bool parse_role(const std::string& w, Role* r) {
  static const struct {
    const char* name;
    Role role;
  } roles[] = {{"tcp_server", Role::TcpServer},     {"tcp_client", Role::TcpClient},
               {"udp_receiver", Role::UdpReceiver}, {"udp_sender", Role::UdpSender},
               {"udp_connect", Role::UdpSender},    {"any", Role::Any},
               {"*", Role::Any}};
  for (const auto& e : roles)
    if (w == e.name) return *r = e.role, true;
  return false;
}

bool parse_port(const std::string& s, uint16_t* out) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  long v = strtol(s.c_str(), nullptr, 10);
  if (v > 65535) return false;
  *out = uint16_t(v);
  return true;
}

// "*", "a.b.c.d", "a.b.c.d/n", each optionally followed by ":*", ":p" or
// ":p-q".
bool parse_endpoint(const std::string& text, Rule* r, std::string* err) {
  std::string addr = text, ports;
  size_t colon = text.find(':');
  if (colon != std::string::npos) {
    addr = text.substr(0, colon);
    ports = text.substr(colon + 1);
  }
  if (addr != "*") {
    std::string ip = addr;
    int prefix = 32;
    size_t slash = addr.find('/');
    if (slash != std::string::npos) {
      ip = addr.substr(0, slash);
      std::string p = addr.substr(slash + 1);
      if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos ||
          atoi(p.c_str()) > 32) {
        *err = "bad prefix length in '" + addr + "' (0..32)";
        return false;
      }
      prefix = atoi(p.c_str());
    }
    in_addr a;
    if (inet_pton(AF_INET, ip.c_str(), &a) != 1) {
      *err = "'" + ip + "' is not an IPv4 address or *";
      return false;
    }
    r->mask = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
    r->net = ntohl(a.s_addr) & r->mask;
  }
  if (ports.empty() || ports == "*") return true;
  size_t dash = ports.find('-');
  bool ok = dash == std::string::npos
                ? parse_port(ports, &r->port_lo) && parse_port(ports, &r->port_hi)
                : parse_port(ports.substr(0, dash), &r->port_lo) &&
                      parse_port(ports.substr(dash + 1), &r->port_hi);
  if (!ok || r->port_lo > r->port_hi) {
    *err = "bad port or range '" + ports + "' (N, N-M within 0..65535, or *)";
    return false;
  }
  return true;
}

}  // namespace

int Rules::parse(const std::string& text, const char* name, ErrorText* why) {
  rules_.clear();
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    if (w.empty()) continue;
    Rule r;
    r.line = n;
    size_t i = 0;
    std::string err;
    if (w[0] == "accelerate" || w[0] == "kernel") {
      r.accelerate = w[0] == "accelerate";
      i = 1;
    } else if (w[0] == "use" && w.size() > 1 &&
               (w[1] == "xdpload" || w[1] == "vma" || w[1] == "os" || w[1] == "kernel")) {
      r.accelerate = w[1] == "xdpload" || w[1] == "vma";
      i = 2;
    } else {
      err = "'" + w[0] + "' is not an action (accelerate, kernel, use xdpload, use os)";
    }
    if (err.empty() && (w.size() < i + 1 || !parse_role(w[i], &r.role)))
      err = "expected a role (tcp_server, tcp_client, udp_receiver, udp_sender, any) after the "
            "action";
    if (err.empty() && w.size() > i + 2)
      err = "unexpected '" + w[i + 2] + "' after the address";
    if (err.empty() && w.size() == i + 2) parse_endpoint(w[i + 1], &r, &err);
    if (!err.empty()) {
      rules_.clear();
      return why->set(EINVAL, "%s:%d: %s", name, n, err.c_str());
    }
    rules_.push_back(r);
  }
  return 0;
}

int Rules::load(const char* path, ErrorText* why) {
  int fd = rings::open_user_file_read("XDPLOAD_RULES", path, why);
  if (fd < 0) return fd;
  FILE* f = fdopen(fd, "re");
  if (!f) {
    close(fd);
    return why->set(errno, "XDPLOAD_RULES=%s: %s", path, strerror(errno));
  }
  std::string text;
  char buf[4096];
  for (size_t k; (k = fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, k);
  fclose(f);
  return parse(text, path, why);
}

Rules::Verdict Rules::match(Role role, uint32_t ip, uint16_t port, int* line) const {
  uint32_t h = ntohl(ip);
  for (const Rule& r : rules_) {
    if (r.role != Role::Any && r.role != role) continue;
    if ((h & r.mask) != r.net || port < r.port_lo || port > r.port_hi) continue;
    if (line) *line = r.line;
    return r.accelerate ? Verdict::Accelerate : Verdict::Kernel;
  }
  return Verdict::NoMatch;
}

}  // namespace xdpload::shim
