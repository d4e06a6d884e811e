// Rules: parsing (errors name the line) and first-match decisions.
#include "shim/runtime/rules.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

using namespace xdpload;
using namespace xdpload::shim;
using V = Rules::Verdict;

namespace {

uint32_t ip(const char* s) {
  in_addr a;
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

Rules parsed(const char* text) {
  Rules r;
  ErrorText why;
  EXPECT_EQ(r.parse(text, "test", &why), 0) << why.c_str();
  return r;
}

}  // namespace

TEST(Rules, EmptyAndCommentsMatchNothing) {
  Rules r = parsed("\n# only a comment\n   \n");
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.match(Role::TcpClient, ip("10.0.0.1"), 80), V::NoMatch);
}

TEST(Rules, RoleAddressAndPortMustAllMatch) {
  Rules r = parsed("kernel tcp_server *:22\n"
                   "kernel udp_receiver 10.211.0.1:5000-5099  # a range\n"
                   "kernel tcp_client 192.168.0.0/16\n");
  EXPECT_EQ(r.match(Role::TcpServer, ip("10.211.0.1"), 22), V::Kernel);
  EXPECT_EQ(r.match(Role::TcpClient, ip("10.211.0.1"), 22), V::NoMatch);  // other role
  EXPECT_EQ(r.match(Role::TcpServer, ip("10.211.0.1"), 23), V::NoMatch);  // other port
  EXPECT_EQ(r.match(Role::UdpReceiver, ip("10.211.0.1"), 5000), V::Kernel);
  EXPECT_EQ(r.match(Role::UdpReceiver, ip("10.211.0.1"), 5099), V::Kernel);
  EXPECT_EQ(r.match(Role::UdpReceiver, ip("10.211.0.1"), 5100), V::NoMatch);
  EXPECT_EQ(r.match(Role::UdpReceiver, ip("10.211.0.2"), 5000), V::NoMatch);
  EXPECT_EQ(r.match(Role::TcpClient, ip("192.168.77.3"), 443), V::Kernel);
  EXPECT_EQ(r.match(Role::TcpClient, ip("192.169.0.1"), 443), V::NoMatch);
}

TEST(Rules, FirstMatchWins) {
  Rules r = parsed("accelerate udp_sender 10.0.0.5:*\n"
                   "kernel udp_sender 10.0.0.0/8\n");
  int line = 0;
  EXPECT_EQ(r.match(Role::UdpSender, ip("10.0.0.5"), 9, &line), V::Accelerate);
  EXPECT_EQ(line, 1);
  EXPECT_EQ(r.match(Role::UdpSender, ip("10.0.0.6"), 9, &line), V::Kernel);
  EXPECT_EQ(line, 2);
}

TEST(Rules, AnyRoleAndLibvmaSpelling) {
  Rules r = parsed("use os any *:8080\nuse xdpload * 0.0.0.0/0\n");
  EXPECT_EQ(r.match(Role::UdpSender, ip("1.2.3.4"), 8080), V::Kernel);
  EXPECT_EQ(r.match(Role::TcpServer, ip("1.2.3.4"), 8081), V::Accelerate);
  Rules c = parsed("use vma udp_connect 10.1.1.1:1");
  EXPECT_EQ(c.match(Role::UdpSender, ip("10.1.1.1"), 1), V::Accelerate);
}

TEST(Rules, ErrorsNameTheLineAndClearTheRules) {
  const char* bad[] = {"fast tcp_server *:1",        "kernel tcp_serve *:1",
                       "kernel tcp_server 10.0.0/8", "kernel tcp_server 10.0.0.0/33",
                       "kernel tcp_server *:70000",  "kernel tcp_server *:9-3",
                       "kernel tcp_server *:1 junk", "kernel",
                       "kernel tcp_server *:x"};
  for (const char* b : bad) {
    Rules r;
    ErrorText why;
    std::string text = std::string("kernel any *:1\n") + b + "\n";
    EXPECT_EQ(r.parse(text, "rules.conf", &why), -EINVAL) << b;
    EXPECT_EQ(std::string(why.c_str()).rfind("rules.conf:2: ", 0), 0u) << why.c_str();
    EXPECT_EQ(r.size(), 0u) << b;
  }
}

TEST(Rules, MissingFileIsAnError) {
  Rules r;
  ErrorText why;
  EXPECT_EQ(r.load("/nonexistent/rules", &why), -ENOENT);
  EXPECT_NE(std::string(why.c_str()).find("/nonexistent/rules"), std::string::npos);
}
