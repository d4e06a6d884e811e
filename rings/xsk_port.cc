#include "rings/xsk_port.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace xdpload::rings {

namespace {

bool power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

// Queues the interface has (rx or combined), or 0 if the driver does not say.
uint32_t interface_queues(const char* ifname) {
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
  uint32_t n = ch.rx_count > ch.combined_count ? ch.rx_count : ch.combined_count;
  return n;
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

}  // namespace

int XskPort::open(const PortConfig& config, std::unique_ptr<XskPort>* out, ErrorText* why) {
  std::unique_ptr<XskPort> port(new XskPort());
  if (int rc = port->setup(config, why); rc < 0) return rc;
  *out = std::move(port);
  return 0;
}

XskPort::~XskPort() {
  // Unsteer first (the program goes with the link), then the socket, then the
  // memory the kernel was using.
  steering_.detach();
  for (int i = 0; i < 4; ++i)
    if (ring_maps_[i]) munmap(ring_maps_[i], ring_map_len_[i]);
  if (fd_ >= 0) close(fd_);
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
  if (c.umem.frame_count < 2 * c.ring_size && c.umem.frame_count >= Umem::kMinFrames &&
      c.umem.frame_count <= Umem::kMaxFrames)
    return why->set(EINVAL, "%u frames cannot feed rings of %u (need at least %u)",
                    c.umem.frame_count, c.ring_size, 2 * c.ring_size);
  uint32_t queues = interface_queues(c.iface.c_str());
  if (queues && c.queue >= queues)
    return why->set(EINVAL, "queue %u is out of range: %s has %u queue%s", c.queue,
                    c.iface.c_str(), queues, queues == 1 ? "" : "s");
  queue_ = c.queue;
  allow_zero_copy_ = c.allow_zero_copy;

  UmemConfig uc = c.umem;
  if (uc.numa_node < 0) uc.numa_node = interface_numa_node(c.iface.c_str());
  if (int rc = umem_.create(uc, why); rc < 0) return rc;
  pool_.init(umem_.frame_count(), umem_.frame_shift());

  fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES)
      return why->set(err, "AF_XDP sockets need CAP_NET_RAW (run as root)");
    return why->set(err, "cannot create an AF_XDP socket: %s", strerror(err));
  }

  xdp_umem_reg reg{};
  reg.addr = reinterpret_cast<uint64_t>(umem_.base());
  reg.len = umem_.length();
  reg.chunk_size = umem_.frame_size();
  reg.headroom = kUserHeadroom;
  if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0) {
    int err = errno;
    if (err == ENOBUFS || err == EPERM)
      return why->set(err, "the kernel cannot pin %zu bytes of UMEM (RLIMIT_MEMLOCK?): %s",
                      umem_.length(), strerror(err));
    return why->set(err, "cannot register the UMEM: %s", strerror(err));
  }
  uint32_t size = c.ring_size;
  const int ring_opts[] = {XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING,
                           XDP_TX_RING};
  for (int opt : ring_opts)
    if (setsockopt(fd_, SOL_XDP, opt, &size, sizeof size) != 0)
      return why->set(errno, "cannot size the AF_XDP rings to %u: %m", size);
  if (int rc = map_rings(size, why); rc < 0) return rc;

  // Lend the kernel frames before the first packet can arrive.
  refill();

  // Mode: driver, then SKB (generic) when the driver has no native XDP.
  XdpMode modes[2] = {XdpMode::Driver, XdpMode::Skb};
  int first = c.mode == XdpMode::Skb ? 1 : 0;
  int last = c.mode == XdpMode::Driver ? 0 : 1;
  int rc = -EINVAL;
  for (int m = first; m <= last; ++m) {
    ErrorText attempt;
    rc = steering_.attach(ifindex_, iface_.c_str(), modes[m], &attempt);
    if (rc == 0) {
      rc = bind_socket(modes[m], &attempt);
      if (rc == 0) break;
      steering_.detach();
    }
    *why = attempt;
    // A refusal that no other mode would change: stop here.
    if (rc == -EBUSY || rc == -EPERM || rc == -ENODEV) break;
  }
  if (rc < 0) return rc;

  if (int r = steering_.add_socket(queue_, fd_, why); r < 0) return r;
  if (c.mtu) steering_.set_mtu(c.mtu);
  return 0;
}

int XskPort::map_rings(uint32_t size, ErrorText* why) {
  xdp_mmap_offsets off{};
  socklen_t len = sizeof off;
  if (getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0)
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
    size_t bytes = specs[i].o->desc + size_t(size) * specs[i].entry;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
                   specs[i].pgoff);
    if (p == MAP_FAILED) return why->set(errno, "cannot map an AF_XDP ring: %m");
    ring_maps_[i] = p;
    ring_map_len_[i] = bytes;
    auto* b = static_cast<uint8_t*>(p);
    maps[i].producer = reinterpret_cast<uint32_t*>(b + specs[i].o->producer);
    maps[i].consumer = reinterpret_cast<uint32_t*>(b + specs[i].o->consumer);
    maps[i].flags = reinterpret_cast<uint32_t*>(b + specs[i].o->flags);
    maps[i].entries = b + specs[i].o->desc;
    maps[i].size = size;
  }
  fill_ = FillRing(maps[0]);
  comp_ = CompletionRing(maps[1]);
  rx_ = RxRing(maps[2]);
  tx_ = TxRing(maps[3]);
  return 0;
}

int XskPort::bind_socket(XdpMode mode, ErrorText* why) {
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
    sa.sxdp_queue_id = queue_;
    sa.sxdp_flags = t.flags | XDP_USE_NEED_WAKEUP;
    // A socket that held this queue releases it asynchronously after its
    // owner closed it or died: EBUSY for a moment, then free. Retry for up to
    // a second before calling the queue taken.
    int rc;
    for (int wait_ms = 1; (rc = bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa)) != 0 &&
                          errno == EBUSY && wait_ms <= 512;
         wait_ms *= 2)
      usleep(wait_ms * 1000);
    if (rc == 0) {
      xdp_options opts{};
      socklen_t len = sizeof opts;
      zero_copy_ = getsockopt(fd_, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0 &&
                   (opts.flags & XDP_OPTIONS_ZEROCOPY);
      multi_buffer_ = (t.flags & XDP_USE_SG) != 0;
      return 0;
    }
    err = errno;
    if (err == EBUSY) break;
  }
  if (err == EBUSY)
    return why->set(EBUSY, "queue %u of %s already has an AF_XDP socket bound", queue_,
                    iface_.c_str());
  if (err == EINVAL)
    return why->set(EINVAL, "cannot bind an AF_XDP socket to queue %u of %s (no such queue?)",
                    queue_, iface_.c_str());
  return why->set(err, "cannot bind an AF_XDP socket to %s queue %u in %s mode: %s",
                  iface_.c_str(), queue_, xdp_mode_name(mode), strerror(err));
}

uint32_t XskPort::refill() {
  uint32_t want = pool_.size();
  if (!want) return 0;
  uint32_t room = fill_.free_slots(want);
  if (room < want) want = room;
  if (!want) return 0;
  uint32_t idx;
  // The kernel may have published an rx descriptor before consuming the fill
  // slot its frame came from, so the ring can hold fewer free slots than the
  // frames we just got back: fill what fits, the rest waits in the pool.
  if (!fill_.reserve(want, &idx)) return 0;
  for (uint32_t i = 0; i < want; ++i) {
    uint64_t addr = 0;
    pool_.alloc(&addr);
    fill_.at(idx + i) = addr;
  }
  fill_.submit();
  if (fill_.needs_wakeup()) {
    // Only some drivers ask; copy mode never did on the machines we measured.
    ++counters_->fill_wakeups;
    recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  return want;
}

uint32_t XskPort::reap() {
  uint32_t idx;
  uint32_t n = comp_.peek(comp_.size(), &idx);
  for (uint32_t i = 0; i < n; ++i)
    if (!pool_.free(umem_.frame_of(comp_.at(idx + i)))) ++counters_->bad_frees;
  if (n) comp_.release(n);
  return n;
}

void XskPort::kick_tx() {
  // Copy mode sends a bounded batch per call and answers EAGAIN while more is
  // left, EBUSY when the completion ring is full: keep going while the kernel
  // is making progress.
  for (int spins = 0; spins < 1024; ++spins) {
    ++counters_->kicks;
    if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
      if (!tx_.outstanding()) return;
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EINTR) {
      reap();
      if (!tx_.outstanding()) return;
      continue;
    }
    if (err == EBUSY) {
      if (!reap()) return;  // nothing to make room with: try again later
      continue;
    }
    // ENOBUFS (driver queue full), ENETDOWN...: the frames stay queued and go
    // out at the next flush.
    ++counters_->kick_errors;
    return;
  }
}

uint32_t XskPort::flush() {
  if (tx_unsubmitted_) {
    tx_.submit();
    tx_unsubmitted_ = 0;
  }
  if (tx_.outstanding() && tx_.needs_wakeup()) kick_tx();
  reap();
  return tx_.outstanding();
}

void XskPort::abandon() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  steering_.abandon();
}

void XskPort::refresh_kernel_stats() {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return;
  counters_->rx_dropped = st.rx_dropped;
  counters_->rx_ring_full = st.rx_ring_full;
  counters_->rx_fill_ring_empty = st.rx_fill_ring_empty_descs;
  counters_->rx_invalid_descs = st.rx_invalid_descs;
  counters_->tx_invalid_descs = st.tx_invalid_descs;
}

std::string XskPort::mode_string() const {
  std::string s = xdp_mode_name(steering_.mode());
  s += zero_copy_ ? "/zero-copy" : "/copy";
  return s;
}

}  // namespace xdpload::rings
