// A test stream and an lwIP receiver that checks it: stream_byte(i) is the
// byte at offset i of the stream a test sends; TcpSink, installed on a
// listener with tcp_accept(listener, sink_accept), counts what arrives and
// every byte that differs from the stream. Use with the CoreLock held.
#pragma once

#include <cstdint>

extern "C" {
#include "lwip/tcp.h"
}

namespace xdpload::testing {

inline uint8_t stream_byte(uint64_t offset) {
  uint64_t x = (offset / 8 + 1) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  return uint8_t(x >> ((offset % 8) * 8));
}

struct TcpSink {
  uint64_t received = 0;
  uint64_t mismatches = 0;
  bool closed = false;
  struct tcp_pcb* pcb = nullptr;
};

inline err_t sink_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t) {
  auto* s = static_cast<TcpSink*>(arg);
  if (!p) {
    s->closed = true;
    tcp_close(pcb);
    s->pcb = nullptr;
    return ERR_OK;
  }
  for (struct pbuf* q = p; q; q = q->next) {
    auto* d = static_cast<const uint8_t*>(q->payload);
    for (uint16_t i = 0; i < q->len; ++i)
      if (d[i] != stream_byte(s->received + i)) ++s->mismatches;
    s->received += q->len;
  }
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  return ERR_OK;
}

inline err_t sink_accept(void* arg, struct tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || !pcb) return ERR_VAL;
  auto* s = static_cast<TcpSink*>(arg);
  s->pcb = pcb;
  tcp_arg(pcb, s);
  tcp_recv(pcb, sink_recv);
  return ERR_OK;
}

}  // namespace xdpload::testing
