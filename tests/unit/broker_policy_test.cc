// The broker's policy file (tools/broker/policy.h): what it accepts, what it
// refuses with the line number, and who it lets accelerate which port.
#include "tools/broker/policy.h"

#include <gtest/gtest.h>

namespace xdpload::broker {
namespace {

Peer user(uid_t uid, std::vector<gid_t> groups = {}) {
  Peer p;
  p.uid = uid;
  p.groups = std::move(groups);
  if (p.groups.empty()) p.groups.push_back(gid_t(uid));
  return p;
}

TEST(BrokerPolicy, WithoutAFileOnlyRoot) {
  Policy p;
  EXPECT_TRUE(p.admits(user(0)).allow);
  EXPECT_TRUE(p.decide(user(0), 80).allow);
  EXPECT_FALSE(p.admits(user(1000)).allow);
  EXPECT_FALSE(p.decide(user(1000), 9000).allow);
}

TEST(BrokerPolicy, FirstMatchWinsPortByPort) {
  Policy p;
  std::string err;
  ASSERT_TRUE(p.parse("# comment\n"
                      "\n"
                      "deny user 1001 ports 9050\n"
                      "allow user 1001 ports 9000-9099   # trailing comment\n"
                      "allow group 500 ports 1024-65535,80\n"
                      "deny user 1002\n"
                      "allow user * ports 20000\n",
                      &err))
      << err;
  EXPECT_EQ(p.size(), 5u);
  EXPECT_TRUE(p.decide(user(1001), 9000).allow);
  EXPECT_TRUE(p.decide(user(1001), 9099).allow);
  EXPECT_FALSE(p.decide(user(1001), 9050).allow);  // the deny above the allow
  EXPECT_EQ(p.decide(user(1001), 9050).rule->line, 3);
  EXPECT_FALSE(p.decide(user(1001), 9100).allow);  // no rule: refused
  EXPECT_EQ(p.decide(user(1001), 9100).rule, nullptr);
  // By a supplementary group.
  EXPECT_TRUE(p.decide(user(1003, {1003, 500}), 80).allow);
  EXPECT_TRUE(p.decide(user(1003, {1003, 500}), 5000).allow);
  EXPECT_FALSE(p.decide(user(1003, {1003, 500}), 443).allow);
  // Denied outright, though a later rule would allow everyone port 20000.
  EXPECT_FALSE(p.decide(user(1002), 20000).allow);
  EXPECT_FALSE(p.admits(user(1002)).allow);
  EXPECT_TRUE(p.decide(user(4242), 20000).allow);
  // Admitted when some rule may allow a port; the deny with ports does not
  // shut 1001 out.
  EXPECT_TRUE(p.admits(user(1001)).allow);
  EXPECT_TRUE(p.admits(user(4242)).allow);  // `*`
}

TEST(BrokerPolicy, NamesAreLookedUp) {
  Policy p;
  std::string err;
  ASSERT_TRUE(p.parse("allow user root ports 1-1023\nallow group root\n", &err)) << err;
  EXPECT_TRUE(p.decide(user(0), 22).allow);
  EXPECT_TRUE(p.decide(user(7, {0}), 9000).allow);  // group root
}

TEST(BrokerPolicy, MalformedLinesNameTheirLine) {
  struct Case {
    const char* text;
    int line;
  } cases[] = {
      {"allow user root\npermit user root\n", 2},
      {"allow\n", 1},
      {"allow user\n", 1},
      {"allow usr root\n", 1},
      {"# fine\nallow user root ports\n", 2},
      {"allow user root ports 0\n", 1},
      {"allow user root ports 100-10\n", 1},
      {"allow user root ports 70000\n", 1},
      {"allow user root ports 1-2-3\n", 1},
      {"allow user root ports 80,,81\n", 1},
      {"allow user root ports 80 extra\n", 1},
      {"allow user root port 80\n", 1},
      {"allow user no-such-user-here\n", 1},
      {"allow group no-such-group-here\n", 1},
      {"allow user 99999999999\n", 1},
  };
  for (const Case& c : cases) {
    Policy p;
    std::string err;
    EXPECT_FALSE(p.parse(c.text, &err)) << c.text;
    EXPECT_EQ(err.rfind("line " + std::to_string(c.line) + ":", 0), 0u) << c.text << " -> " << err;
  }
}

TEST(BrokerPolicy, AFailedParseKeepsThePolicyBefore) {
  Policy p;
  std::string err;
  EXPECT_FALSE(p.parse("allow user 1000\nnonsense\n", &err));
  // Still the built-in one.
  EXPECT_TRUE(p.admits(user(0)).allow);
  EXPECT_FALSE(p.admits(user(1000)).allow);
}

}  // namespace
}  // namespace xdpload::broker
