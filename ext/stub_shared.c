/* libxdpload_ext.so: the extensions API (include/xdpload/extensions.h) for
 * a program that links against it. Under xdpload these functions are never
 * called: the preloaded library comes first in the dynamic linker's order
 * and defines the same names, so the program's calls reach it. Without
 * xdpload, these answer "not present". (Weak, so that a program that also
 * links a definition of its own, a test double, keeps it.)
 *
 * xdpload_ext_version tells the preloaded library which header this stub
 * was built with; it refuses an incompatible one (extensions.h, Versions). */
#include <errno.h>

#include "include/xdpload/extensions.h"

__attribute__((visibility("default"))) const unsigned xdpload_ext_version[2] = {
    XDPLOAD_EXT_VERSION_MAJOR, XDPLOAD_EXT_VERSION_MINOR};

__attribute__((weak)) int xdpload_is_present(void) { return 0; }

__attribute__((weak)) int xdpload_thread_set_spin(enum xdpload_spin_type type, int spin) {
  (void)type, (void)spin;
  return 0;
}

__attribute__((weak)) int xdpload_thread_get_spin(unsigned *spinning) {
  (void)spinning;
  return -ENOSYS;
}

__attribute__((weak)) int xdpload_fd_stat(int fd, struct xdpload_fd_info *info, size_t size) {
  (void)fd, (void)info, (void)size;
  return 0;
}

__attribute__((weak)) int xdpload_get_counters(struct xdpload_counters *out, size_t size) {
  (void)out, (void)size;
  return -ENOSYS;
}

__attribute__((weak)) ssize_t xdpload_zc_recv(int fd, struct xdpload_zc_iovec *iov, int *iovcnt,
                                              int flags, struct sockaddr *from,
                                              socklen_t *fromlen) {
  (void)fd, (void)iov, (void)iovcnt, (void)flags, (void)from, (void)fromlen;
  return -ENOSYS;
}

__attribute__((weak)) int xdpload_zc_alloc(int fd, struct xdpload_zc_iovec *iov, int n, int flags) {
  (void)fd, (void)iov, (void)n, (void)flags;
  return -ENOSYS;
}

__attribute__((weak)) int xdpload_zc_send(int fd, const struct xdpload_zc_iovec *iov, int n,
                                          int flags) {
  (void)fd, (void)iov, (void)n, (void)flags;
  return -ENOSYS;
}

__attribute__((weak)) int xdpload_zc_release(const xdpload_zc_handle *bufs, int n) {
  (void)bufs, (void)n;
  return -ENOSYS;
}
