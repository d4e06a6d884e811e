// setuid and friends: the stack starts before the process gives up root.
#include "shim/intercept/export.h"
#include "shim/runtime/runtime.h"

using namespace xdpload;
using namespace xdpload::shim;

int xdpload_setuid(uid_t uid) {
  Runtime::get().before_privilege_drop(uid);
  return libc::setuid(uid);
}

int xdpload_seteuid(uid_t uid) {
  Runtime::get().before_privilege_drop(uid);
  return libc::seteuid(uid);
}

int xdpload_setreuid(uid_t ruid, uid_t euid) {
  Runtime::get().before_privilege_drop(euid != uid_t(-1) ? euid : ruid);
  return libc::setreuid(ruid, euid);
}

int xdpload_setresuid(uid_t ruid, uid_t euid, uid_t suid) {
  Runtime::get().before_privilege_drop(euid != uid_t(-1) ? euid : ruid);
  return libc::setresuid(ruid, euid, suid);
}
