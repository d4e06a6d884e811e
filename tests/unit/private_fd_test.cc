// rings/private_fd: the library's descriptors at the top of the range, and
// the room a caller can ask to leave free (port_park keeps a quarter of the
// range for the stack's own descriptors).
#include "rings/private_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <vector>

namespace xdpload::rings {
namespace {

class PrivateFd : public ::testing::Test {
 protected:
  // A limit of 1024, as systemd gives: a range of 256 slots at 768-1023.
  void SetUp() override {
    rlimit rl{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ASSERT_GE(rl.rlim_max, 1024u);
    rl.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    source_ = open("/dev/null", O_RDONLY);
    ASSERT_GE(source_, 0);
  }
  void TearDown() override {
    for (int fd : taken_) close_private_fd(fd);
    close(source_);
  }
  int source_ = -1;
  std::vector<int> taken_;
};

TEST_F(PrivateFd, CopiesGoToTheTopQuarterBelowTheLimit) {
  int fd = dup_to_private(source_);
  ASSERT_GE(fd, 0);
  taken_.push_back(fd);
  EXPECT_GE(fd, 768);
  EXPECT_LT(fd, 1024);
  EXPECT_TRUE(is_private_fd(fd));
  EXPECT_FALSE(is_private_fd(source_));
}

TEST_F(PrivateFd, ACallerAskingForRoomStopsShortOfIt) {
  // 256 slots; asking to keep 64 free leaves exactly 64 untaken.
  int fd;
  while ((fd = dup_to_private(source_, 64)) >= 0) taken_.push_back(fd);
  EXPECT_EQ(taken_.size(), 256u - 64u);
  // Whoever asks for no room still gets the rest, up to the limit.
  while ((fd = dup_to_private(source_)) >= 0) taken_.push_back(fd);
  EXPECT_EQ(taken_.size(), 256u);
  // A slot given back can be taken again by one asking for room only when
  // the room is there.
  close_private_fd(taken_.back());
  taken_.pop_back();
  EXPECT_LT(dup_to_private(source_, 64), 0);
  fd = dup_to_private(source_);
  ASSERT_GE(fd, 0);
  taken_.push_back(fd);
}

}  // namespace
}  // namespace xdpload::rings
