// XskPort as a broker's program (rings/broker_protocol.h): the sockets,
// UMEM and control segment a broker handed over, frames traded with the
// broker instead of a fill and completion ring of its own, ports claimed
// from the broker instead of set in the XDP map, and what happens when the
// broker goes away.
#include "rings/xsk_port.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>

#include "rings/broker_client.h"
#include "rings/private_fd.h"

namespace xdpload::rings {

int XskPort::open_brokered(const std::string& iface, BrokerGrant* g,
                           std::unique_ptr<XskPort>* out, ErrorText* why,
                           const char* test_hoard_until) {
  std::unique_ptr<XskPort> port(new XskPort());
  if (test_hoard_until)
    snprintf(port->test_hoard_until_, sizeof port->test_hoard_until_, "%s", test_hoard_until);
  int rc = port->adopt_broker_sockets(g, why);
  g->close_unused();
  if (rc < 0) return rc;
  port->iface_ = iface;
  port->ifindex_ = int(if_nametoindex(iface.c_str()));
  *out = std::move(port);
  return 0;
}

int XskPort::adopt_broker_sockets(BrokerGrant* g, ErrorText* why) {
  const broker::Welcome& w = g->welcome;
  if (w.ring_size < 64 || w.ring_size > 32768 || !power_of_two(w.ring_size) ||
      w.control_bytes < sizeof(broker::Control) || w.quota == 0)
    return why->set(EPROTO, "the broker's welcome has an invalid ring size or segment");
  if (int rc = umem_.adopt(g->umem_fd, w.frame_count, w.frame_size, w.umem_bytes, why); rc < 0) {
    g->umem_fd = -1;
    return rc;
  }
  g->umem_fd = -1;
  void* ctl = mmap(nullptr, w.control_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, g->control_fd, 0);
  if (ctl == MAP_FAILED) return why->set(errno, "cannot map the broker's control segment: %m");
  control_ = static_cast<broker::Control*>(ctl);
  control_bytes_ = w.control_bytes;
  if (control_->magic != broker::kMagic || control_->version != broker::kVersion)
    return why->set(EPROTO, "the broker's control segment is not version %u", broker::kVersion);
  pool_.init_empty(umem_.frame_count(), umem_.frame_shift());
  slot_ = w.slot;
  quota_ = w.quota;
  kick_after_rx_ = w.fill_target >= 2 ? w.fill_target / 2 : 32;
  // Free frames kept for sending (a burst's worth); the rest goes back to
  // the broker for the fill rings.
  keep_frames_ = std::min<uint32_t>(w.quota / 4, 512);
  driver_mode_ = (w.flags & broker::kDriverMode) != 0;
  brokered_meta_key_ = w.rx_meta_key;
  zero_copy_ = (w.flags & broker::kZeroCopy) != 0;
  multi_buffer_ = (w.flags & broker::kMultiBuffer) != 0;
  tx_checksum_offload_ = (w.flags & broker::kTxChecksum) != 0 && !zero_copy_;
  interface_queues_ = w.interface_queues;
  for (uint32_t i = 0; i < w.nqueues; ++i) {
    Queue& q = queues_[i];
    q.id = w.queue_ids[i];
    q.fd = g->xsk_fds[i];
    g->xsk_fds[i] = -1;
    nqueues_ = i + 1;
    if (int rc = map_rings(q, w.ring_size, /*fill_comp=*/false, /*tx=*/i == 0, why); rc < 0)
      return rc;
  }
  counters_->nqueues = nqueues_;
  if (!zero_copy_) {
    reclaim_on_consume_ = true;
    tx_sent_.assign(w.ring_size, 0);
    tx_reclaimed_ = *queues_[0].tx_consumer_ptr();
  }
  broker_conn_ = g->conn;
  broker_kick_fd_ = g->kick_fd;
  g->conn = g->kick_fd = -1;
  trade_with_broker();
  return 0;
}

void XskPort::wake_broker() {
  uint64_t one = 1;
  if (write(broker_kick_fd_, &one, sizeof one) < 0) {
    // EAGAIN: the counter is already huge, the broker is awake anyway.
  }
  returned_since_kick_ = 0;
  rx_at_kick_ = counters_->rx_frames;
}

uint32_t XskPort::reclaim_sent() {
  Queue& q = queues_[0];
  if (!nqueues_ || !q.tx.size()) return 0;
  uint32_t cons = __atomic_load_n(q.tx_consumer_ptr(), __ATOMIC_ACQUIRE);
  uint32_t n = 0;
  for (; tx_reclaimed_ != cons && n <= q.tx.size(); ++tx_reclaimed_, ++n)
    sent_frame_done(tx_sent_[tx_reclaimed_ & (q.tx.size() - 1)]);
  return n;
}

uint32_t XskPort::trade_with_broker() {
  if (reclaim_on_consume_) reclaim_sent();
  broker::FrameQueue& in = control_->to_program;
  uint32_t n = in.waiting();
  if (n == UINT32_MAX) n = 0;  // the broker wrote nonsense: take nothing
  for (uint32_t i = 0; i < n; ++i) sent_frame_done(in.at(i));
  if (n) in.consume(n);
  // Frames beyond what we keep for sending go back, to be lent to the fill
  // rings again. The broker is woken every so often, not per frame: it also
  // wakes by itself every millisecond.
  if (test_hoard_until_[0] && access(test_hoard_until_, F_OK) != 0) return n;
  broker::FrameQueue& out = control_->to_broker;
  uint32_t back = 0;
  while (pool_.size() > keep_frames_ && out.room()) {
    uint64_t addr = 0;
    pool_.alloc(&addr);
    out.push(addr);
    ++back;
  }
  // The broker refills the fill rings when woken: after half a fill
  // ring's worth of frames received (what could have drained one), or a
  // quota's worth given back.
  returned_since_kick_ += back;
  uint32_t every = __atomic_load_n(&control_->kick_every, __ATOMIC_RELAXED);
  if (every == 0 || every > kick_after_rx_) every = kick_after_rx_;
  if (counters_->rx_frames - rx_at_kick_ >= every || returned_since_kick_ >= quota_ / 2)
    wake_broker();
  return n;
}

void XskPort::broker_lost() {
  broker_gone_ = true;
  const uint32_t n = nqueues_;
  nqueues_ = 0;
  counters_->nqueues = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Queue& q = queues_[i];
    for (int m = 0; m < 4; ++m) {
      if (!q.maps[m]) continue;
      // The socket's mapping holds the socket: replacing it lets it go.
      mmap(q.maps[m], q.map_len[m], PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    }
    close_private_fd(q.fd);
    q.fd = -1;
  }
  for (int* fd : {&broker_conn_, &broker_kick_fd_})
    if (*fd >= 0) close_private_fd(*fd), *fd = -1;
}

int XskPort::steer(uint8_t proto, uint16_t port, int backing_fd, ErrorText* why) {
  if (!control_) {
    int rc = steering_.steer(proto, port);
    return rc < 0 ? why->set(-rc, "the steering map is not mapped") : 0;
  }
  if (broker_gone_) return why->set(ENOTCONN, "the xdpload broker of %s is gone", iface_.c_str());
  return broker_claim(broker_conn_, next_broker_seq(), proto, port, backing_fd, why);
}

void XskPort::unsteer(uint8_t proto, uint16_t port) {
  if (!control_) {
    steering_.unsteer(proto, port);
    return;
  }
  if (!broker_gone_) broker_release(broker_conn_, next_broker_seq(), proto, port);
}

int XskPort::share_port(uint8_t proto, uint16_t port, bool shared) {
  if (!control_) return steering_.share_port(proto, port, shared);
  if (broker_gone_) return -ENOTCONN;
  ErrorText why;
  return broker_share(broker_conn_, next_broker_seq(), proto, port, shared, &why);
}

int XskPort::share_group_frames(uint16_t udp_port, bool shared) {
  if (control_) return -EOPNOTSUPP;
  return steering_.share_group_frames(udp_port, shared);
}

int XskPort::add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                      uint16_t remote_port_be, uint8_t whose) {
  if (!control_) return steering_.add_flow(proto, local_port_be, remote_ip, remote_port_be, whose);
  if (broker_gone_) return -ENOTCONN;
  ErrorText why;
  return broker_flow(broker_conn_, next_broker_seq(), proto, ntohs(local_port_be), remote_ip, ntohs(remote_port_be),
                     whose, &why);
}

int XskPort::handover(uint8_t step, const RepairState& state, const uint8_t* in,
                      const uint8_t* out, int* conn_fd, ErrorText* why) {
  if (conn_fd) *conn_fd = -1;
  if (!control_) return why->set(EPERM, "no broker to ask");
  if (broker_gone_) return why->set(ENOTCONN, "the xdpload broker of %s is gone", iface_.c_str());
  return broker_handover(broker_conn_, next_broker_seq(), step, state, in, out, conn_fd, why);
}

int XskPort::remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                         uint16_t remote_port_be) {
  if (!control_) return steering_.remove_flow(proto, local_port_be, remote_ip, remote_port_be);
  if (broker_gone_) return 0;  // (the broker's steering went with it)
  ErrorText why;
  int rc = broker_flow(broker_conn_, next_broker_seq(), proto, ntohs(local_port_be), remote_ip, ntohs(remote_port_be),
                       0, &why);
  return rc == -ENOENT ? 0 : rc;
}

}  // namespace xdpload::rings
