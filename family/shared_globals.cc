#include "family/shared_globals.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

// Defined by family/family.ld; absent (null) in a program linked without it.
extern "C" char __xdpload_family_begin[] __attribute__((weak, visibility("hidden")));
extern "C" char __xdpload_family_end[] __attribute__((weak, visibility("hidden")));

namespace xdpload::family {

namespace {
bool g_shared = false;

// A plain copy of the whole section: under ASan its globals have poisoned
// redzones between them, which memcpy's interceptor would report.
__attribute__((no_sanitize_address, optimize("no-tree-loop-distribute-patterns"))) void
copy_raw(char* to, const char* from, size_t n) {
  for (size_t i = 0; i < n; ++i) to[i] = from[i];
}
}  // namespace

bool share_lwip_globals(ErrorText* why) {
  if (g_shared) return true;
  char* begin = __xdpload_family_begin;
  char* end = __xdpload_family_end;
  const uintptr_t page = 4096;
  if (!begin || !end || end <= begin || uintptr_t(begin) % page || uintptr_t(end) % page) {
    why->set(ENOEXEC, "lwIP's globals are not on pages of their own (not linked with family.ld)");
    return false;
  }
  const size_t len = size_t(end - begin);
  void* copy = malloc(len);
  if (!copy) return why->set(ENOMEM, "no memory to copy lwIP's globals") == 0;
  copy_raw(static_cast<char*>(copy), begin, len);
  // Nobody uses lwIP yet: the stack starts after this, under its lock.
  void* p = mmap(begin, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    // A failed MAP_FIXED may have unmapped the range: put private pages
    // with the same bytes back.
    if (mmap(begin, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
        MAP_FAILED)
      copy_raw(begin, static_cast<char*>(copy), len);
    free(copy);
    why->set(err, "cannot map lwIP's globals shared: %s", strerror(err));
    return false;
  }
  copy_raw(begin, static_cast<char*>(copy), len);
  free(copy);
  g_shared = true;
  return true;
}

bool lwip_globals_shared() { return g_shared; }

}  // namespace xdpload::family
