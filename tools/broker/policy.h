// Policy: which users and groups a broker lets accelerate which ports.
//
// One rule a line, first match wins, `#` starts a comment:
//
//   allow user alice ports 9000-9099
//   allow group trading ports 1024-65535,80
//   deny user bob
//   allow user 1001            (a uid; `*` is every user)
//
// A rule without `ports` covers every port. A user no rule matches is
// refused. Without a policy file the broker serves root alone (as if the
// file said `allow user root`).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace xdpload::broker {

struct PortRange {
  uint16_t first, last;
};

struct PolicyRule {
  bool allow = false;
  bool group = false;  // the rule names a group (else a user)
  bool any = false;    // `*`
  uint32_t id = 0;     // uid or gid
  std::vector<PortRange> ports;  // empty: every port
  int line = 0;
  std::string text;  // the rule as written, for log lines
};

// Who asks: from SO_PEERCRED and SO_PEERGROUPS.
struct Peer {
  uid_t uid = 0;
  std::vector<gid_t> groups;  // primary and supplementary
};

struct Decision {
  bool allow = false;
  const PolicyRule* rule = nullptr;  // null: no rule matched
};

class Policy {
 public:
  // The built-in policy: root alone.
  Policy();
  // Parses `text` (a file's contents). On error returns false with
  // "line N: what is wrong" in *error.
  bool parse(const std::string& text, std::string* error);
  bool load(const char* path, std::string* error);

  // May `peer` accelerate `port`?
  Decision decide(const Peer& peer, uint16_t port) const;
  // May `peer` accelerate any port at all (checked when it connects)?
  Decision admits(const Peer& peer) const;

  size_t size() const { return rules_.size(); }

 private:
  bool matches_who(const PolicyRule& r, const Peer& peer) const;
  std::vector<PolicyRule> rules_;
};

}  // namespace xdpload::broker
