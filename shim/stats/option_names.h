// Names of the socket options that keep a socket with the kernel, for the
// log line that says so and for xdpload-stat (which reads the counts).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace xdpload::stats {

inline const char* socket_option_name(int level, int name) {
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_ATTACH_FILTER: return "SO_ATTACH_FILTER";
      case SO_ATTACH_BPF: return "SO_ATTACH_BPF";
      case SO_ATTACH_REUSEPORT_CBPF: return "SO_ATTACH_REUSEPORT_CBPF";
      case SO_ATTACH_REUSEPORT_EBPF: return "SO_ATTACH_REUSEPORT_EBPF";
      case SO_BINDTODEVICE: return "SO_BINDTODEVICE";
      case 29: return "SO_TIMESTAMP";
      case 35: return "SO_TIMESTAMPNS";
      case 37: return "SO_TIMESTAMPING";
      case 63: return "SO_TIMESTAMP_NEW";
      case 64: return "SO_TIMESTAMPNS_NEW";
      case 65: return "SO_TIMESTAMPING_NEW";
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TRANSPARENT: return "IP_TRANSPARENT";
      case IP_RECVERR: return "IP_RECVERR";
    }
  }
  if (level == IPPROTO_TCP) {
    switch (name) {
      case TCP_MD5SIG: return "TCP_MD5SIG";
      case TCP_REPAIR: return "TCP_REPAIR";
      case TCP_FASTOPEN: return "TCP_FASTOPEN";
      case TCP_FASTOPEN_CONNECT: return "TCP_FASTOPEN_CONNECT";
      case TCP_ULP: return "TCP_ULP";
    }
  }
  if (level == IPPROTO_UDP && name == 103) return "UDP_SEGMENT";
  if (level == IPPROTO_IPV6 && name == 26) return "IPV6_V6ONLY";
  return nullptr;
}

}  // namespace xdpload::stats
