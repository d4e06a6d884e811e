#include "rings/xsk_port.h"

#include "rings/private_fd.h"
#include "rings/queue_list.h"

#include <dirent.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace xdpload::rings {

namespace {


// Each queue's fill ring gets at least this many frames, or the port is
// refused: fewer cannot absorb a burst.
constexpr uint32_t kMinFillPerQueue = 64;

// Receive queues the interface has (rx-only plus combined channels), or 0 if
// the driver does not say. Asked through the interface's own namespace
// (ethtool), not sysfs, which may show another namespace's devices.
uint32_t count_rx_queues(const char* ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  int rc = ioctl(s, SIOCETHTOOL, &ifr);
  close(s);
  if (rc != 0) return 0;
  return ch.rx_count + ch.combined_count;
}

// The NUMA node of the interface's device, -1 when it has none (veth).
int interface_numa_node(const char* ifname) {
  char path[128];
  snprintf(path, sizeof path, "/sys/class/net/%s/device/numa_node", ifname);
  FILE* f = fopen(path, "re");
  if (!f) return -1;
  int node = -1;
  if (fscanf(f, "%d", &node) != 1) node = -1;
  fclose(f);
  return node;
}

// A socket that held this queue releases it asynchronously after its owner
// closed it or died: EBUSY for a moment, then free. Retry for up to a second
// before calling the queue taken. Returns bind()'s result (errno set).
int bind_retrying(int fd, const sockaddr_xdp& sa) {
  int rc;
  for (int wait_ms = 1; (rc = bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa)) != 0 &&
                        errno == EBUSY && wait_ms <= 512;
       wait_ms *= 2)
    usleep(wait_ms * 1000);
  return rc;
}

}  // namespace

int XskPort::open(const PortConfig& config, std::unique_ptr<XskPort>* out, ErrorText* why) {
  std::unique_ptr<XskPort> port(new XskPort());
  if (int rc = port->setup(config, why); rc < 0) return rc;
  *out = std::move(port);
  return 0;
}

XskPort::~XskPort() {
  // Unsteer first (the program goes with the link), then the sockets (the
  // UMEM owner last: the others hold a reference to its UMEM anyway), then
  // the memory the kernel was using.
  steering_.detach();
  if (control_) {
    // Everything we hold goes back; the broker also takes back whatever a
    // program leaves when its connection closes.
    trade_with_broker();
    munmap(control_, control_bytes_);
    control_ = nullptr;
  }
  for (int* fd : {&broker_conn_, &broker_kick_fd_})
    if (*fd >= 0) close_private_fd(*fd), *fd = -1;
  for (uint32_t i = nqueues_; i-- > 0;) close_queue(queues_[i]);
}

namespace {

struct ReleaseJob {
  XskPort* port;
  int what;  // -1 the XDP link and maps, else a queue
};

}  // namespace

void XskPort::release_one(int what) {
  if (what < 0) return steering_.detach();
  Queue& q = queues_[what];
  for (int m = 0; m < 4; ++m)
    if (q.maps[m])  // (the mapping holds the socket: replacing it lets go)
      mmap(q.maps[m], q.map_len[m], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
           -1, 0);
  close_private_fd(q.fd);  // the last reference: released on this thread's
  q.fd = -1;               // way back from the call, grace period included
}

void XskPort::release_at_exit() {
  if (control_ || nqueues_ == 0) return;
  const uint32_t n = nqueues_;
  nqueues_ = 0;
  ReleaseJob jobs[1 + kMaxQueues];
  pthread_t threads[1 + kMaxQueues];
  bool started[1 + kMaxQueues] = {};
  for (uint32_t i = 0; i <= n; ++i) jobs[i] = ReleaseJob{this, int(i) - 1};
  // The caller takes the last job itself; one that cannot get a thread too.
  for (uint32_t i = 0; i < n; ++i)
    started[i] = pthread_create(&threads[i], nullptr,
                                [](void* a) -> void* {
                                  auto* j = static_cast<ReleaseJob*>(a);
                                  j->port->release_one(j->what);
                                  return nullptr;
                                },
                                &jobs[i]) == 0;
  release_one(jobs[n].what);
  for (uint32_t i = 0; i < n; ++i) {
    if (started[i]) pthread_join(threads[i], nullptr);
    else release_one(jobs[i].what);
  }
}

void XskPort::close_queue(Queue& q) {
  for (int i = 0; i < 4; ++i)
    if (q.maps[i]) munmap(q.maps[i], q.map_len[i]);
  close_private_fd(q.fd);
  q = Queue();
}

int XskPort::choose_queues(const PortConfig& c, std::vector<uint32_t>* ids, ErrorText* why) {
  interface_queues_ = count_rx_queues(c.iface.c_str());
  const uint32_t have = interface_queues_ ? interface_queues_ : 1;
  if (c.queues.empty()) {
    if (have > kMaxQueues)
      return why->set(EINVAL,
                      "%s has %u receive queues; xdpload serves at most %u (list them in "
                      "XDPLOAD_QUEUES, or lower the count with ethtool -L)",
                      c.iface.c_str(), have, kMaxQueues);
    for (uint32_t q = 0; q < have; ++q) ids->push_back(q);
    return 0;
  }
  for (uint32_t q : c.queues) {
    if (q >= have)
      return why->set(EINVAL, "queue %u is out of range: %s has %u queue%s", q, c.iface.c_str(),
                      have, have == 1 ? "" : "s");
    if (q >= kMaxQueues)
      return why->set(EINVAL, "queue %u is beyond the %u queues xdpload steers", q, kMaxQueues);
    bool dup = false;
    for (uint32_t seen : *ids) dup |= seen == q;
    if (!dup) ids->push_back(q);
  }
  std::sort(ids->begin(), ids->end());
  return 0;
}

int XskPort::setup(const PortConfig& c, ErrorText* why) {
  if (c.iface.empty()) return why->set(EINVAL, "no interface given");
  if (c.iface.size() >= IFNAMSIZ)
    return why->set(EINVAL, "interface name '%s' is longer than %d characters", c.iface.c_str(),
                    IFNAMSIZ - 1);
  iface_ = c.iface;
  ifindex_ = if_nametoindex(c.iface.c_str());
  if (!ifindex_) return why->set(ENODEV, "interface '%s' does not exist", c.iface.c_str());
  if (!power_of_two(c.ring_size) || c.ring_size < 64 || c.ring_size > 32768)
    return why->set(EINVAL, "ring size %u is not a power of two in 64..32768", c.ring_size);
  std::vector<uint32_t> ids;
  if (int rc = choose_queues(c, &ids, why); rc < 0) return rc;
  const uint32_t n = uint32_t(ids.size());

  // The UMEM is the interface's, not a queue's: half of it is lent to the
  // fill rings, split evenly (each at most a ring's worth), the other half
  // stays for transmission and for data the stack holds.
  if (c.umem.frame_count >= Umem::kMinFrames && c.umem.frame_count <= Umem::kMaxFrames) {
    uint32_t share = c.umem.frame_count / (2 * n);
    if (share < kMinFillPerQueue)
      return why->set(EINVAL,
                      "%u frames cannot feed %u receive queue%s (need at least %u frames: "
                      "XDPLOAD_FRAMES)",
                      c.umem.frame_count, n, n == 1 ? "" : "s", 2 * n * kMinFillPerQueue);
    fill_target_ = share < c.ring_size ? share : c.ring_size;
  }
  allow_zero_copy_ = c.allow_zero_copy;
  copy_mode_ignores_tx_metadata_ = builds_tx_skbs_from_umem_pages(c.iface);

  UmemConfig uc = c.umem;
  if (uc.numa_node < 0) uc.numa_node = interface_numa_node(c.iface.c_str());
  uc.shareable = c.broker_owner;
  if (int rc = umem_.create(uc, why); rc < 0) return rc;
  if (c.broker_owner) pool_.init_empty(umem_.frame_count(), umem_.frame_shift());
  else pool_.init(umem_.frame_count(), umem_.frame_shift());

  tx_queues_ = c.broker_owner ? 0 : count_tx_queues(c.iface);
  for (uint32_t i = 0; i < n; ++i) {
    queues_[i].id = ids[i];
    nqueues_ = i + 1;
    if (int rc = make_socket(queues_[i], i == 0, c.ring_size, why); rc < 0) return rc;
  }
  counters_->nqueues = nqueues_;

  // Mode: driver, then SKB (generic) when the driver has no native XDP.
  XdpMode modes[2] = {XdpMode::Driver, XdpMode::Skb};
  int first = c.mode == XdpMode::Skb ? 1 : 0;
  int last = c.mode == XdpMode::Driver ? 0 : 1;
  int rc = -EINVAL;
  for (int m = first; m <= last; ++m) {
    ErrorText attempt;
    rc = steering_.attach(ifindex_, iface_.c_str(), modes[m], &attempt, c.hw_stamps);
    if (rc == 0) {
      rc = bind_owner(modes[m], &attempt);
      if (rc == 0) break;
      steering_.detach();
    }
    *why = attempt;
    // A refusal that no other mode would change: stop here.
    if (rc == -EBUSY || rc == -EPERM || rc == -ENODEV) break;
  }
  if (rc < 0) return rc;

  // The other queues share the owner's UMEM.
  for (uint32_t i = 1; i < nqueues_; ++i) {
    int err = c.test_refuse_shared_umem ? EOPNOTSUPP : bind_shared(queues_[i]);
    if (err == 0) continue;
    if (err == EBUSY)
      return why->set(EBUSY, "queue %u of %s already has an AF_XDP socket bound", queues_[i].id,
                      iface_.c_str());
    // A kernel before 5.10, or a driver that cannot share a UMEM across
    // queues: serve the first queue alone, and say so (the caller prints
    // it): flows hashed to the other queues will not be accelerated.
    char line[200];
    snprintf(line, sizeof line,
             "%s: the kernel refused to share the UMEM with queue %u (%s); serving queue %u only",
             iface_.c_str(), queues_[i].id, strerror(err), queues_[0].id);
    degraded_ = line;
    for (uint32_t j = nqueues_; j-- > 1;) close_queue(queues_[j]);
    nqueues_ = 1;
    tx_rings_ = 1;
    counters_->nqueues = 1;
    break;
  }

  // Lend the kernel frames before the first packet can be steered here.
  refill();
  for (uint32_t i = 0; i < nqueues_; ++i)
    if (int r = steering_.add_socket(queues_[i].id, queues_[i].fd, why); r < 0) return r;
  if (c.mtu) steering_.set_mtu(c.mtu);
  return 0;
}

// Drivers that set IFF_TX_SKB_NO_LINEAR (virtio_net alone, as of 6.18):
// copy mode builds their skbs from the UMEM's pages (xsk_build_skb_zerocopy),
// which never reads transmit metadata, so a checksum left to the kernel
// would leave incomplete. The flag is not visible from user space; the
// driver's name is.
bool XskPort::builds_tx_skbs_from_umem_pages(const std::string& iface) {
  char path[256], target[256];
  snprintf(path, sizeof path, "/sys/class/net/%s/device/driver", iface.c_str());
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0) return false;  // no device behind it (veth)
  target[n] = 0;
  const char* name = strrchr(target, '/');
  return strcmp(name ? name + 1 : target, "virtio_net") == 0;
}

// The interface's transmit queues, as the kernel counts them for an AF_XDP
// socket's bind (real_num_tx_queues: one tx-N entry each in sysfs). A NIC
// may have receive-only channels; a socket with a tx ring on a queue
// without a transmit queue is refused (EINVAL).
uint32_t XskPort::count_tx_queues(const std::string& iface) {
  char path[256];
  snprintf(path, sizeof path, "/sys/class/net/%s/queues", iface.c_str());
  DIR* d = opendir(path);
  if (!d) return 1;
  uint32_t n = 0;
  while (dirent* e = readdir(d)) n += strncmp(e->d_name, "tx-", 3) == 0;
  closedir(d);
  return n ? n : 1;
}

int XskPort::make_socket(Queue& q, bool owns_umem, uint32_t ring_size, ErrorText* why) {
  q.fd = to_private_fd(socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (q.fd < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES)
      return why->set(err,
                      "AF_XDP sockets need CAP_NET_RAW: run as root, or have root run "
                      "`xdpload daemon --iface %s` with a policy that allows this user",
                      iface_.c_str());
    return why->set(err, "cannot create an AF_XDP socket: %s", strerror(err));
  }
  if (owns_umem) {
    // With room for transmit metadata (checksum offload) where the kernel
    // knows it; a kernel before 6.11 refuses the flag (EINVAL), and the
    // UMEM is registered without.
    UmemRegV3 reg{};
    reg.addr = reinterpret_cast<uint64_t>(umem_.base());
    reg.len = umem_.length();
    reg.chunk_size = umem_.frame_size();
    reg.headroom = kUserHeadroom;
    reg.flags = XDP_UMEM_TX_METADATA_LEN;
    reg.tx_metadata_len = sizeof(TxMetadata);
    // Tests only: the kernel completes the checksums in software before the
    // frame leaves, so that a veth peer's kernel (which trusts a partial
    // checksum) verifies what our metadata asked for.
    if (getenv("XL_TEST_TX_SW_CSUM")) reg.flags |= XDP_UMEM_TX_SW_CSUM;
    int rc = setsockopt(q.fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg);
    tx_metadata_ = rc == 0;
    if (rc != 0 && errno == EINVAL) {
      reg.flags = 0;
      reg.tx_metadata_len = 0;
      rc = setsockopt(q.fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg);
    }
    if (rc != 0) {
      int err = errno;
      if (err == ENOBUFS || err == EPERM)
        return why->set(err, "the kernel cannot pin %zu bytes of UMEM (RLIMIT_MEMLOCK?): %s",
                        umem_.length(), strerror(err));
      return why->set(err, "cannot register the UMEM: %s", strerror(err));
    }
  }
  // Every socket has a fill and a completion ring of its own (a socket on
  // another queue cannot use the owner's) and an rx ring. The owner has a
  // tx ring, and so has every other socket whose queue has a transmit
  // queue (tx_queues_; none on a broker's own port, which never
  // transmits): a process transmits on one of them, the owner's unless it
  // is a forked child given another (transmit_on_queue()).
  const bool tx = owns_umem || q.id < tx_queues_;
  uint32_t size = ring_size;
  const int ring_opts[] = {XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING,
                           XDP_TX_RING};
  for (int opt : ring_opts) {
    if (opt == XDP_TX_RING && !tx) continue;
    if (setsockopt(q.fd, SOL_XDP, opt, &size, sizeof size) != 0)
      return why->set(errno, "cannot size the AF_XDP rings to %u: %m", size);
  }
  if (tx) tx_rings_ |= uint64_t(1) << (&q - queues_);
  return map_rings(q, size, /*fill_comp=*/true, tx, why);
}

int XskPort::map_rings(Queue& q, uint32_t size, bool fill_comp, bool tx, ErrorText* why) {
  xdp_mmap_offsets off{};
  socklen_t len = sizeof off;
  if (getsockopt(q.fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0)
    return why->set(errno, "cannot read the AF_XDP ring offsets: %m");

  struct Spec {
    const xdp_ring_offset* o;
    off_t pgoff;
    size_t entry;
  } specs[4] = {
      {&off.fr, off_t(XDP_UMEM_PGOFF_FILL_RING), sizeof(uint64_t)},
      {&off.cr, off_t(XDP_UMEM_PGOFF_COMPLETION_RING), sizeof(uint64_t)},
      {&off.rx, off_t(XDP_PGOFF_RX_RING), sizeof(xdp_desc)},
      {&off.tx, off_t(XDP_PGOFF_TX_RING), sizeof(xdp_desc)},
  };
  RingMap maps[4];
  for (int i = 0; i < 4; ++i) {
    if ((i < 2 && !fill_comp) || (i == 3 && !tx)) continue;
    size_t bytes = specs[i].o->desc + size_t(size) * specs[i].entry;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, q.fd,
                   specs[i].pgoff);
    if (p == MAP_FAILED) return why->set(errno, "cannot map an AF_XDP ring: %m");
    q.maps[i] = p;
    q.map_len[i] = bytes;
    auto* b = static_cast<uint8_t*>(p);
    maps[i].producer = reinterpret_cast<uint32_t*>(b + specs[i].o->producer);
    maps[i].consumer = reinterpret_cast<uint32_t*>(b + specs[i].o->consumer);
    maps[i].flags = reinterpret_cast<uint32_t*>(b + specs[i].o->flags);
    maps[i].entries = b + specs[i].o->desc;
    maps[i].size = size;
  }
  if (fill_comp) {
    q.fill = FillRing(maps[0]);
    q.comp = CompletionRing(maps[1]);
  }
  q.rx = RxRing(maps[2]);
  if (tx) q.tx = TxRing(maps[3]);
  return 0;
}

// Binds the UMEM owner (queues_[0]), which decides the mode every other
// socket inherits.
int XskPort::bind_owner(XdpMode mode, ErrorText* why) {
  Queue& q = queues_[0];
  // Zero-copy needs driver support (veth has none): ask for it only in driver
  // mode, and fall back to copy when refused. Multi-buffer (kernels from 6.6)
  // first, without it when refused: then packets larger than a frame, which
  // generic XDP sees after GRO or from a GSO sender, are dropped.
  struct Try {
    uint16_t flags;
    bool zero_copy;
  } tries[4] = {{XDP_ZEROCOPY | XDP_USE_SG, true},
                {XDP_ZEROCOPY, true},
                {XDP_COPY | XDP_USE_SG, false},
                {XDP_COPY, false}};
  bool want_zc = mode == XdpMode::Driver && allow_zero_copy_;
  int err = 0;
  for (const Try& t : tries) {
    if (t.zero_copy && !want_zc) continue;
    sockaddr_xdp sa{};
    sa.sxdp_family = AF_XDP;
    sa.sxdp_ifindex = ifindex_;
    sa.sxdp_queue_id = q.id;
    sa.sxdp_flags = t.flags | XDP_USE_NEED_WAKEUP;
    if (bind_retrying(q.fd, sa) == 0) {
      xdp_options opts{};
      socklen_t len = sizeof opts;
      zero_copy_ = getsockopt(q.fd, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0 &&
                   (opts.flags & XDP_OPTIONS_ZEROCOPY);
      multi_buffer_ = (t.flags & XDP_USE_SG) != 0;
      tx_checksum_offload_ = tx_metadata_ && !zero_copy_ && !copy_mode_ignores_tx_metadata_;
      return 0;
    }
    err = errno;
    if (err == EBUSY) break;
  }
  if (err == EBUSY)
    return why->set(EBUSY, "queue %u of %s already has an AF_XDP socket bound", q.id,
                    iface_.c_str());
  if (err == EINVAL)
    return why->set(EINVAL, "cannot bind an AF_XDP socket to queue %u of %s (no such queue?)",
                    q.id, iface_.c_str());
  return why->set(err, "cannot bind an AF_XDP socket to %s queue %u in %s mode: %s",
                  iface_.c_str(), q.id, xdp_mode_name(mode), strerror(err));
}

// Binds a socket of another queue to the owner's UMEM. It takes no mode
// flags: copy or zero-copy, need-wakeup and multi-buffer come from the
// owner. Returns 0 or an errno.
int XskPort::bind_shared(Queue& q) {
  sockaddr_xdp sa{};
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = ifindex_;
  sa.sxdp_queue_id = q.id;
  sa.sxdp_flags = XDP_SHARED_UMEM;
  sa.sxdp_shared_umem_fd = uint32_t(queues_[0].fd);
  return bind_retrying(q.fd, sa) == 0 ? 0 : errno;
}

uint32_t XskPort::refill() {
  if (control_) return trade_with_broker();
  // Each queue's fill ring is topped up to fill_target(), starting one
  // further each call so that a short pool is shared out, not always spent
  // on the first queue. A full ring costs one load of its consumer index.
  uint32_t total = 0;
  rx_since_refill_ = 0;
  refill_short_ = false;
  for (uint32_t k = 0; k < nqueues_; ++k) {
    if (pool_.empty()) {  // the rings not looked at may be short
      refill_short_ = true;
      break;
    }
    uint32_t i = next_fill_ + k;
    if (i >= nqueues_) i -= nqueues_;
    Queue& q = queues_[i];
    uint32_t lent = q.fill.outstanding();
    if (lent >= fill_target_) continue;
    uint32_t want = fill_target_ - lent;
    if (want > pool_.size()) {
      want = pool_.size();
      refill_short_ = true;
    }
    // The kernel may have published an rx descriptor before consuming the
    // fill slot its frame came from, so the ring can hold fewer free slots
    // than the frames we just got back: fill what fits, the rest waits in
    // the pool.
    uint32_t room = q.fill.free_slots(want);
    if (room < want) {
      want = room;
      refill_short_ = true;
    }
    uint32_t idx;
    if (!want || !q.fill.reserve(want, &idx)) continue;
    for (uint32_t j = 0; j < want; ++j) {
      uint64_t addr = 0;
      pool_.alloc(&addr);
      q.fill.at(idx + j) = addr;
    }
    q.fill.submit();
    total += want;
    if (q.fill.needs_wakeup()) {
      // Only some drivers ask; copy mode never did on the machines we measured.
      ++counters_->fill_wakeups;
      recvfrom(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    }
  }
  if (++next_fill_ >= nqueues_) next_fill_ = 0;
  return total;
}

uint32_t XskPort::reap() {
  // A broker's program: the broker reaps the shared completion ring and
  // passes our sent frames back with its grants.
  if (control_) return trade_with_broker();
  // Only the rings transmitted on have completions to look at (one, in a
  // process alone).
  uint32_t total = 0;
  for (uint64_t m = tx_used_; m; m &= m - 1) {
    Queue& q = queues_[__builtin_ctzll(m)];
    uint32_t idx;
    uint32_t n = q.comp.peek(q.comp.size(), &idx);
    for (uint32_t i = 0; i < n; ++i)
      sent_frame_done(q.comp.at(idx + i));
    if (n) q.comp.release(n);
    total += n;
  }
  return total;
}

void XskPort::kick_tx(Queue& q) {
  tx_blocked_ = false;
  // Copy mode sends a bounded batch per call and answers EAGAIN while more is
  // left, EBUSY when the completion ring is full: keep going while the kernel
  // is making progress.
  for (int spins = 0; spins < 1024; ++spins) {
    ++counters_->kicks;
    trace::mark(trace::kKickEnters);
    const ssize_t kicked = sendto(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    trace::mark(trace::kKickReturns);
    if (kicked >= 0) {
      if (!q.tx.outstanding()) return;
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EINTR) {
      reap();
      if (!q.tx.outstanding()) return;
      // EAGAIN also when the completion ring is full. A broker's program
      // cannot empty it (the broker reaps the ring the queue's programs
      // share): wake the broker, and flush again soon (tx_blocked()).
      if (control_ && err == EAGAIN && spins >= 8) {
        wake_broker();
        tx_blocked_ = true;
        return;
      }
      continue;
    }
    if (err == EBUSY) {
      // The completion ring is full; under a broker, the broker empties it.
      if (control_) {
        wake_broker();
        tx_blocked_ = true;
      }
      if (!reap()) break;  // nothing to make room with: try again later
      continue;
    }
    // ENOBUFS (driver queue full), ENETDOWN...: the frames stay queued and go
    // out at the next kick.
    ++counters_->kick_errors;
    break;
  }
  // Frames left: noted, for the next release of the lock to try again
  // (a flush looks only at the rings written since the last one, and its
  // own; this one may be another process's).
  if (kick_after_release_ && q.tx.outstanding()) note_kick(uint64_t(1) << (&q - queues_));
}

void XskPort::kick_once(Queue& q) {
  ++counters_->kicks;
  sendto(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
  reap();
}

uint32_t XskPort::flush() {
  // Our ring, and the rings written since the last flush (another
  // process's when it queued datagrams and left them for a later flush,
  // runtime.h's tx_unkicked). Another ring with frames left from before is
  // its own process's to kick: it noted itself again if its kick left any
  // (kick_after_release()); kick_stale_rings() sends what a dead one left.
  for (uint64_t m = tx_dirty_ | (uint64_t(1) << tx_queue()); m; m &= m - 1) {
    Queue& q = queues_[__builtin_ctzll(m)];
    // (Only a ring written to: the store takes the producer index's cache
    // line from the CPU where the kernel reads it, and a spinning program
    // flushes at every poll.)
    if (tx_dirty_ & m & -m) q.tx.submit();
    if (q.tx.outstanding() && q.tx.needs_wakeup()) {
      if (kick_after_release_) note_kick(m & -m);
      else kick_tx(q);
    }
  }
  tx_dirty_ = 0;
  tx_unsubmitted_ = 0;
  reap();
  return queues_[tx_queue()].tx.outstanding();
}

void XskPort::kick_stale_rings() {
  if (control_) return;  // (under a broker, flush() kicks the one ring whenever it holds frames)
  for (uint64_t m = tx_used_; m; m &= m - 1) {
    Queue& q = queues_[__builtin_ctzll(m)];
    // Frames waiting at the last look, and none consumed since.
    const uint32_t consumed = __atomic_load_n(q.tx.consumer_index(), __ATOMIC_ACQUIRE);
    const bool waiting = q.tx.published() != 0;
    const bool waited = waiting && q.tx_waiting_at_look && consumed == q.tx_consumed_at_look;
    q.tx_consumed_at_look = consumed;
    q.tx_waiting_at_look = waiting;
    if (waited) {
      // (One system call, the lock held: a device that refuses frames
      // must not hold the family here; the next look tries again.)
      ++counters_->stale_tx_kicks;
      kick_once(q);
    }
  }
}

bool XskPort::kick_after_release() {
  uint64_t rings = take_kick_notes();
  if (!rings) return true;
  if (test_dies_in_kick_) raise(SIGKILL);
  uint64_t stuck = 0;
  each_ring_own_last(rings, [&](uint32_t i) {
    // The ring's shared indexes only: another thread may be queueing.
    Queue& q = queues_[i];
    uint32_t left = q.tx.published();
    for (int spins = 0; left && spins < 64; ++spins) {
      __atomic_fetch_add(&counters_->kicks_after_release, 1, __ATOMIC_RELAXED);
      const ssize_t kicked = sendto(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      if (kicked >= 0) {  // sent (copy mode), or the driver woken
        left = 0;
        break;
      }
      const int err = errno;
      const uint32_t now_left = q.tx.published();
      // Copy mode sends a bounded batch per call (EAGAIN while more is left);
      // EAGAIN without progress is a full completion ring, EBUSY too.
      if ((err != EAGAIN && err != EINTR) || now_left >= left) break;
      left = now_left;
    }
    if (left) stuck |= uint64_t(1) << i;
  });
  if (!stuck) return true;
  note_kick(stuck);
  return false;
}

uint32_t XskPort::fill_frames() const {
  uint32_t n = 0;
  if (control_) return 0;
  for (uint32_t i = 0; i < nqueues_; ++i) n += queues_[i].fill.published();
  return n;
}

uint32_t XskPort::rx_frames_waiting() const {
  uint32_t n = 0;
  for (uint32_t i = 0; i < nqueues_; ++i) n += queues_[i].rx.unreleased();
  return n;
}

uint32_t XskPort::tx_frames_in_flight() const {
  // Queued for sending (submitted or not) plus completed but not reaped
  // (a broker's program: the broker reaps).
  uint32_t n = tx_unsubmitted_;
  for (uint64_t m = tx_used_; m; m &= m - 1) {
    const Queue& q = queues_[__builtin_ctzll(m)];
    n += q.tx.published() + (control_ ? 0 : q.comp.unreleased());
  }
  return n;
}

void XskPort::abandon() {
  // Only this process's descriptors close: the port object itself is in
  // the family arena, shared with the parent, which goes on using it.
  for (uint32_t i = 0; i < nqueues_; ++i) close_private_fd(queues_[i].fd);
  steering_.abandon();
  for (int fd : {broker_conn_, broker_kick_fd_})
    if (fd >= 0) close_private_fd(fd);
}

void XskPort::refresh_kernel_stats() {
  PortCounters& c = *counters_;
  c.rx_dropped = c.rx_ring_full = c.rx_fill_ring_empty = 0;
  c.rx_invalid_descs = c.tx_invalid_descs = 0;
  for (uint32_t i = 0; i < nqueues_; ++i) {
    xdp_statistics st{};
    socklen_t len = sizeof st;
    QueueCounters& qc = c.queue[i];
    if (getsockopt(queues_[i].fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
      qc.rx_dropped = st.rx_dropped;
      qc.rx_ring_full = st.rx_ring_full;
      qc.rx_fill_ring_empty = st.rx_fill_ring_empty_descs;
      c.rx_invalid_descs += st.rx_invalid_descs;
      c.tx_invalid_descs += st.tx_invalid_descs;
    }
    c.rx_dropped += qc.rx_dropped;
    c.rx_ring_full += qc.rx_ring_full;
    c.rx_fill_ring_empty += qc.rx_fill_ring_empty;
    qc.steer_redirected = steering_.queue_redirected(queues_[i].id);
  }
}

std::string XskPort::queue_list() const {
  uint32_t ids[kMaxQueues];
  for (uint32_t i = 0; i < nqueues_; ++i) ids[i] = queues_[i].id;
  return format_queue_list(ids, nqueues_);
}

std::string XskPort::mode_string() const {
  std::string s = control_ ? "broker slot " + std::to_string(slot_) + " " +
                                 (driver_mode_ ? "driver" : "skb")
                           : xdp_mode_name(steering_.mode());
  s += zero_copy_ ? "/zero-copy" : "/copy";
  return s;
}

}  // namespace xdpload::rings
