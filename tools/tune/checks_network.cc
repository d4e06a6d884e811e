// The interface: its interrupts kept off the program's CPUs, its queues,
// whether its driver runs XDP natively, its rings and interrupt coalescing,
// and what the kernel's AF_XDP can do.
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "tools/tune/checks.h"

namespace xdpload::tune {

namespace {

std::string net(const Target& t, const std::string& rest) {
  return "/sys/class/net/" + t.iface + rest;
}

// The interface's IRQs: its device's MSI vectors, else the lines of
// /proc/interrupts that name it or its device (eth0-TxRx-0, virtio2-input.0),
// else the MSI vectors of the device's parent (a virtio device's PCI
// function). nullopt when none of these can be read.
std::optional<std::vector<int>> interface_irqs(const HostView& h, const Target& t) {
  std::vector<int> irqs;
  auto msi = [&](const std::string& dir) {
    for (const std::string& n : h.list(dir))
      if (isdigit(static_cast<unsigned char>(n[0]))) irqs.push_back(atoi(n.c_str()));
  };
  msi(net(t, "/device/msi_irqs"));
  if (!irqs.empty()) return irqs;
  std::string device = h.link_name(net(t, "/device"));
  auto names_us = [&](const std::string& w) {
    for (const std::string& n : {t.iface, device})
      if (!n.empty() && (w == n || w.rfind(n + "-", 0) == 0 || w.rfind(n + "@", 0) == 0))
        return true;
    return false;
  };
  auto text = h.read("/proc/interrupts");
  if (text) {
    std::istringstream in(*text);
    std::string l;
    while (std::getline(in, l)) {
      size_t colon = l.find(':');
      if (colon == std::string::npos) continue;
      std::string num = l.substr(0, colon);
      num.erase(0, num.find_first_not_of(' '));
      if (num.empty() || !isdigit(static_cast<unsigned char>(num[0]))) continue;
      std::istringstream words(l.substr(colon + 1));
      std::string w;
      while (words >> w)
        if (names_us(w)) {
          irqs.push_back(atoi(num.c_str()));
          break;
        }
    }
  }
  if (irqs.empty() && !device.empty()) msi(net(t, "/device/../msi_irqs"));
  if (irqs.empty() && !text) return std::nullopt;
  return irqs;
}

Check check_irq_affinity(const HostView& h, const Target& t) {
  Check c{"irq_affinity"};
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  auto irqs = interface_irqs(h, t);
  if (!irqs) return unknown(c.name, "cannot read /proc/interrupts");
  if (irqs->empty()) {
    if (h.exists(net(t, "/device")))
      return unknown(c.name, "cannot find " + t.iface + "'s IRQs in /proc/interrupts or msi_irqs");
    c.status = Status::Ok;
    c.found = t.iface + " has no interrupts of its own (a virtual device: its frames are "
              "handled on the sending CPU)";
    return c;
  }
  auto online = h.line("/sys/devices/system/cpu/online");
  auto online_set = online ? parse_cpu_list(*online) : std::nullopt;
  std::set<int> elsewhere = online_set ? minus(*online_set, t.cpus) : std::set<int>{};
  std::string on_ours, unread;
  for (int irq : *irqs) {
    std::string path = "/proc/irq/" + std::to_string(irq) + "/smp_affinity_list";
    auto aff = h.line(path);
    auto set = aff ? parse_cpu_list(*aff) : std::nullopt;
    if (!set) {
      unread += " " + std::to_string(irq);
      continue;
    }
    if (minus(*set, t.cpus).size() == set->size()) continue;  // none of ours
    on_ours += (on_ours.empty() ? "" : ", ") + std::to_string(irq) + " -> " + *aff;
    if (!elsewhere.empty()) {
      c.changes.push_back({path, cpu_list_text(elsewhere), *aff});
      c.fix += (c.fix.empty() ? "" : "; ") + std::string("echo ") + cpu_list_text(elsewhere) +
               " > " + path;
    }
  }
  std::string counted = std::to_string(irqs->size()) + " IRQ" + (irqs->size() == 1 ? "" : "s");
  if (on_ours.empty()) {
    if (!unread.empty()) return unknown(c.name, "cannot read the affinity of IRQs" + unread);
    c.status = Status::Ok;
    c.found = t.iface + ": " + counted + ", none may fire on CPUs " + cpus_text(t);
    return c;
  }
  c.status = Status::Warn;
  c.found = t.iface + ": " + counted + "; these may fire on CPUs " + cpus_text(t) + ": " +
            on_ours + " (each one takes the CPU from the program)";
  if (elsewhere.empty()) c.fix = "leave a CPU outside --cpu for the interface's interrupts";
  return c;
}

Check check_irqbalance(const HostView& h) {
  Check c{"irqbalance"};
  bool listed = false;
  for (const std::string& pid : h.list("/proc")) {
    if (!isdigit(static_cast<unsigned char>(pid[0]))) continue;
    listed = true;
    auto comm = h.line("/proc/" + pid + "/comm");
    if (comm && *comm == "irqbalance") {
      c.status = Status::Warn;
      c.found = "irqbalance runs (pid " + pid + "): it moves IRQs back onto any CPU";
      c.fix = "systemctl stop irqbalance, or IRQBALANCE_BANNED_CPULIST=<the program's CPUs> in "
              "/etc/default/irqbalance";
      return c;
    }
  }
  if (!listed) return unknown(c.name, "cannot list the processes in /proc");
  c.status = Status::Ok;
  c.found = "irqbalance is not running";
  return c;
}

// Informational: xdpload's own sockets poll in user space; the kernel's
// busy polling concerns the program's kernel sockets.
Check check_busy_poll(const HostView& h) {
  Check c{"busy_poll"};
  auto poll = h.number("/proc/sys/net/core/busy_poll");
  auto read = h.number("/proc/sys/net/core/busy_read");
  if (!poll || !read) return unknown(c.name, "cannot read /proc/sys/net/core/busy_poll, busy_read");
  c.status = Status::Ok;
  c.found = "net.core.busy_poll = " + std::to_string(*poll) + ", busy_read = " + std::to_string(*read);
  if (*poll == 0 && *read == 0)
    c.found += ": the kernel does not spin for sockets; xdpload's poll the AF_XDP rings in user "
               "space (XDPLOAD_SPIN_USEC), its kernel sockets wait for interrupts";
  else
    c.found += ": the kernel spins in poll() and read() of the program's kernel sockets (and of "
               "its AF_XDP sockets' system calls) on the NIC queue they came from";
  return c;
}

Check check_queues(const HostView& h, const Target& t) {
  Check c{"rx_queues"};
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  if (!h.exists("/sys/class/net")) return unknown(c.name, "cannot read /sys/class/net");
  if (!h.exists(net(t, ""))) {
    c.status = Status::Fail;
    c.found = "no interface " + t.iface + " in /sys/class/net";
    c.fix = "xdpload tune --iface IF with the interface the program talks on (ip -br link)";
    return c;
  }
  unsigned rx = 0;
  for (const std::string& q : h.list(net(t, "/queues")))
    if (q.rfind("rx-", 0) == 0) ++rx;
  if (rx == 0) return unknown(c.name, "cannot list " + net(t, "/queues"));
  c.found = t.iface + " has " + std::to_string(rx) + " receive queue" + (rx == 1 ? "" : "s") +
            "; xdpload serves all of them by default (XDPLOAD_QUEUES=all)";
  if (rx <= t.cpus.size()) {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ", more than the program's " + std::to_string(t.cpus.size()) +
             " CPU" + (t.cpus.size() == 1 ? "" : "s") +
             ": a polling thread looks at every queue's ring";
  c.fix = "ethtool -L " + t.iface + " combined " + std::to_string(t.cpus.size()) +
          ", or steer the program's ports to one queue (ethtool -N " + t.iface +
          " flow-type udp4 dst-port PORT action 0) and serve it alone (xdpload --queues 0)";
  return c;
}

// Drivers with XDP in driver (native) mode, and those with zero-copy
// AF_XDP, in the kernels of Debian 12 and later.
const char* const kNativeXdp[] = {
    "veth",    "virtio_net", "tun",    "ixgbe", "ixgbevf", "i40e",  "ice",      "igb",
    "igc",     "mlx4_en",    "mlx5_core", "bnxt_en", "nfp", "qede", "ena",      "sfc",
    "sfc_siena", "thunder-nicvf", "stmmaceth", "mvneta", "mvpp2", "dpaa2-eth", "gve",
    "netsec",  "cpsw",       "enetc",  "fec",   "hv_netvsc", "vif", "ionic",  "atlantic",
    "idpf",    "bonding",    "lan966x-switch", "mtk_soc_eth", "tsnep", "fsl_dpaa_eth"};
const char* const kZeroCopy[] = {"ixgbe", "i40e", "ice", "igb", "igc", "mlx5_core", "stmmaceth",
                                 "gve", "idpf", "tsnep", "enetc"};

template <size_t N>
bool listed(const char* const (&table)[N], const std::string& name) {
  for (const char* d : table)
    if (name == d) return true;
  return false;
}

Check check_xdp_mode(const HostView& h, const Target& t, const EthtoolFacts& e) {
  Check c{"xdp_driver_mode"};
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  std::string driver = h.link_name(net(t, "/device/driver"));
  if (driver.empty()) driver = e.driver;
  if (driver.empty()) return unknown(c.name, "cannot tell " + t.iface + "'s driver");
  if (!listed(kNativeXdp, driver)) {
    c.status = Status::Warn;
    c.found = "driver " + driver + " is not known to run XDP natively: generic (skb) mode, "
              "every frame copied through a socket buffer first";
    c.fix = "a NIC whose driver runs XDP natively (ice, i40e, ixgbe, mlx5_core, ...)";
    return c;
  }
  c.status = Status::Ok;
  c.found = "driver " + driver + ": XDP in driver mode, " +
            (listed(kZeroCopy, driver) ? "zero-copy AF_XDP" : "AF_XDP in copy mode (no zero-copy)");
  return c;
}

Check check_rings(const Target& t, const EthtoolFacts& e) {
  Check c{"ring_sizes"};
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  if (!e.rx_ring) return unknown(c.name, t.iface + "'s driver reports no ring sizes (ethtool -g)");
  c.found = "rx " + std::to_string(*e.rx_ring) + " of at most " + std::to_string(e.rx_ring_max.value_or(0)) +
            ", tx " + std::to_string(e.tx_ring.value_or(0)) + " of at most " +
            std::to_string(e.tx_ring_max.value_or(0));
  constexpr unsigned kFewest = 512;
  if (*e.rx_ring >= kFewest || *e.rx_ring >= e.rx_ring_max.value_or(0)) {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ": a burst larger than the receive ring is dropped by the NIC";
  unsigned want = kFewest < e.rx_ring_max.value_or(kFewest) ? kFewest : *e.rx_ring_max;
  c.fix = "ethtool -G " + t.iface + " rx " + std::to_string(want);
  return c;
}

Check check_coalescing(const Target& t, const EthtoolFacts& e) {
  Check c{"interrupt_coalescing"};
  if (t.iface.empty()) return unknown(c.name, "no interface (give --iface)");
  if (!e.rx_usecs) return unknown(c.name, t.iface + "'s driver reports no coalescing (ethtool -c)");
  bool adaptive = e.adaptive_rx.value_or(false);
  c.found = "rx-usecs " + std::to_string(*e.rx_usecs) + ", rx-frames " +
            std::to_string(e.rx_frames.value_or(0)) + ", adaptive-rx " + (adaptive ? "on" : "off");
  if (!adaptive && *e.rx_usecs <= 1) {
    c.status = Status::Ok;
    return c;
  }
  c.status = Status::Warn;
  c.found += ": a frame waits for the interrupt that is held back, before it reaches the AF_XDP ring";
  c.fix = "ethtool -C " + t.iface + " adaptive-rx off rx-usecs 0";
  return c;
}

Check check_kernel(const HostView& h) {
  Check c{"kernel_af_xdp"};
  auto release = h.line("/proc/sys/kernel/osrelease");
  if (!release) return unknown(c.name, "cannot read /proc/sys/kernel/osrelease");
  int major = 0, minor = 0;
  if (sscanf(release->c_str(), "%d.%d", &major, &minor) != 2)
    return unknown(c.name, "cannot parse the kernel release " + *release);
  int v = major * 100 + minor;
  struct Feature {
    int since;
    const char* what;
  };
  static const Feature features[] = {{504, "need_wakeup"},
                                     {510, "one UMEM shared by every queue"},
                                     {603, "rx metadata (hardware timestamps)"},
                                     {606, "multi-buffer (jumbo frames)"},
                                     {608, "tx metadata (launch time, checksum offload)"}};
  std::string have, lack;
  auto add = [](std::string& list, const std::string& what) {
    list += (list.empty() ? "" : ", ") + what;
  };
  for (const Feature& f : features) {
    if (v >= f.since) add(have, f.what);
    else add(lack, std::string(f.what) + " (" + std::to_string(f.since / 100) + "." +
                       std::to_string(f.since % 100) + ")");
  }
  c.found = "kernel " + *release + ": " + (have.empty() ? "no AF_XDP feature xdpload uses" : have);
  if (v < 510) {
    c.status = Status::Fail;
    c.found += "; lacks " + lack;
    c.fix = "a kernel of 5.10 or later (Debian 12 has 6.1)";
  } else if (!lack.empty()) {
    c.status = Status::Warn;
    c.found += "; lacks " + lack;
    c.fix = "a kernel of 6.8 or later (Debian 12: bookworm-backports)";
  } else {
    c.status = Status::Ok;
  }
  return c;
}

}  // namespace

std::vector<Check> check_network(const HostView& h, const Target& t) {
  EthtoolFacts e = t.iface.empty() ? EthtoolFacts{} : h.ethtool(t.iface);
  std::vector<Check> out;
  out.push_back(check_irq_affinity(h, t));
  out.push_back(check_irqbalance(h));
  out.push_back(check_busy_poll(h));
  out.push_back(check_queues(h, t));
  out.push_back(check_xdp_mode(h, t, e));
  out.push_back(check_rings(t, e));
  out.push_back(check_coalescing(t, e));
  out.push_back(check_kernel(h));
  return out;
}

}  // namespace xdpload::tune
