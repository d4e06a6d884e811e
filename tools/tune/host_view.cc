#include "tools/tune/host_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "rings/queue_list.h"

namespace xdpload::tune {

HostView::HostView(std::string root) : root_(std::move(root)) {
  if (root_.empty()) root_ = "/";
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string HostView::real(const std::string& path) const {
  return root_ == "/" ? path : root_ + path;
}

std::optional<std::string> HostView::read(const std::string& path) const {
  int fd = open(real(path).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      if (n < 0) return std::nullopt;
      return text;
    }
    text.append(buf, size_t(n));
    if (text.size() > (size_t(4) << 20)) break;  // /proc/interrupts of a large host fits
  }
  close(fd);
  return text;
}

std::optional<std::string> HostView::line(const std::string& path) const {
  auto text = read(path);
  if (!text) return std::nullopt;
  return text->substr(0, text->find('\n'));
}

std::optional<long long> HostView::number(const std::string& path) const {
  auto text = line(path);
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = strtoll(text->c_str(), &end, 10);
  if (errno || end == text->c_str()) return std::nullopt;
  return v;
}

std::vector<std::string> HostView::list(const std::string& dir) const {
  std::vector<std::string> names;
  DIR* d = opendir(real(dir).c_str());
  if (!d) return names;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool HostView::exists(const std::string& path) const {
  struct stat st;
  return lstat(real(path).c_str(), &st) == 0;
}

std::string HostView::link_name(const std::string& path) const {
  char buf[4096];
  ssize_t n = readlink(real(path).c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  const char* slash = strrchr(buf, '/');
  return slash ? slash + 1 : buf;
}

int HostView::write(const std::string& path, const std::string& value) const {
  int fd = open(real(path).c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC);
  if (fd < 0) return errno;
  std::string text = value + "\n";
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = n == ssize_t(text.size()) ? 0 : (n < 0 ? errno : EIO);
  if (close(fd) != 0 && !err) err = errno;
  return err;
}

namespace {

// One ethtool ioctl; false when the driver does not answer it.
bool ethtool_ioctl(const std::string& iface, void* cmd) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface.c_str());
  ifr.ifr_data = static_cast<char*>(cmd);
  bool ok = ioctl(s, SIOCETHTOOL, &ifr) == 0;
  close(s);
  return ok;
}

}  // namespace

EthtoolFacts HostView::ethtool(const std::string& iface) const {
  EthtoolFacts f;
  if (iface.empty() || iface.size() >= IFNAMSIZ || iface.find('/') != std::string::npos) return f;
  if (fake()) {
    auto text = read("/ethtool/" + iface);
    if (!text) return f;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      std::string l = text->substr(pos, end - pos);
      pos = end + 1;
      size_t eq = l.find('=');
      if (eq == std::string::npos) continue;
      std::string key = l.substr(0, eq), value = l.substr(eq + 1);
      char* e = nullptr;
      unsigned long n = strtoul(value.c_str(), &e, 10);
      bool num = !value.empty() && *e == 0;
      if (key == "driver") f.driver = value;
      else if (!num) continue;
      else if (key == "rx_ring") f.rx_ring = unsigned(n);
      else if (key == "rx_ring_max") f.rx_ring_max = unsigned(n);
      else if (key == "tx_ring") f.tx_ring = unsigned(n);
      else if (key == "tx_ring_max") f.tx_ring_max = unsigned(n);
      else if (key == "rx_usecs") f.rx_usecs = unsigned(n);
      else if (key == "rx_frames") f.rx_frames = unsigned(n);
      else if (key == "adaptive_rx") f.adaptive_rx = n != 0;
      else if (key == "combined") f.combined = unsigned(n);
      else if (key == "combined_max") f.combined_max = unsigned(n);
    }
    return f;
  }
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  if (ethtool_ioctl(iface, &info)) f.driver = info.driver;
  ethtool_ringparam ring{};
  ring.cmd = ETHTOOL_GRINGPARAM;
  if (ethtool_ioctl(iface, &ring)) {
    f.rx_ring = ring.rx_pending, f.rx_ring_max = ring.rx_max_pending;
    f.tx_ring = ring.tx_pending, f.tx_ring_max = ring.tx_max_pending;
  }
  ethtool_coalesce co{};
  co.cmd = ETHTOOL_GCOALESCE;
  if (ethtool_ioctl(iface, &co)) {
    f.rx_usecs = co.rx_coalesce_usecs, f.rx_frames = co.rx_max_coalesced_frames;
    f.adaptive_rx = co.use_adaptive_rx_coalesce != 0;
  }
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  if (ethtool_ioctl(iface, &ch)) f.combined = ch.combined_count + ch.rx_count, f.combined_max = ch.max_combined + ch.max_rx;
  return f;
}

std::optional<std::set<int>> parse_cpu_list(const std::string& text) {
  std::set<int> cpus;
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return cpus;
  const char* p = t.c_str();
  for (;;) {
    char* end = nullptr;
    if (*p < '0' || *p > '9') return std::nullopt;
    long lo = strtol(p, &end, 10), hi = lo;
    if (*end == '-') {
      if (end[1] < '0' || end[1] > '9') return std::nullopt;
      hi = strtol(end + 1, &end, 10);
    }
    if (lo > hi || hi >= 8192) return std::nullopt;
    for (long c = lo; c <= hi; ++c) cpus.insert(int(c));
    if (*end == 0) break;
    if (*end != ',') return std::nullopt;
    p = end + 1;
  }
  return cpus;
}

std::string cpu_list_text(const std::set<int>& cpus) {
  std::vector<uint32_t> ids(cpus.begin(), cpus.end());
  return rings::format_queue_list(ids.data(), uint32_t(ids.size()));
}

}  // namespace xdpload::tune
