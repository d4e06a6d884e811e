#include "rings/umem.h"

#include <numa.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>

#include "rings/private_fd.h"

namespace xdpload::rings {

namespace {
constexpr size_t kHugePage = 2u << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

Umem::~Umem() {
  if (base_) munmap(base_, mapped_);
  if (fd_ >= 0) close_private_fd(fd_);
}

namespace {
bool valid_shape(uint32_t count, uint32_t size) {
  return count >= Umem::kMinFrames && count <= Umem::kMaxFrames && (size == 2048 || size == 4096);
}
}  // namespace

int Umem::adopt(int fd, uint32_t count, uint32_t size, size_t map_bytes, ErrorText* why) {
  if (!valid_shape(count, size) || map_bytes < size_t(count) * size) {
    close_private_fd(fd);
    return why->set(EINVAL, "the broker's UMEM shape (%u frames of %u bytes) is invalid", count,
                    size);
  }
  frame_count_ = count;
  frame_size_ = size;
  frame_shift_ = __builtin_ctz(size);
  length_ = size_t(count) * size;
  mapped_ = map_bytes;
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int err = errno;
  close_private_fd(fd);
  if (p == MAP_FAILED) return why->set(err, "cannot map the broker's UMEM: %s", strerror(err));
  base_ = static_cast<uint8_t*>(p);
  // The broker registered (and the kernel pinned) these pages.
  locked_ = true;
  return 0;
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
  void* p = MAP_FAILED;
  if (c.shareable) {
    // A memfd the broker hands its programs; hugetlb-backed when some are
    // reserved, as below.
    for (unsigned flags : {MFD_CLOEXEC | MFD_HUGETLB, unsigned(MFD_CLOEXEC)}) {
      mapped_ = round_up(length_, (flags & MFD_HUGETLB) ? kHugePage : 4096);
      int fd = memfd_create("xdpload-umem", flags);
      if (fd < 0) continue;
      if (ftruncate(fd, off_t(mapped_)) == 0)
        p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        fd_ = to_private_fd(fd);
        hugepages_ = (flags & MFD_HUGETLB) != 0;
        break;
      }
      close(fd);
    }
    if (p == MAP_FAILED) return why->set(errno, "cannot make a shareable UMEM of %zu bytes: %m", length_);
  } else {
    mapped_ = round_up(length_, kHugePage);
    p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB,
             -1, 0);
    hugepages_ = p != MAP_FAILED;
  }
  if (p == MAP_FAILED) {
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
