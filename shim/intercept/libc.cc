#include "shim/intercept/libc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>

#include <mutex>

namespace xdpload::libc {

namespace {

// Set while this thread resolves: should dlsym call back into an intercepted
// function, that call looks its own symbol up directly instead of recursing.
thread_local bool t_resolving = false;

void* lookup(const char* name) { return dlsym(RTLD_NEXT, name); }

// What a call whose symbol this libc lacks returns: -1 and ENOSYS, as the
// kernel answers a system call it does not have.
template <typename R>
R missing() {
  errno = ENOSYS;
  return R(-1);
}
template <>
void missing<void>() {
  errno = ENOSYS;
}
template <>
FILE* missing<FILE*>() {
  errno = ENOSYS;
  return nullptr;
}
template <>
sighandler_t missing<sighandler_t>() {
  errno = ENOSYS;
  return SIG_ERR;
}

// Bootstrap stubs: resolve everything, then forward.
#define XDPLOAD_CALL(ret, name, params, args)                                     \
  ret name##_bootstrap params {                                                   \
    if (t_resolving) return reinterpret_cast<ret(*) params>(lookup(#name)) args;  \
    resolve();                                                                    \
    if (name == name##_bootstrap) return missing<ret>();                          \
    return name args;                                                             \
  }
// Variadic: forward the one word-sized argument they may have.
#define XDPLOAD_VCALL(ret, name, params, args)                                    \
  template <typename Second>                                                      \
  ret name##_bootstrap_impl(int fd, Second second, va_list ap) {                  \
    void* arg = va_arg(ap, void*);                                                \
    if (t_resolving)                                                              \
      return reinterpret_cast<ret (*)(int, Second, ...)>(lookup(#name))(fd, second, arg); \
    resolve();                                                                    \
    return name(fd, second, arg);                                                 \
  }
#include "shim/intercept/intercepts.def"
#undef XDPLOAD_CALL
#undef XDPLOAD_VCALL

int fcntl_bootstrap(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int rc = fcntl_bootstrap_impl<int>(fd, cmd, ap);
  va_end(ap);
  return rc;
}
int fcntl64_bootstrap(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int rc = fcntl64_bootstrap_impl<int>(fd, cmd, ap);
  va_end(ap);
  return rc;
}
int ioctl_bootstrap(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  int rc = ioctl_bootstrap_impl<unsigned long>(fd, request, ap);
  va_end(ap);
  return rc;
}

}  // namespace

// The pointers, each starting at its stub.
#define XDPLOAD_CALL(ret, name, params, args) ret(*name) params = name##_bootstrap;
#include "shim/intercept/intercepts.def"
#undef XDPLOAD_CALL

void resolve() {
  static std::once_flag once;
  std::call_once(once, [] {
    t_resolving = true;
#define XDPLOAD_CALL(ret, name, params, args)                     \
  if (void* p = lookup(#name)) name = reinterpret_cast<ret(*) params>(p);
#include "shim/intercept/intercepts.def"
#undef XDPLOAD_CALL
    t_resolving = false;
  });
}

}  // namespace xdpload::libc
