#include "shim/stats/stat_publisher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/stats/stat_dir.h"
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
  owner_pid_ = getpid();
  uid_ = geteuid();
  // Segments of this user's processes that died without removing theirs.
  stats::remove_dead(uid_);
  ErrorText why;
  int fd = stats::create_segment(uid_, owner_pid_, &why);
  if (fd < 0) {
    log_at(kLogError, "statistics off (xdpload-stat will not list this process): %s", why.c_str());
    return false;
  }
  std::string path = stats::path_for(uid_, owner_pid_);
  void* p = MAP_FAILED;
  if (ftruncate(fd, sizeof(stats::Segment)) == 0)
    p = mmap(nullptr, sizeof(stats::Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  libc::close(fd);
  if (p == MAP_FAILED) {
    unlink(path.c_str());
    stats::remove_dir_if_empty(uid_);
    return false;
  }
  seg_ = static_cast<stats::Segment*>(p);  // zero-filled by ftruncate
  seg_->version = stats::kVersion;
  seg_->pid = owner_pid_;
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
  // (Renamed in place: both processes run as the same user, uid_ its
  // directory's. A reader between the two steps sees either name with a
  // live pid.)
  if (rename(stats::path_for(uid_, getpid()).c_str(), stats::path_for(uid_, pid).c_str()) == 0)
    __atomic_store_n(&seg_->pid, int32_t(pid), __ATOMIC_RELEASE);
}

void StatPublisher::take_from(pid_t dead) {
  if (!seg_ || __atomic_load_n(&seg_->pid, __ATOMIC_ACQUIRE) != dead) return;
  // (Another process of the user may have removed the dead pid's file
  // first: the family is then unlisted until it ends.)
  const pid_t me = getpid();
  if (rename(stats::path_for(uid_, dead).c_str(), stats::path_for(uid_, me).c_str()) == 0)
    __atomic_store_n(&seg_->pid, int32_t(me), __ATOMIC_RELEASE);
}

void StatPublisher::give_to(uid_t uid) {
  // A forked child of the family holds its parent's segment: not its to give.
  if (!holder() || uid == uid_) return;
  const pid_t me = getpid();
  // The file becomes the user's (changed through a descriptor while it is
  // still in our own directory, where no one else can swap it for a link),
  // then moves into that user's directory, so that the process can remove
  // it at exit once it runs as that user.
  std::string from = stats::path_for(uid_, me);
  int fd = open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  int rc = fchown(fd, uid, gid_t(-1));
  libc::close(fd);
  ErrorText why;
  int dfd = rc == 0 ? stats::open_dir(uid, true, &why) : -1;
  if (dfd < 0) {
    // It stays where it is; the next start or xdpload-stat of this user
    // removes it once the process is gone.
    log_at(kLogError, "statistics segment left in %s: %s", stats::dir_for(uid_).c_str(),
           rc == 0 ? why.c_str() : strerror(errno));
    return;
  }
  libc::close(dfd);
  if (rename(from.c_str(), stats::path_for(uid, me).c_str()) == 0) {
    stats::remove_dir_if_empty(uid_);
    uid_ = uid;
  }
}

void StatPublisher::remove() {
  if (holder()) {
    unlink(stats::path_for(uid_, getpid()).c_str());
    stats::remove_dir_if_empty(uid_);
  }
}

}  // namespace xdpload::shim
