// The family arena's two sides: alloc/release (the arena's own robust lock)
// and alloc_core_locked/release_core_locked (free lists the core lock
// guards, for lwIP): blocks the stack frees stay with the stack, memory
// from one side may go back through the other, the count of bytes in use
// stays exact, and a forked child shares the lists.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "family/arena.h"
#include "stack/lwip/lwipopts.h"  // lwIP's malloc: xdpload_family_*
#include "stack/lwip_port.h"

namespace family = xdpload::family;
using xdpload::stack::CoreGuard;

namespace {

TEST(FamilyArena, TheStacksFreedBlocksStayWithTheStack) {
  family::release(family::alloc(1));
  ASSERT_TRUE(family::shared()) << "no arena";
  CoreGuard g;
  const uint64_t base = family::bytes_in_use();
  void* p = family::alloc_core_locked(100);
  ASSERT_TRUE(family::owns(p));
  EXPECT_EQ(family::bytes_in_use(), base + 100);
  family::release_core_locked(p);
  EXPECT_EQ(family::bytes_in_use(), base);
  // Kept on the stack's list: the arena's own side does not hand it out
  // (its free list would give the last block freed)...
  void* q = family::alloc(100);
  EXPECT_NE(q, p);
  // ...the stack's side does, whatever the size within the class.
  void* r = family::alloc_core_locked(97);
  EXPECT_EQ(r, p);
  EXPECT_EQ(family::bytes_in_use(), base + 100 + 97);
  family::release(q);
  family::release_core_locked(r);
  EXPECT_EQ(family::bytes_in_use(), base);
}

TEST(FamilyArena, EitherSideReleasesTheOthersMemory) {
  CoreGuard g;
  const uint64_t base = family::bytes_in_use();
  // A block the stack's side reused with another size, released by the
  // arena's side, and the other way round: the count comes back exactly.
  void* p = family::alloc_core_locked(200);
  family::release_core_locked(p);
  void* q = family::alloc_core_locked(195);
  ASSERT_EQ(q, p);
  family::release(q);
  EXPECT_EQ(family::bytes_in_use(), base);
  void* a = family::alloc(300);
  family::release_core_locked(a);
  EXPECT_EQ(family::bytes_in_use(), base);
  void* b = family::alloc_core_locked(300);
  EXPECT_EQ(b, a);
  family::release(b);
  EXPECT_EQ(family::bytes_in_use(), base);
  // Large blocks are not kept: straight back to the arena.
  void* big = family::alloc_core_locked(64 * 1024);
  family::release_core_locked(big);
  void* again = family::alloc(64 * 1024);
  EXPECT_EQ(again, big);
  family::release(again);
  EXPECT_EQ(family::bytes_in_use(), base);
}

TEST(FamilyArena, TheStacksListsAreBounded) {
  CoreGuard g;
  const uint64_t base = family::bytes_in_use();
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(family::alloc_core_locked(48));
  for (void* p : blocks) family::release_core_locked(p);
  EXPECT_EQ(family::bytes_in_use(), base);
  // Beyond the bound they went back to the arena, which hands the last of
  // them out again on its own side.
  void* q = family::alloc(48);
  EXPECT_EQ(q, blocks.back());
  family::release(q);
}

TEST(FamilyArena, AForkedChildTakesWhatTheParentFreed) {
  void* p;
  {
    CoreGuard g;
    p = family::alloc_core_locked(64);
    memset(p, 0, 64);
    family::release_core_locked(p);
  }
  pid_t pid = fork();
  if (pid == 0) {
    CoreGuard g;
    void* q = family::alloc_core_locked(64);
    if (q != p) _exit(2);
    strcpy(static_cast<char*>(q), "from the child");
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child did not get the parent's freed block";
  // The child's allocation is the family's: the parent's next one is
  // another block, and the child's bytes are there to read.
  EXPECT_STREQ(static_cast<char*>(p), "from the child");
  CoreGuard g;
  void* r = family::alloc_core_locked(64);
  EXPECT_NE(r, p);
  family::release_core_locked(r);
}

// lwIP's malloc and free take the stack's side with the core lock held,
// the arena's own without.
TEST(FamilyArena, LwipsMallocUsesTheStacksSideUnderTheCoreLock) {
  void* p;
  {
    CoreGuard g;
    p = xdpload_family_malloc(120);
    xdpload_family_free(p);
  }
  void* q = family::alloc(120);
  EXPECT_NE(q, p) << "freed under the core lock, yet on the arena's list";
  {
    CoreGuard g;
    void* r = xdpload_family_malloc(120);
    EXPECT_EQ(r, p) << "not taken from the stack's list";
    xdpload_family_free(r);
  }
  family::release(q);
  void* s = xdpload_family_malloc(140);
  xdpload_family_free(s);
  void* t = family::alloc(140);
  EXPECT_EQ(t, s) << "freed without the core lock, yet not on the arena's list";
  family::release(t);
}

// A block released twice, by either side, is refused the second time:
// handed out twice, it would be two objects at one address (two of lwIP's
// PCBs at one address make its lists cyclic). The count stays exact and the
// next two allocations are two blocks.
TEST(FamilyArena, ASecondReleaseIsRefused) {
  for (bool core : {false, true}) {
    SCOPED_TRACE(core ? "the stack's side" : "the arena's side");
    CoreGuard g;
    const uint64_t base = family::bytes_in_use();
    void* p = core ? family::alloc_core_locked(200) : family::alloc(200);
    ASSERT_TRUE(family::owns(p));
    auto release = [&](void* x) { core ? family::release_core_locked(x) : family::release(x); };
    release(p);
    testing::internal::CaptureStderr();
    release(p);
    const std::string said = testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("second free of"), std::string::npos) << said;
    EXPECT_EQ(family::bytes_in_use(), base);
    void* a = core ? family::alloc_core_locked(200) : family::alloc(200);
    void* b = core ? family::alloc_core_locked(200) : family::alloc(200);
    EXPECT_EQ(a, p) << "the freed block is not reused";
    EXPECT_NE(a, b) << "one block handed out twice";
    release(a);
    release(b);
    EXPECT_EQ(family::bytes_in_use(), base);
  }
}

}  // namespace
