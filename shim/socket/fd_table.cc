#include "shim/socket/fd_table.h"

#include <sys/mman.h>
#include <sys/resource.h>

namespace xdpload::shim {

void FdTable::init() {
  rlimit r{};
  size_t n = 65536;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_max != RLIM_INFINITY) n = r.rlim_max;
  if (n < 1024) n = 1024;
  if (n > (1u << 22)) n = 1u << 22;
  void* p = mmap(nullptr, n * sizeof(std::atomic<Socket*>), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;  // size_ stays 0: nothing is ever ours
  slots_ = static_cast<std::atomic<Socket*>*>(p);
  size_ = n;
}

}  // namespace xdpload::shim
