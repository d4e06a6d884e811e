// HostView: what `xdpload tune` reads of the host, and writes with --apply.
//
// Every file is read under a root: / normally, or the directory
// XDPLOAD_SYSROOT names, a fake system root of crafted proc/ and sys/ files
// (tests/tools/tools-tune.sh). What the kernel answers only through ioctls
// (ethtool: ring sizes, coalescing, the driver) comes from the file
// ethtool/IF under a fake root, KEY=VALUE lines, since a directory cannot
// answer an ioctl.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace xdpload::tune {

// What ethtool says of an interface; unset: the driver does not say.
struct EthtoolFacts {
  std::string driver;
  std::optional<unsigned> rx_ring, rx_ring_max, tx_ring, tx_ring_max;
  std::optional<unsigned> rx_usecs, rx_frames;
  std::optional<bool> adaptive_rx;
  std::optional<unsigned> combined, combined_max;
};

class HostView {
 public:
  explicit HostView(std::string root);

  // The whole file; nullopt when it cannot be read.
  std::optional<std::string> read(const std::string& path) const;
  // Its first line without the newline.
  std::optional<std::string> line(const std::string& path) const;
  // A number from its first line.
  std::optional<long long> number(const std::string& path) const;
  // Names in a directory, sorted; empty when there is none.
  std::vector<std::string> list(const std::string& dir) const;
  bool exists(const std::string& path) const;
  // The last part of a symbolic link's target ("" if not a link).
  std::string link_name(const std::string& path) const;

  EthtoolFacts ethtool(const std::string& iface) const;

  // Writes `value` and a newline; 0 or an errno.
  int write(const std::string& path, const std::string& value) const;
  // Where `path` really is (the root prefixed).
  std::string real(const std::string& path) const;
  bool fake() const { return root_ != "/"; }

 private:
  std::string root_;
};

// "0-3,8" <-> {0,1,2,3,8}; nullopt for a malformed list.
std::optional<std::set<int>> parse_cpu_list(const std::string& text);
std::string cpu_list_text(const std::set<int>& cpus);

}  // namespace xdpload::tune
