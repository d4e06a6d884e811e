// The release of xdpload, printed by `xdpload --version` and in the
// library's start-up banner.
#pragma once

#define XDPLOAD_VERSION "0.1.0"
