#include "rings/umem.h"

#include <numa.h>
#include <sched.h>
#include <sys/mman.h>

namespace xdpload::rings {

namespace {
constexpr size_t kHugePage = 2u << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

Umem::~Umem() {
  if (base_) munmap(base_, mapped_);
}

int Umem::create(const UmemConfig& c, ErrorText* why) {
  if (c.frame_count < kMinFrames || c.frame_count > kMaxFrames)
    return why->set(EINVAL, "UMEM frame count %u is out of range (%u..%u)", c.frame_count,
                    kMinFrames, kMaxFrames);
  if (c.frame_size != 2048 && c.frame_size != 4096)
    return why->set(EINVAL, "UMEM frame size %u is not 2048 or 4096", c.frame_size);

  frame_count_ = c.frame_count;
  frame_size_ = c.frame_size;
  frame_shift_ = __builtin_ctz(c.frame_size);
  length_ = size_t(c.frame_count) * c.frame_size;

  // Shared: the children this process forks use the same frames (see
  // family/arena.h). Hugepages only when some are reserved: MAP_HUGETLB fails
  // cleanly otherwise.
  mapped_ = round_up(length_, kHugePage);
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  hugepages_ = p != MAP_FAILED;
  if (!hugepages_) {
    mapped_ = round_up(length_, 4096);
    p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return why->set(errno, "cannot map %zu bytes of UMEM: %m", mapped_);
  }
  base_ = static_cast<uint8_t*>(p);

  // Place the pages before they are first touched: binding after the fault
  // would leave them wherever the fault happened.
  numa_node_ = c.numa_node;
  if (numa_available() >= 0) {
    if (numa_node_ < 0) numa_node_ = numa_node_of_cpu(sched_getcpu());
    if (numa_node_ >= 0) numa_tonode_memory(base_, mapped_, numa_node_);
  }

  // Fault every page in now and keep it: the kernel pins the UMEM when it is
  // registered anyway, mlock also keeps it out of swap accounting surprises.
  // Failure (RLIMIT_MEMLOCK for a non-root user) is not fatal: registration
  // will say whether the kernel can pin it.
  locked_ = mlock(base_, mapped_) == 0;
  if (!locked_) {
    for (size_t off = 0; off < mapped_; off += 4096) base_[off] = 0;
  }
  return 0;
}

}  // namespace xdpload::rings
