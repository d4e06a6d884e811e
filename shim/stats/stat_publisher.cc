#include "shim/stats/stat_publisher.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/stats/stat_shm.h"
#include "shim/runtime/runtime.h"

extern "C" {
#include "lwip/stats.h"
}

namespace xdpload::shim {

namespace {

uint64_t unix_ns() {
  timespec ts;
  libc::clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

bool StatPublisher::start() {
  Runtime& rt = Runtime::get();
  ErrorText why;
  seg_ = stats::create_segment(&shmid_, &why);  // zero-filled
  if (!seg_) {
    log_at(kLogError, "statistics off (xdpload-stat will not list this process): %s", why.c_str());
    return false;
  }
  seg_->version = stats::kVersion;
  seg_->pid = getpid();
  seg_->started_unix_ns = unix_ns();
  if (FILE* f = fopen("/proc/self/comm", "re")) {
    if (fgets(seg_->command, sizeof seg_->command, f)) seg_->command[strcspn(seg_->command, "\n")] = 0;
    fclose(f);
  }
  rings::XskPort* port = rt.stack()->port();
  snprintf(seg_->iface, sizeof seg_->iface, "%s", port->iface().c_str());
  snprintf(seg_->mode, sizeof seg_->mode, "%s", port->mode_string().c_str());
  seg_->interface_queues = port->interface_queues();
  for (uint32_t i = 0; i < port->queue_count(); ++i) seg_->queue_id[i] = uint8_t(port->queue_id(i));
  seg_->frames = port->frame_count();
  // From now on the live counters are the segment's.
  port->place_counters(&seg_->port);
  rt.stack()->driver().place_counters(&seg_->netif);
  // The magic last: a reader that sees it sees a filled header.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  memcpy(seg_->magic, stats::kMagic, sizeof seg_->magic);
  return true;
}

void StatPublisher::refresh() {
  if (!seg_) return;
  Runtime& rt = Runtime::get();
  rings::XskPort* port = rt.stack()->port();
  const uint32_t asked = __atomic_load_n(&seg_->refresh_asked, __ATOMIC_ACQUIRE);
  __atomic_store_n(&seg_->seq, seg_->seq + 1, __ATOMIC_RELEASE);
  // One instant for every figure: lwIP and the port only move under the
  // CoreLock, which we hold. The steering program counts last, so that
  // what it redirected covers everything received or dropped (the rest is
  // in the rings).
  port->refresh_kernel_stats();
  seg_->port_at_refresh = seg_->port;
  seg_->netif_at_refresh = seg_->netif;
  seg_->shim_at_refresh = seg_->shim;
  const auto& m = lwip_stats.mib2;
  seg_->tcp_active_opens = m.tcpactiveopens;
  seg_->tcp_passive_opens = m.tcppassiveopens;
  seg_->tcp_in_segs = m.tcpinsegs;
  seg_->tcp_out_segs = m.tcpoutsegs;
  seg_->tcp_retrans_segs = m.tcpretranssegs;
  seg_->udp_in_datagrams = m.udpindatagrams;
  seg_->udp_out_datagrams = m.udpoutdatagrams;
  seg_->tcp = stack::tcp_events();
  rings::SteeringStats st = port->steering().stats();
  seg_->steer_redirected = st.redirected;
  seg_->steer_passed = st.passed;
  seg_->steer_no_socket = st.no_socket;

  // The socket table.
  uint32_t n = 0, total = 0;
  for (Socket* s = rt.live_sockets(); s; s = s->live_next, ++total)
    if (n < stats::kMaxSockets) s->stat_row(&seg_->sockets[n++]);
  seg_->nsockets = n;
  seg_->total_sockets = total;
  seg_->refreshed_unix_ns = unix_ns();
  seg_->refresh_done = asked;
  __atomic_store_n(&seg_->seq, seg_->seq + 1, __ATOMIC_RELEASE);
}

bool StatPublisher::refresh_asked() const {
  return seg_ && __atomic_load_n(&seg_->refresh_asked, __ATOMIC_ACQUIRE) != seg_->refresh_done;
}

bool StatPublisher::holder() const {
  return seg_ && __atomic_load_n(&seg_->pid, __ATOMIC_ACQUIRE) == getpid();
}

void StatPublisher::hand_to(pid_t pid) {
  if (!holder() || pid <= 0) return;
  __atomic_store_n(&seg_->pid, int32_t(pid), __ATOMIC_RELEASE);
}

void StatPublisher::take_from(pid_t dead) {
  if (!seg_ || __atomic_load_n(&seg_->pid, __ATOMIC_ACQUIRE) != dead) return;
  __atomic_store_n(&seg_->pid, int32_t(getpid()), __ATOMIC_RELEASE);
}

void StatPublisher::keep_private_copy() {
  if (!seg_) return;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t len = (sizeof(stats::Segment) + page - 1) / page * page;
  void* copy = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (copy == MAP_FAILED) return;  // (it stays attached while this child lives)
  memcpy(copy, seg_, sizeof(stats::Segment));
  // The copy's pages take the segment's place (detaching it), in one step.
  if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, seg_) == MAP_FAILED) munmap(copy, len);
}

void StatPublisher::give_to(uid_t uid) {
  // A forked child of the family holds its parent's segment: not its to give.
  if (!holder() || uid == geteuid()) return;
  ErrorText why;
  if (!stats::give_segment(shmid_, uid, &why))
    log_at(kLogError, "xdpload-stat will list this process to root only: %s", why.c_str());
}

}  // namespace xdpload::shim
