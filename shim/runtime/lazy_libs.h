// libbpf and libnuma, loaded when the stack first starts instead of at every
// exec: a program that opens no accelerated socket (and every child of a
// shell under xdpload) no longer maps libbpf, libelf, libz and libnuma.
// rings/ calls them as usual; inside libxdpload.so those names resolve to
// local trampolines (shim/runtime/lazy_libs.cc) that dlopen the real libraries.
#pragma once

#include <string>

namespace xdpload::shim {

// Loads both libraries (once); false with the reason when one is missing.
// Called before the stack starts; the trampolines rely on it.
bool load_lazy_libs(std::string* why);

}  // namespace xdpload::shim
