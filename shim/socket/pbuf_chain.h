// Taking a pbuf chain apart, one pbuf at a time, for a caller that hands
// each piece on and frees it on its own (the extensions' zero-copy receive).
#pragma once

extern "C" {
#include "lwip/pbuf.h"
}

namespace xdpload::shim {

// Cuts `chain`'s first pbuf off, alone (the caller's, with the chain's
// reference), and returns the rest (with a reference of its own), or
// nullptr. pbuf_dechain lets go of the chain's reference to the rest, so
// the rest takes one first.
inline pbuf* take_first_pbuf(pbuf* chain) {
  pbuf* rest = chain->next;
  if (!rest) return nullptr;
  pbuf_ref(rest);
  pbuf_dechain(chain);
  return rest;
}

}  // namespace xdpload::shim
