// lwIP keeps its state in globals (PCB lists, timers, the netif list,
// statistics). Its objects are built with their .data and .bss renamed into
// sections that family/family.ld places on pages of their own; before the
// stack starts, those pages are replaced by a shared mapping holding the same
// bytes, so that after fork() parent and children see one lwIP.
//
// Why this way: lwIP 2.1.3 has some hundred globals and statics across its
// files; patching each into a struct would be a long patch series to rebase,
// and a shared linker section needs none. The cost is that lwIP's objects
// must be linked through family.ld (libxdpload.so is); elsewhere (unit tests)
// the pages are not found and the stack stays private to its process.
#pragma once

#include "rings/error_text.h"

namespace xdpload::family {

// Maps lwIP's globals shared (once; a forked child inherits the mapping).
// False, with the reason, when the library was not linked for it.
bool share_lwip_globals(ErrorText* why);
// The globals are shared: forked children may use the stack.
bool lwip_globals_shared();

}  // namespace xdpload::family
