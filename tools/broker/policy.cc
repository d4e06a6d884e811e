#include "tools/broker/policy.h"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace xdpload::broker {

namespace {

bool parse_number(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  uint64_t v = strtoull(s.c_str(), nullptr, 10);
  if (v > max) return false;
  *out = v;
  return true;
}

// "9000", "9000-9099", "80,443,8000-8100"
bool parse_ports(const std::string& s, std::vector<PortRange>* out, std::string* error) {
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    size_t dash = part.find('-');
    uint64_t a, b;
    std::string first = part.substr(0, dash);
    std::string last = dash == std::string::npos ? first : part.substr(dash + 1);
    if (!parse_number(first, 65535, &a) || !parse_number(last, 65535, &b) || a == 0 || a > b) {
      *error = "'" + part + "' is not a port or a range of ports (1-65535, low-high)";
      return false;
    }
    out->push_back(PortRange{uint16_t(a), uint16_t(b)});
  }
  if (out->empty()) {
    *error = "'ports' needs a list";
    return false;
  }
  return true;
}

}  // namespace

Policy::Policy() {
  PolicyRule root;
  root.allow = true;
  root.id = 0;
  root.text = "allow user root (built in: no policy file)";
  rules_.push_back(root);
}

bool Policy::parse(const std::string& text, std::string* error) {
  std::vector<PolicyRule> rules;
  std::stringstream in(text);
  std::string raw;
  int lineno = 0;
  while (std::getline(in, raw)) {
    ++lineno;
    std::string line = raw.substr(0, raw.find('#'));
    std::stringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty()) continue;
    auto fail = [&](const std::string& what) {
      *error = "line " + std::to_string(lineno) + ": " + what;
      return false;
    };
    PolicyRule r;
    r.line = lineno;
    size_t start = line.find_first_not_of(" \t");
    size_t end = line.find_last_not_of(" \t\r");
    r.text = line.substr(start, end - start + 1);
    if (w[0] == "allow") r.allow = true;
    else if (w[0] != "deny") return fail("'" + w[0] + "': a rule starts with allow or deny");
    if (w.size() < 3) return fail("a rule is: allow|deny user|group NAME [ports LIST]");
    if (w[1] == "group") r.group = true;
    else if (w[1] != "user") return fail("'" + w[1] + "': expected user or group");
    uint64_t id;
    if (w[2] == "*") {
      r.any = true;
    } else if (parse_number(w[2], UINT32_MAX - 1, &id)) {
      r.id = uint32_t(id);
    } else if (r.group) {
      group* g = getgrnam(w[2].c_str());
      if (!g) return fail("no group '" + w[2] + "'");
      r.id = g->gr_gid;
    } else {
      passwd* p = getpwnam(w[2].c_str());
      if (!p) return fail("no user '" + w[2] + "'");
      r.id = p->pw_uid;
    }
    if (w.size() > 3) {
      if (w[3] != "ports" || w.size() != 5)
        return fail("after the name comes only 'ports LIST' (for example ports 9000-9099)");
      std::string why;
      if (!parse_ports(w[4], &r.ports, &why)) return fail(why);
    }
    rules.push_back(std::move(r));
  }
  rules_ = std::move(rules);
  return true;
}

bool Policy::load(const char* path, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = std::string("cannot read: ") + strerror(errno);
    return false;
  }
  std::stringstream all;
  all << f.rdbuf();
  return parse(all.str(), error);
}

bool Policy::matches_who(const PolicyRule& r, const Peer& peer) const {
  if (r.any) return true;
  if (!r.group) return peer.uid == r.id;
  for (gid_t g : peer.groups)
    if (g == r.id) return true;
  return false;
}

Decision Policy::decide(const Peer& peer, uint16_t port) const {
  for (const PolicyRule& r : rules_) {
    if (!matches_who(r, peer)) continue;
    bool in = r.ports.empty();
    for (const PortRange& p : r.ports) in |= port >= p.first && port <= p.last;
    if (in) return Decision{r.allow, &r};
  }
  return Decision{};
}

Decision Policy::admits(const Peer& peer) const {
  // The first rule naming this peer: a deny without ports shuts it out,
  // anything else lets it in (its claims are decided port by port).
  for (const PolicyRule& r : rules_) {
    if (!matches_who(r, peer)) continue;
    if (!r.allow && r.ports.empty()) return Decision{false, &r};
    if (r.allow) return Decision{true, &r};
  }
  return Decision{};
}

}  // namespace xdpload::broker
