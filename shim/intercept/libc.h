// The real libc functions behind every intercepted name (shim/intercept/intercepts.def).
//
// Each pointer starts at a bootstrap stub that resolves all of them with
// dlsym(RTLD_NEXT) on first use and then calls the real function: our own
// dependencies' constructors (libnuma's reads /sys) run before ours, so an
// intercept can be entered before any initialization of ours has happened.
#pragma once

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

namespace xdpload::libc {

#define XDPLOAD_CALL(ret, name, params, args) extern ret(*name) params;
#include "shim/intercept/intercepts.def"
#undef XDPLOAD_CALL

// Resolves every pointer (idempotent, thread-safe).
void resolve();

}  // namespace xdpload::libc
