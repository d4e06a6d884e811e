#include "rings/steering.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "rings/port_counters.h"
#include "rings/private_fd.h"

extern "C" {
#include "rings/steer_maps.h"
}

static_assert(xdpload::rings::kMaxQueues == STEER_MAX_QUEUES,
              "a port serves as many queues as the steering program has sockets for");

// Linux 6.3's uapi; older headers lack it.
#ifndef BPF_F_XDP_DEV_BOUND_ONLY
#define BPF_F_XDP_DEV_BOUND_ONLY (1U << 6)
#endif

extern "C" const unsigned char xdpload_steer_obj[];
extern "C" const unsigned long xdpload_steer_obj_size;
extern "C" const unsigned char xdpload_stamp_obj[];
extern "C" const unsigned long xdpload_stamp_obj_size;

namespace xdpload::rings {

namespace {

// libbpf's own messages would land on the program's stderr. Keep the last
// warning so that a failure can quote it; print nothing.
char g_last_libbpf_message[200];

int quiet_libbpf(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level != LIBBPF_DEBUG) {
    vsnprintf(g_last_libbpf_message, sizeof g_last_libbpf_message, fmt, ap);
    size_t n = strlen(g_last_libbpf_message);
    if (n && g_last_libbpf_message[n - 1] == '\n') g_last_libbpf_message[n - 1] = 0;
  }
  return 0;
}

const char* attached_mode_name(uint8_t m) {
  switch (m) {
    case XDP_ATTACHED_DRV: return "driver";
    case XDP_ATTACHED_SKB: return "skb";
    case XDP_ATTACHED_HW: return "offload";
    case XDP_ATTACHED_MULTI: return "several modes";
    default: return "unknown";
  }
}

// Is XDP program `id` our steering program (another xdpload process's)?
bool is_ours(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
              (!strcmp(info.name, "xdpload_steer") || !strcmp(info.name, "xdpload_stamp"));
  close(fd);
  return ours;
}

}  // namespace

const char* xdp_mode_name(XdpMode m) {
  switch (m) {
    case XdpMode::Driver: return "driver";
    case XdpMode::Skb: return "skb";
    default: return "auto";
  }
}

XdpSteering::~XdpSteering() { detach(); }

void XdpSteering::detach() {
  close_private_fd(link_fd_);
  link_fd_ = -1;
  if (own_map_fds_)
    for (int fd : {bits_fd_, xsks_fd_, stats_fd_, conf_fd_, queue_redirected_fd_, slots_fd_,
                   paused_fd_, flow_ports_fd_, flows_fd_})
      close_private_fd(fd);
  own_map_fds_ = false;
  if (bits_) munmap(bits_, STEER_WORDS * sizeof(uint64_t));
  bits_ = nullptr;
  if (slots_) munmap(slots_, STEER_SLOT_WORDS * sizeof(uint64_t));
  slots_ = nullptr;
  if (flow_ports_) munmap(flow_ports_, STEER_FLOW_PORT_WORDS * sizeof(uint64_t));
  flow_ports_ = nullptr;
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
  bits_fd_ = xsks_fd_ = stats_fd_ = conf_fd_ = queue_redirected_fd_ = slots_fd_ = paused_fd_ = -1;
  flow_ports_fd_ = flows_fd_ = -1;
  rx_meta_key_ = 0;
}

void XdpSteering::abandon() {
  // This process's copy of the link descriptor; the object is shared.
  close_private_fd(link_fd_);
}

int XdpSteering::load(int ifindex, bool stamping, uint64_t key) {
  g_last_libbpf_message[0] = 0;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = "xdpload_steer");
  obj_ = stamping
             ? bpf_object__open_mem(xdpload_stamp_obj, xdpload_stamp_obj_size, &open_opts)
             : bpf_object__open_mem(xdpload_steer_obj, xdpload_steer_obj_size, &open_opts);
  if (!obj_) return -errno;
  int err = 0;
  if (stamping) {
    // Bound to the device: only such a program may ask the driver for the
    // frame's metadata. Its settings are read-only data, set before the load.
    bpf_program* prog = bpf_object__find_program_by_name(obj_, "xdpload_stamp");
    bpf_map* rodata = bpf_object__find_map_by_name(obj_, ".rodata");
    steer_stamp_conf conf{};
    conf.meta_key = key;
    conf.test_fake_hw_stamp = getenv("XL_TEST_FAKE_HW_STAMP") != nullptr;
    if (!prog || !rodata) {
      err = -ENOENT;
    } else {
      bpf_program__set_ifindex(prog, ifindex);
      bpf_program__set_flags(prog, bpf_program__flags(prog) | BPF_F_XDP_DEV_BOUND_ONLY);
      err = bpf_map__set_initial_value(rodata, &conf, sizeof conf);
    }
  }
  if (!err) err = bpf_object__load(obj_);
  if (err) {
    bpf_object__close(obj_);
    obj_ = nullptr;
  }
  return err;
}

int XdpSteering::attach(int ifindex, const char* ifname, XdpMode mode, ErrorText* why,
                        bool hw_stamps) {
  libbpf_set_print(quiet_libbpf);
  g_last_libbpf_message[0] = 0;

  // Refuse rather than replace: someone else's XDP program is theirs.
  LIBBPF_OPTS(bpf_xdp_query_opts, query);
  if (bpf_xdp_query(ifindex, 0, &query) == 0 && query.attach_mode != XDP_ATTACHED_NONE) {
    uint32_t id = query.prog_id ? query.prog_id
                                : (query.drv_prog_id ? query.drv_prog_id : query.skb_prog_id);
    if (is_ours(id))
      return why->set(EBUSY,
                      "another xdpload process already accelerates %s (XDP program id %u); "
                      "for several programs on one interface, run `xdpload daemon --iface %s`",
                      ifname, id, ifname);
    return why->set(EBUSY,
                    "interface %s already has an XDP program (id %u, %s mode); "
                    "xdpload will not replace it",
                    ifname, id, attached_mode_name(query.attach_mode));
  }

  hw_stamp_refusal_[0] = 0;
  bool stamping = hw_stamps && mode == XdpMode::Driver;
  // The key the records carry: random, so that bytes a peer chose (a
  // transmitted frame's, left in the chunk) cannot pass for one.
  uint64_t key = 0;
  if (stamping && (getrandom(&key, sizeof key, 0) != sizeof key || !key)) {
    snprintf(hw_stamp_refusal_, sizeof hw_stamp_refusal_, "no random key for the records: %m");
    stamping = false;
  }
  int err = load(ifindex, stamping, key);
  if (err && stamping && err != -EPERM) {
    snprintf(hw_stamp_refusal_, sizeof hw_stamp_refusal_,
             "the kernel refused the stamping XDP program (%s%s%s)", strerror(-err),
             g_last_libbpf_message[0] ? ": " : "", g_last_libbpf_message);
    stamping = false;
    err = load(ifindex, false, 0);
  } else if (hw_stamps && mode != XdpMode::Driver) {
    snprintf(hw_stamp_refusal_, sizeof hw_stamp_refusal_,
             "hardware stamps need XDP in driver mode, and %s runs in %s mode", ifname,
             xdp_mode_name(mode));
  }
  if (err) {
    detach();
    if (err == -EPERM)
      return why->set(EPERM, "loading an XDP program needs CAP_BPF and CAP_NET_ADMIN (run as root)");
    return why->set(-err, "the kernel refused the XDP steering program: %s",
                    g_last_libbpf_message);
  }
  // libbpf learns the CPU count from /sys/devices/system/cpu/possible on
  // its first per-CPU lookup and keeps it: learnt here, in the thread that
  // starts the stack, not later in the progress thread, whose short-lived
  // descriptor would take the number the program's next open() was about
  // to get (shim-fd-numbers saw epoll_create return 7 instead of 6).
  libbpf_num_possible_cpus();
  bpf_program* prog = bpf_object__find_program_by_name(obj_, stamping ? "xdpload_stamp"
                                                                      : "xdpload_steer");
  bits_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_bits");
  xsks_fd_ = bpf_object__find_map_fd_by_name(obj_, "xsks");
  stats_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_stats");
  conf_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_conf");
  queue_redirected_fd_ = bpf_object__find_map_fd_by_name(obj_, "queue_redirected");
  slots_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_slots");
  paused_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_paused");
  flow_ports_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_flow_ports");
  flows_fd_ = bpf_object__find_map_fd_by_name(obj_, "steer_flows");
  if (!prog || bits_fd_ < 0 || xsks_fd_ < 0 || stats_fd_ < 0 || conf_fd_ < 0 ||
      queue_redirected_fd_ < 0 || slots_fd_ < 0 || paused_fd_ < 0 || flow_ports_fd_ < 0 ||
      flows_fd_ < 0) {
    detach();
    return why->set(ENOENT, "the embedded XDP object lacks its program or maps");
  }
  // The maps user space writes without a system call, mapped.
  auto map_array = [&](int fd, size_t words, const char* what, void** out) {
    void* p = mmap(nullptr, words * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      detach();
      return why->set(err, "cannot map the steering %s map: %s", what, strerror(err));
    }
    *out = p;
    return 0;
  };
  void *bits = nullptr, *slots = nullptr, *flow_ports = nullptr;
  if (int rc = map_array(bits_fd_, STEER_WORDS, "port", &bits)) return rc;
  bits_ = static_cast<uint64_t*>(bits);
  if (int rc = map_array(slots_fd_, STEER_SLOT_WORDS, "slot", &slots)) return rc;
  slots_ = static_cast<uint8_t*>(slots);
  if (int rc = map_array(flow_ports_fd_, STEER_FLOW_PORT_WORDS, "shared-port", &flow_ports)) return rc;
  flow_ports_ = static_cast<uint64_t*>(flow_ports);

  LIBBPF_OPTS(bpf_link_create_opts, link_opts);
  link_opts.flags = mode == XdpMode::Driver ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  link_fd_ = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &link_opts);
  if (link_fd_ < 0) {
    int err = errno;
    detach();
    return why->set(err, "cannot attach XDP in %s mode to %s: %s", xdp_mode_name(mode), ifname,
                    strerror(err));
  }
  if (stamping) rx_meta_key_ = key;
  mode_ = mode;
  keep_private_fds();
  return 0;
}

void XdpSteering::keep_private_fds() {
  // libbpf opened the program's and maps' descriptors at the lowest free
  // numbers, which are the program's. Keep private copies of the maps we
  // use and of the link, and close the object: the link holds the program,
  // the program its maps. If the copies cannot be made, nothing changes.
  link_fd_ = to_private_fd(link_fd_);
  int* fds[] = {&bits_fd_,  &xsks_fd_,  &stats_fd_,  &conf_fd_, &queue_redirected_fd_,
                &slots_fd_, &paused_fd_, &flow_ports_fd_, &flows_fd_};
  constexpr int kFds = int(sizeof fds / sizeof fds[0]);
  int copies[kFds];
  bool all = true;
  for (int i = 0; i < kFds; ++i) all &= (copies[i] = dup_to_private(*fds[i])) >= 0;
  if (!all) {
    for (int c : copies)
      if (c >= 0) close_private_fd(c);
    return;
  }
  for (int i = 0; i < kFds; ++i) *fds[i] = copies[i];
  bpf_object__close(obj_);
  obj_ = nullptr;
  own_map_fds_ = true;
}

int XdpSteering::add_socket(uint32_t slot, uint32_t queue, int xsk_fd, ErrorText* why) {
  if (queue >= STEER_MAX_QUEUES)
    return why->set(EINVAL, "queue %u is beyond the %u queues xdpload steers", queue,
                    STEER_MAX_QUEUES);
  if (slot >= STEER_MAX_SLOTS)
    return why->set(EINVAL, "program slot %u is beyond the %u xdpload steers", slot,
                    STEER_MAX_SLOTS);
  uint32_t key = slot * STEER_MAX_QUEUES + queue;
  if (bpf_map_update_elem(xsks_fd_, &key, &xsk_fd, BPF_ANY) != 0)
    return why->set(errno, "cannot register the AF_XDP socket for queue %u: %m", queue);
  return 0;
}

void XdpSteering::remove_socket(uint32_t slot, uint32_t queue) {
  if (slot >= STEER_MAX_SLOTS || queue >= STEER_MAX_QUEUES || xsks_fd_ < 0) return;
  uint32_t key = slot * STEER_MAX_QUEUES + queue;
  bpf_map_delete_elem(xsks_fd_, &key);
}

void XdpSteering::set_slot(uint8_t proto, uint16_t port, uint8_t slot) {
  if (!slots_ || slot >= STEER_MAX_SLOTS) return;
  __atomic_store_n(&slots_[steer_bit(proto, port)], slot, __ATOMIC_RELEASE);
}

void XdpSteering::set_paused(uint32_t slot, bool paused) {
  if (paused_fd_ < 0 || slot >= STEER_MAX_SLOTS) return;
  uint32_t v = paused;
  bpf_map_update_elem(paused_fd_, &slot, &v, BPF_ANY);
}

uint8_t XdpSteering::slot(uint8_t proto, uint16_t port) const {
  if (!slots_) return 0;
  return __atomic_load_n(&slots_[steer_bit(proto, port)], __ATOMIC_ACQUIRE);
}

int XdpSteering::set_mtu(uint32_t mtu) {
  uint32_t key = STEER_CONF_MTU;
  return bpf_map_update_elem(conf_fd_, &key, &mtu, BPF_ANY) == 0 ? 0 : -errno;
}

int XdpSteering::steer(uint8_t proto, uint16_t port) {
  if (!bits_) return -EBADF;
  uint32_t bit = steer_bit(proto, port);
  // Release: everything that prepared for the port's frames (the PCB) is
  // done before the XDP program can send the first one.
  __atomic_fetch_or(&bits_[bit / 64], 1ull << (bit % 64), __ATOMIC_RELEASE);
  return 0;
}

int XdpSteering::unsteer(uint8_t proto, uint16_t port) {
  if (!bits_) return -EBADF;
  uint32_t bit = steer_bit(proto, port);
  __atomic_fetch_and(&bits_[bit / 64], ~(1ull << (bit % 64)), __ATOMIC_RELEASE);
  // Its connections handed to the kernel need no exception any more (the
  // port's frames all go there). Their entries stay until a SYN reuses one.
  if (flow_ports_)
    __atomic_fetch_and(&flow_ports_[STEER_WORDS + bit / 64], ~(1ull << (bit % 64)),
                       __ATOMIC_RELEASE);
  return 0;
}

int XdpSteering::share_port(uint8_t proto, uint16_t port, bool shared) {
  if (!flow_ports_) return -EBADF;
  uint32_t bit = steer_bit(proto, port);
  // Release: the flows listed before the port starts passing the others.
  if (shared) __atomic_fetch_or(&flow_ports_[bit / 64], 1ull << (bit % 64), __ATOMIC_RELEASE);
  else __atomic_fetch_and(&flow_ports_[bit / 64], ~(1ull << (bit % 64)), __ATOMIC_RELEASE);
  return 0;
}

int XdpSteering::share_group_frames(uint16_t udp_port, bool shared) {
  if (!flow_ports_) return -EBADF;
  const uint32_t word = 2 * STEER_WORDS + steer_bit(17 /* IPPROTO_UDP */, udp_port) / 64;
  const uint64_t mask = 1ull << (steer_bit(17, udp_port) % 64);
  if (shared) __atomic_fetch_or(&flow_ports_[word], mask, __ATOMIC_RELEASE);
  else __atomic_fetch_and(&flow_ports_[word], ~mask, __ATOMIC_RELEASE);
  return 0;
}

bool XdpSteering::port_shared(uint8_t proto, uint16_t port) const {
  if (!flow_ports_) return false;
  uint32_t bit = steer_bit(proto, port);
  return __atomic_load_n(&flow_ports_[bit / 64], __ATOMIC_ACQUIRE) & (1ull << (bit % 64));
}

namespace {
// The flow map's key, as the XDP program builds it from a frame (padding
// zeroed: the whole key is hashed).
steer_flow flow_key(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                    uint16_t remote_port_be) {
  steer_flow f{};
  f.remote_ip = remote_ip;
  f.remote_port = remote_port_be;
  f.local_port = local_port_be;
  f.proto = proto;
  return f;
}
}  // namespace

int XdpSteering::add_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                          uint16_t remote_port_be, uint8_t whose) {
  if (whose != STEER_FLOW_STACK && whose != STEER_FLOW_KERNEL) return -EINVAL;
  if (!flow_ports_) return -EBADF;
  const steer_flow f = flow_key(proto, local_port_be, remote_ip, remote_port_be);
  if (bpf_map_update_elem(flows_fd_, &f, &whose, BPF_ANY) != 0) return -errno;
  // Release: the flow listed before the port's frames are looked up in the
  // map. (Cleared with the port's steering: unsteer.)
  if (whose == STEER_FLOW_KERNEL) {
    const uint32_t bit = steer_bit(proto, ntohs(local_port_be));
    __atomic_fetch_or(&flow_ports_[STEER_WORDS + bit / 64], 1ull << (bit % 64), __ATOMIC_RELEASE);
  }
  return 0;
}

int XdpSteering::remove_flow(uint8_t proto, uint16_t local_port_be, uint32_t remote_ip,
                             uint16_t remote_port_be) {
  const steer_flow f = flow_key(proto, local_port_be, remote_ip, remote_port_be);
  return bpf_map_delete_elem(flows_fd_, &f) == 0 || errno == ENOENT ? 0 : -errno;
}

bool XdpSteering::steered(uint8_t proto, uint16_t port) const {
  if (!bits_) return false;
  uint32_t bit = steer_bit(proto, port);
  return __atomic_load_n(&bits_[bit / 64], __ATOMIC_ACQUIRE) & (1ull << (bit % 64));
}

uint64_t XdpSteering::queue_redirected(uint32_t queue) const {
  int cpus = libbpf_num_possible_cpus();
  if (queue_redirected_fd_ < 0 || cpus <= 0 || queue >= STEER_MAX_QUEUES) return 0;
  std::vector<uint64_t> per_cpu(cpus);
  if (bpf_map_lookup_elem(queue_redirected_fd_, &queue, per_cpu.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t v : per_cpu) sum += v;
  return sum;
}

SteeringStats XdpSteering::stats() const {
  SteeringStats s;
  if (stats_fd_ < 0) return s;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return s;
  std::vector<uint64_t> per_cpu(cpus);
  uint64_t* out[] = {&s.redirected, &s.passed, &s.no_socket, &s.over_quota};
  static_assert(sizeof out / sizeof out[0] == STEER_STAT_COUNT);
  for (uint32_t k = 0; k < STEER_STAT_COUNT; ++k) {
    if (bpf_map_lookup_elem(stats_fd_, &k, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) *out[k] += v;
  }
  return s;
}

}  // namespace xdpload::rings
