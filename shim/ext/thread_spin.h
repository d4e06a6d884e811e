// Spinning chosen per thread (xdpload_thread_set_spin): how long a wait of
// one kind polls before it sleeps, for the calling thread.
#pragma once

#include <cstdint>

namespace xdpload::shim {

// The kinds of wait, as include/xdpload/extensions.h numbers them (0: a
// wait of no particular kind, which only XDPLOAD_SPIN_ALL governs).
enum SpinKind : uint8_t {
  kSpinAny = 0,
  kSpinUdpRecv,
  kSpinTcpRecv,
  kSpinTcpSend,
  kSpinTcpAccept,
  kSpinTcpConnect,
  kSpinPoll,
  kSpinEpollWait,
  kSpinKinds
};

// Nanoseconds a wait of `kind` in this thread polls before sleeping, given
// the process's XDPLOAD_SPIN_USEC (`process_ns`): that, unless the thread
// chose; spinning on with no XDPLOAD_SPIN_USEC polls until the call
// completes (INT64_MAX).
int64_t thread_spin_ns(SpinKind kind, int64_t process_ns);

}  // namespace xdpload::shim
