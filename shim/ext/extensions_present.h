// Whether the extensions API is served: xdpload is on in this process and
// the program's stub speaks a version it serves (else every call answers
// "not present"; said once).
#pragma once

namespace xdpload::shim {

bool extensions_present();

}  // namespace xdpload::shim
