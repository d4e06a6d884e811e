/* libxdpload_ext.a: the extensions API (include/xdpload/extensions.h) linked
 * into the program itself. Its calls bind here, not to the preloaded
 * library, so each finds xdpload's function once (dlsym(RTLD_NEXT): the
 * objects after the program, the preload among them) and calls it; without
 * xdpload, or with an incompatible one (said once on stderr), each answers
 * "not present". */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "include/xdpload/extensions.h"

/* (A function, not an expression: a minor version of 0 makes the comparison
 * one the compiler warns about.) */
static int at_least(unsigned have, unsigned want) { return have >= want; }

/* 1: xdpload is there and speaks this header's version; 0: not. */
static int present(void) {
  static int state = -1;
  int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
  if (s >= 0) return s;
  const unsigned *lib = (const unsigned *)dlsym(RTLD_NEXT, "xdpload_ext_lib_version");
  s = 0;
  if (lib) {
    if (lib[0] == XDPLOAD_EXT_VERSION_MAJOR && at_least(lib[1], XDPLOAD_EXT_VERSION_MINOR))
      s = 1;
    else
      fprintf(stderr,
              "xdpload: this program was built for extensions %u.%u, xdpload serves %u.%u: "
              "the extensions answer as if xdpload were not there\n",
              XDPLOAD_EXT_VERSION_MAJOR, XDPLOAD_EXT_VERSION_MINOR, lib[0], lib[1]);
  }
  __atomic_store_n(&state, s, __ATOMIC_RELEASE);
  return s;
}

/* xdpload's function `name` (of type `type`, a typedef), or NULL when not
 * present. */
#define RESOLVE(type, name)                                                  \
  static type fn = NULL;                                                     \
  type f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);                           \
  if (!f && present()) {                                                     \
    f = (type)dlsym(RTLD_NEXT, name);                                        \
    __atomic_store_n(&fn, f, __ATOMIC_RELEASE);                              \
  }

typedef int (*is_present_fn)(void);
typedef int (*set_spin_fn)(enum xdpload_spin_type, int);
typedef int (*get_spin_fn)(unsigned *);
typedef int (*fd_stat_fn)(int, struct xdpload_fd_info *, size_t);
typedef int (*counters_fn)(struct xdpload_counters *, size_t);
typedef ssize_t (*zc_recv_fn)(int, struct xdpload_zc_iovec *, int *, int, struct sockaddr *,
                              socklen_t *);
typedef int (*zc_alloc_fn)(int, struct xdpload_zc_iovec *, int, int);
typedef int (*zc_send_fn)(int, const struct xdpload_zc_iovec *, int, int);
typedef int (*zc_release_fn)(const xdpload_zc_handle *, int);

int xdpload_is_present(void) {
  RESOLVE(is_present_fn, "xdpload_is_present");
  return f ? f() : 0;
}

int xdpload_thread_set_spin(enum xdpload_spin_type type, int spin) {
  RESOLVE(set_spin_fn, "xdpload_thread_set_spin");
  return f ? f(type, spin) : 0;
}

int xdpload_thread_get_spin(unsigned *spinning) {
  RESOLVE(get_spin_fn, "xdpload_thread_get_spin");
  return f ? f(spinning) : -ENOSYS;
}

int xdpload_fd_stat(int fd, struct xdpload_fd_info *info, size_t size) {
  RESOLVE(fd_stat_fn, "xdpload_fd_stat");
  return f ? f(fd, info, size) : 0;
}

int xdpload_get_counters(struct xdpload_counters *out, size_t size) {
  RESOLVE(counters_fn, "xdpload_get_counters");
  return f ? f(out, size) : -ENOSYS;
}

ssize_t xdpload_zc_recv(int fd, struct xdpload_zc_iovec *iov, int *iovcnt, int flags,
                        struct sockaddr *from, socklen_t *fromlen) {
  RESOLVE(zc_recv_fn, "xdpload_zc_recv");
  return f ? f(fd, iov, iovcnt, flags, from, fromlen) : -ENOSYS;
}

int xdpload_zc_alloc(int fd, struct xdpload_zc_iovec *iov, int n, int flags) {
  RESOLVE(zc_alloc_fn, "xdpload_zc_alloc");
  return f ? f(fd, iov, n, flags) : -ENOSYS;
}

int xdpload_zc_send(int fd, const struct xdpload_zc_iovec *iov, int n, int flags) {
  RESOLVE(zc_send_fn, "xdpload_zc_send");
  return f ? f(fd, iov, n, flags) : -ENOSYS;
}

int xdpload_zc_release(const xdpload_zc_handle *bufs, int n) {
  RESOLVE(zc_release_fn, "xdpload_zc_release");
  return f ? f(bufs, n) : -ENOSYS;
}
