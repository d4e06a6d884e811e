// xdpload-stat: what running xdpload processes are doing, which ss and
// netstat cannot show: their AF_XDP ports and counters, and their sockets,
// accelerated or on the kernel path, in one table.
//
//   xdpload-stat [-p PID] [-a|--all] [--json] [--watch [SECONDS]]
//
// Reads the processes' statistics segments (shim/stats/stat_segment.h),
// System V shared memory that the kernel removes with each family's last
// process (shim/stats/stat_shm.h): the caller's own processes, or every
// user's when run as root (as `ss -p` shows other users' processes only to
// root). Every segment is untrusted input: a header, version, count or
// string that is not right, or a process that runs as another user than
// the segment's owner, is ignored with one line on stderr; every count and
// string is bounded before use.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <algorithm>
#include <string>
#include <vector>

#include "rings/queue_list.h"
#include "shim/stats/stat_shm.h"
#include "shim/stats/stat_segment.h"
#include "shim/stats/option_names.h"

using namespace xdpload;

namespace {

const char* kStates[] = {"?",          "ESTAB",    "SYN-SENT", "SYN-RECV",  "FIN-WAIT-1", "FIN-WAIT-2",
                         "TIME-WAIT",  "UNCONN",   "CLOSE-WAIT", "LAST-ACK", "LISTEN",     "CLOSING"};

const char* state_name(int proto, int st) {
  if (st < 0 || st > 11) return "?";
  if (proto == IPPROTO_UDP && st == 1) return "ESTAB";
  if (proto == IPPROTO_TCP && st == 7) return "CLOSED";
  return kStates[st];
}

std::string endpoint(uint32_t ip, uint16_t port) {
  char b[32];
  in_addr a{ip};
  if (port) snprintf(b, sizeof b, "%s:%u", inet_ntoa(a), port);
  else snprintf(b, sizeof b, "%s:*", inet_ntoa(a));
  return b;
}

struct Row {
  stats::SocketRow r;
};

// The process's kernel-path sockets: its socket descriptors matched, by
// inode, against its network namespace's /proc tables.
std::vector<stats::SocketRow> kernel_sockets(int pid, const std::set<int>& skip_fds) {
  std::map<unsigned long, int> inode_fd;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      char target[64];
      std::string link = dir + "/" + e->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = 0;
      unsigned long ino;
      int fd = atoi(e->d_name);
      if (sscanf(target, "socket:[%lu]", &ino) == 1 && !skip_fds.count(fd)) inode_fd[ino] = fd;
    }
    closedir(d);
  }
  std::vector<stats::SocketRow> rows;
  struct Table {
    const char* name;
    int proto;
  } tables[] = {{"tcp", IPPROTO_TCP}, {"udp", IPPROTO_UDP}};
  for (const Table& t : tables) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/net/" + t.name);
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) {
      unsigned lip, lport, rip, rport, st, txq, rxq;
      unsigned long ino;
      if (sscanf(line.c_str(), " %*d: %x:%x %x:%x %x %x:%x %*x:%*x %*x %*u %*u %lu", &lip, &lport,
                 &rip, &rport, &st, &txq, &rxq, &ino) != 8)
        continue;
      auto it = inode_fd.find(ino);
      if (it == inode_fd.end()) continue;
      stats::SocketRow r{};
      r.proto = uint8_t(t.proto);
      r.state = uint8_t(st);
      r.fd = it->second;
      r.local_ip = lip;
      r.local_port = uint16_t(lport);
      r.remote_ip = rip;
      r.remote_port = uint16_t(rport);
      r.rx_queue = rxq;
      r.tx_queue = txq;
      rows.push_back(r);
    }
  }
  return rows;
}

struct Snapshot {
  stats::Segment head;  // header and counters (socket table copied separately)
  std::vector<stats::SocketRow> rows;
  uint32_t total;
};

bool snapshot(const stats::Segment* seg, Snapshot* out) {
  for (int tries = 0; tries < 100; ++tries) {
    uint32_t s1 = __atomic_load_n(&seg->seq, __ATOMIC_ACQUIRE);
    if (s1 & 1) {
      usleep(1000);
      continue;
    }
    memcpy(static_cast<void*>(&out->head), seg, offsetof(stats::Segment, sockets));
    uint32_t n = std::min(out->head.nsockets, stats::kMaxSockets);
    out->rows.assign(seg->sockets, seg->sockets + n);
    out->total = out->head.total_sockets;
    if (__atomic_load_n(&seg->seq, __ATOMIC_ACQUIRE) == s1) {
      // Every figure shown is of the refresh's instant (stat_segment.h).
      out->head.port = out->head.port_at_refresh;
      out->head.netif = out->head.netif_at_refresh;
      out->head.shim = out->head.shim_at_refresh;
      return true;
    }
  }
  return false;
}

// Asks the process for a fresh refresh and waits for it (its progress
// thread looks at least once a second). False when the segment could not be
// written (then the last refresh is shown) or the answer did not come in
// time (a stopped or very busy process).
bool ask_refresh(stats::Segment* seg) {
  if (!seg) return false;
  uint32_t want = __atomic_add_fetch(&seg->refresh_asked, 1, __ATOMIC_ACQ_REL);
  for (int waited_ms = 0; waited_ms < 1500; ++waited_ms) {
    if (int32_t(__atomic_load_n(&seg->refresh_done, __ATOMIC_ACQUIRE) - want) >= 0) return true;
    usleep(1000);
  }
  return false;
}

double now_unix() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void json_str(std::ostringstream& o, const char* s) {
  o << '"';
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') o << '\\';
    if (uint8_t(*s) >= 0x20) o << *s;
  }
  o << '"';
}

void print_counters_text(const stats::Segment& h) {
  const auto& p = h.port;
  const auto& n = h.netif;
  const auto& s = h.shim;
  printf("  frames   rx %llu (%llu bytes)  tx %llu (%llu bytes)\n", (unsigned long long)p.rx_frames,
         (unsigned long long)p.rx_bytes, (unsigned long long)p.tx_frames,
         (unsigned long long)p.tx_bytes);
  printf("  drops    kernel %llu  rx-ring-full %llu  fill-ring-empty %llu  tx-ring-full %llu  "
         "tx-no-frame %llu  bad-checksum %llu  malformed %llu\n",
         (unsigned long long)p.rx_dropped, (unsigned long long)p.rx_ring_full,
         (unsigned long long)p.rx_fill_ring_empty, (unsigned long long)p.tx_ring_full,
         (unsigned long long)(p.tx_no_frame + n.tx_no_frame), (unsigned long long)n.rx_bad_checksum,
         (unsigned long long)n.rx_malformed);
  printf("  kicks    %llu (errors %llu; %llu after the lock's release)\n",
         (unsigned long long)(p.kicks + p.kicks_after_release), (unsigned long long)p.kick_errors,
         (unsigned long long)p.kicks_after_release);
  printf("  tcp      in %llu  out %llu  retransmits %llu  active opens %llu  passive opens %llu\n",
         (unsigned long long)h.tcp_in_segs, (unsigned long long)h.tcp_out_segs,
         (unsigned long long)h.tcp_retrans_segs, (unsigned long long)h.tcp_active_opens,
         (unsigned long long)h.tcp_passive_opens);
  printf("  tcp      fast recoveries %llu (segments sent again %llu)  timeouts %llu  "
         "tail probes %llu  lost by time %llu (retransmissions %llu)\n",
         (unsigned long long)h.tcp.recoveries, (unsigned long long)h.tcp.rexmit_recovery,
         (unsigned long long)h.tcp.rexmit_rto, (unsigned long long)h.tcp.tlp_probes,
         (unsigned long long)h.tcp.rack_lost, (unsigned long long)h.tcp.lost_rexmit);
  printf("  tcp      SACK blocks in %llu  D-SACKs in %llu  recoveries undone (needless) %llu  "
         "timeouts undone (needless) %llu  old duplicates dropped (PAWS) %llu\n",
         (unsigned long long)h.tcp.sack_blocks, (unsigned long long)h.tcp.dsacks,
         (unsigned long long)h.tcp.undone, (unsigned long long)h.tcp.rto_undone,
         (unsigned long long)h.tcp.paws_dropped);
  printf("  tcp      TIME-WAIT: SYNs accepted %llu  connections over the limit %llu\n",
         (unsigned long long)h.tcp.tw_syn_accepted, (unsigned long long)h.tcp.tw_overflow);
  printf("  udp      in %llu  out %llu  dropped (buffer full) %llu\n",
         (unsigned long long)h.udp_in_datagrams, (unsigned long long)h.udp_out_datagrams,
         (unsigned long long)s.udp_rx_dropped);
  printf("  steering to socket %llu  left to kernel %llu  no socket on queue %llu\n",
         (unsigned long long)h.steer_redirected, (unsigned long long)h.steer_passed,
         (unsigned long long)h.steer_no_socket);
  printf("  sockets  accelerated tcp %llu udp %llu, left with the kernel %llu; rx copies %llu\n",
         (unsigned long long)s.accelerated_tcp, (unsigned long long)s.accelerated_udp,
         (unsigned long long)s.kernel_sockets, (unsigned long long)s.rx_copies);
  printf("  tx data  copied into frames %llu bytes; TCP data sent from the frame it was written "
         "(send, zero-copy send) or read (sendfile) into %llu bytes; TCP checksums completed by "
         "the link %llu\n",
         (unsigned long long)n.tx_copy_bytes, (unsigned long long)n.tx_zero_copy_bytes,
         (unsigned long long)n.tx_checksum_offload);
  printf("  files    read into frames %llu bytes (io_uring reads %llu, pread %llu, waited for "
         "the disk %llu); through a buffer %llu bytes; MSG_ZEROCOPY sends notified %llu\n",
         (unsigned long long)s.file_bytes_read, (unsigned long long)s.file_reads_uring,
         (unsigned long long)s.file_reads_pread, (unsigned long long)s.file_reads_waited,
         (unsigned long long)s.file_bytes_copied,
         (unsigned long long)s.zerocopy_notified);
  printf("  zero-copy calls  received in place %llu bytes; sent from lent frames %llu bytes, "
         "copied out of them %llu bytes\n",
         (unsigned long long)s.zc_recv_bytes, (unsigned long long)s.zc_send_bytes,
         (unsigned long long)s.zc_send_copied);
  for (const auto& k : s.kernel_options) {
    if (!k.sockets) continue;
    const char* name = stats::socket_option_name(k.level, k.name);
    printf("  left with the kernel because of option %s: %llu socket(s)\n",
           name ? name : (std::to_string(k.level) + "/" + std::to_string(k.name)).c_str(),
           (unsigned long long)k.sockets);
  }
  printf("  progress thread woke %llu times, polled the stack %llu times; program waits that "
         "slept %llu; wake-ups sent to other processes %llu\n",
         (unsigned long long)s.progress_wakeups, (unsigned long long)s.progress_polls,
         (unsigned long long)s.blocked_waits, (unsigned long long)s.remote_wakes);
  printf("  packets the progress thread took in %llu; frame watch taken back from a sleeper "
         "that did not answer %llu; stack taken over from a stopped process %llu\n",
         (unsigned long long)s.progress_rx_packets, (unsigned long long)s.watch_reclaims,
         (unsigned long long)s.progress_takeovers);
}

// The queues served, as "0-3".
std::string queue_list(const stats::Segment& h) {
  uint32_t ids[rings::kMaxQueues];
  uint32_t n = std::min(h.port.nqueues, rings::kMaxQueues);
  for (uint32_t i = 0; i < n; ++i) ids[i] = h.queue_id[i];
  return rings::format_queue_list(ids, n);
}

void print_queues_text(const stats::Segment& h) {
  uint32_t n = std::min(h.port.nqueues, rings::kMaxQueues);
  printf("  %-7s %12s %12s %12s %12s %12s %12s\n", "queue", "rx-frames", "tx-frames", "steered",
         "fill-empty", "ring-full", "kernel-drop");
  for (uint32_t i = 0; i < n; ++i) {
    const rings::QueueCounters& q = h.port.queue[i];
    printf("  %-7u %12llu %12llu %12llu %12llu %12llu %12llu\n", unsigned(h.queue_id[i]),
           (unsigned long long)q.rx_frames, (unsigned long long)q.tx_frames,
           (unsigned long long)q.steer_redirected, (unsigned long long)q.rx_fill_ring_empty,
           (unsigned long long)q.rx_ring_full, (unsigned long long)q.rx_dropped);
  }
  if (h.steer_no_socket)
    printf("  warning: %llu frames of accelerated ports arrived on receive queues without an "
           "xdpload socket and went to the kernel: flows on those queues do not work "
           "(serve every queue: XDPLOAD_QUEUES=all)\n",
           (unsigned long long)h.steer_no_socket);
}

void queues_json(std::ostringstream& o, const stats::Segment& h) {
  uint32_t n = std::min(h.port.nqueues, rings::kMaxQueues);
  o << "\"queues\":[";
  for (uint32_t i = 0; i < n; ++i) {
    const rings::QueueCounters& q = h.port.queue[i];
    o << (i ? "," : "") << "{\"queue\":" << unsigned(h.queue_id[i])
      << ",\"rx_frames\":" << q.rx_frames << ",\"tx_frames\":" << q.tx_frames
      << ",\"steered\":" << q.steer_redirected << ",\"fill_ring_empty\":" << q.rx_fill_ring_empty
      << ",\"rx_ring_full\":" << q.rx_ring_full << ",\"kernel_rx_dropped\":" << q.rx_dropped
      << "}";
  }
  o << "]";
}

void counters_json(std::ostringstream& o, const stats::Segment& h) {
  const auto& p = h.port;
  const auto& n = h.netif;
  const auto& s = h.shim;
  o << "\"counters\":{"
    << "\"rx_frames\":" << p.rx_frames << ",\"rx_bytes\":" << p.rx_bytes
    << ",\"tx_frames\":" << p.tx_frames << ",\"tx_bytes\":" << p.tx_bytes
    << ",\"kernel_rx_dropped\":" << p.rx_dropped << ",\"rx_ring_full\":" << p.rx_ring_full
    << ",\"fill_ring_empty\":" << p.rx_fill_ring_empty << ",\"tx_ring_full\":" << p.tx_ring_full
    << ",\"tx_no_frame\":" << (p.tx_no_frame + n.tx_no_frame) << ",\"kicks\":" << (p.kicks + p.kicks_after_release)
    << ",\"kicks_after_release\":" << p.kicks_after_release
    << ",\"stale_tx_kicks\":" << p.stale_tx_kicks
    << ",\"kick_errors\":" << p.kick_errors << ",\"rx_bad_checksum\":" << n.rx_bad_checksum
    << ",\"rx_partial_checksum\":" << n.rx_partial_checksum
    << ",\"rx_malformed\":" << n.rx_malformed << ",\"rx_not_ipv4\":" << n.rx_not_ipv4
    << ",\"tx_zero_copy\":" << n.tx_zero_copy << ",\"tx_udp_direct\":" << n.tx_udp_direct
    << ",\"polls_locked\":" << s.polls_locked << ",\"polls_lockfree\":" << s.polls_lockfree
    << ",\"tx_copy_bytes\":" << n.tx_copy_bytes
    << ",\"tx_zero_copy_bytes\":" << n.tx_zero_copy_bytes
    << ",\"tx_checksum_offload\":" << n.tx_checksum_offload
    << ",\"file_reads_uring\":" << s.file_reads_uring
    << ",\"file_reads_pread\":" << s.file_reads_pread
    << ",\"file_bytes_read\":" << s.file_bytes_read
    << ",\"file_bytes_copied\":" << s.file_bytes_copied
    << ",\"file_reads_waited\":" << s.file_reads_waited
    << ",\"zerocopy_notified\":" << s.zerocopy_notified
    << ",\"zc_recv_bytes\":" << s.zc_recv_bytes << ",\"zc_send_bytes\":" << s.zc_send_bytes
    << ",\"zc_send_copied\":" << s.zc_send_copied
    << ",\"tcp_in_segs\":" << h.tcp_in_segs << ",\"tcp_out_segs\":" << h.tcp_out_segs
    << ",\"tcp_retransmits\":" << h.tcp_retrans_segs
    << ",\"tcp_active_opens\":" << h.tcp_active_opens
    << ",\"tcp_passive_opens\":" << h.tcp_passive_opens
    << ",\"tcp_recoveries\":" << h.tcp.recoveries
    << ",\"tcp_rexmit_recovery\":" << h.tcp.rexmit_recovery
    << ",\"tcp_rexmit_rto\":" << h.tcp.rexmit_rto
    << ",\"tcp_sack_blocks_in\":" << h.tcp.sack_blocks
    << ",\"tcp_tlp_probes\":" << h.tcp.tlp_probes
    << ",\"tcp_rack_lost\":" << h.tcp.rack_lost
    << ",\"tcp_lost_rexmit\":" << h.tcp.lost_rexmit
    << ",\"tcp_dsacks_in\":" << h.tcp.dsacks << ",\"tcp_undone\":" << h.tcp.undone << ",\"tcp_rto_undone\":" << h.tcp.rto_undone
    << ",\"tcp_paws_dropped\":" << h.tcp.paws_dropped
    << ",\"tcp_tw_overflow\":" << h.tcp.tw_overflow
    << ",\"tcp_tw_syn_accepted\":" << h.tcp.tw_syn_accepted
    << ",\"udp_in_datagrams\":" << h.udp_in_datagrams
    << ",\"udp_out_datagrams\":" << h.udp_out_datagrams
    << ",\"udp_rx_dropped\":" << s.udp_rx_dropped << ",\"steer_redirected\":" << h.steer_redirected
    << ",\"steer_passed\":" << h.steer_passed << ",\"steer_no_socket\":" << h.steer_no_socket
    << ",\"accelerated_tcp\":" << s.accelerated_tcp << ",\"accelerated_udp\":" << s.accelerated_udp
    << ",\"kernel_sockets\":" << s.kernel_sockets << ",\"rx_copies\":" << s.rx_copies
    << ",\"progress_wakeups\":" << s.progress_wakeups
    << ",\"progress_polls\":" << s.progress_polls << ",\"blocked_waits\":" << s.blocked_waits
    << ",\"remote_wakes\":" << s.remote_wakes
    << ",\"progress_rx_packets\":" << s.progress_rx_packets
    << ",\"watch_reclaims\":" << s.watch_reclaims
    << ",\"progress_takeovers\":" << s.progress_takeovers << "},\"kernel_options\":{";
  bool first = true;
  for (const auto& k : s.kernel_options) {
    if (!k.sockets) continue;
    const char* name = stats::socket_option_name(k.level, k.name);
    o << (first ? "" : ",") << "\""
      << (name ? std::string(name) : std::to_string(k.level) + "/" + std::to_string(k.name))
      << "\":" << k.sockets;
    first = false;
  }
  o << "}";
}

// The effective uid of process `pid`; -1 when it cannot be read (gone).
int64_t process_euid(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    unsigned real, effective;
    if (sscanf(line.c_str(), "Uid: %u %u", &real, &effective) == 2) return effective;
  }
  return -1;
}

// A segment attached and checked, to be shown.
struct Found {
  int pid;  // the process that holds it (its family's, listed under it)
  const stats::Segment* seg;
  bool writable;  // attached for writing too (the caller may ask for a refresh)
};

// Attaches the listed segment if it is a well-formed segment of a live
// process of its owner that has it attached; else nullptr (with one line
// on stderr when it claims to be one). *writable: attached for writing
// too: the owner's, or root. *holder: the process it names, as checked
// (the segment is the other process's memory: what it says later may
// differ, and is compared with this).
const stats::Segment* attach_segment(const stats::ListedSegment& l, bool* writable, int* holder) {
  auto reject = [&](const void* p, const char* why) -> const stats::Segment* {
    fprintf(stderr, "xdpload-stat: ignoring the statistics segment %d (System V shared memory of uid %u): %s\n",
            l.shmid, unsigned(l.uid), why);
    if (p) shmdt(p);
    return nullptr;
  };
  // Its owner may have given it away (IPC_SET): only its creator's, or one
  // root made and gave to the user its process became.
  if (l.cuid != l.uid && l.cuid != 0) {
    if (geteuid() == 0 || geteuid() == l.uid)
      reject(nullptr, "made by another user than its owner");
    return nullptr;
  }
  *writable = true;
  void* p = shmat(l.shmid, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1) && (errno == EACCES || errno == EPERM)) {
    *writable = false;
    p = shmat(l.shmid, nullptr, SHM_RDONLY);
  }
  if (p == reinterpret_cast<void*>(-1)) return nullptr;  // not ours to read, or just gone
  auto* seg = static_cast<const stats::Segment*>(p);
  if (memcmp(seg->magic, stats::kMagic, 8) != 0) {  // another program's, of the same size
    shmdt(p);
    return nullptr;
  }
  const int pid = __atomic_load_n(&seg->pid, __ATOMIC_ACQUIRE);
  if (seg->version != stats::kVersion) return reject(p, "another version of xdpload wrote it");
  if (pid <= 0) return reject(p, "it names no process");
  if (!memchr(seg->command, 0, sizeof seg->command) || !memchr(seg->iface, 0, sizeof seg->iface) ||
      !memchr(seg->mode, 0, sizeof seg->mode))
    return reject(p, "a name in it is not terminated");
  if (seg->port.nqueues > rings::kMaxQueues || seg->port_at_refresh.nqueues > rings::kMaxQueues ||
      seg->nsockets > stats::kMaxSockets)
    return reject(p, "its queue or socket count is beyond its tables");
  // Its holder just died, before a process of its family took it over
  // (or the family is ending): not listed.
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    shmdt(p);
    return nullptr;
  }
  // The process it claims to describe runs as the segment's owner (its
  // effective uid, from /proc/PID/status: readable even where the
  // process's own /proc files are root's, once it gave up root).
  if (int64_t euid = process_euid(pid); euid >= 0 && uid_t(euid) != l.uid)
    return reject(p, "its process runs as another user than the segment's owner");
  // ...and has it attached (where its maps can be read: a process that
  // gave up root is not readable but to root).
  if (stats::attached_to(pid, l.shmid) == 0) return reject(p, "its process does not have it attached");
  *holder = pid;
  return seg;
}

// The copied header made safe to print: strings terminated, counts bounded.
void sanitize(stats::Segment* h) {
  h->command[sizeof h->command - 1] = 0;
  h->iface[sizeof h->iface - 1] = 0;
  h->mode[sizeof h->mode - 1] = 0;
  for (char* s : {h->command, h->iface, h->mode})
    for (char* c = s; *c; ++c)
      if (uint8_t(*c) < 0x20 || uint8_t(*c) == 0x7f) *c = '?';
  h->port.nqueues = std::min(h->port.nqueues, rings::kMaxQueues);
  h->nsockets = std::min(h->nsockets, stats::kMaxSockets);
}

// A process's network namespace, "net:[4026531840]"; "" when unreadable.
std::string netns_of(const std::string& pid) {
  char b[64];
  ssize_t n = readlink(("/proc/" + pid + "/ns/net").c_str(), b, sizeof b - 1);
  if (n <= 0) return "";
  b[n] = 0;
  return b;
}

// Lists the processes; those in other network namespaces than the caller's
// only with `all` (or when named by -p): their sockets and addresses are not
// this namespace's, as `ss` shows only its own.
// ---- brokers ----

// A broker (`xdpload daemon`) writes its state to /run/xdpload/
// broker-<pid>.status a few times a second: a line per item, words in
// key value pairs after the first. Trusted only when root owns it and no one
// else may write it, and its pid runs.
struct BrokerStatus {
  int pid = 0;
  std::string netns;
  std::vector<std::string> lines;
};

std::vector<BrokerStatus> read_brokers(const char* dir) {
  std::vector<BrokerStatus> out;
  DIR* d = opendir(dir);
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (sscanf(e->d_name, "broker-%d.status", &pid) != 1 || pid <= 0) continue;
    std::string path = std::string(dir) + "/" + e->d_name;
    struct stat sb;
    if (lstat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != 0 ||
        (sb.st_mode & 022) || sb.st_size > (1 << 20))
      continue;
    if (kill(pid, 0) != 0 && errno == ESRCH) continue;
    std::ifstream f(path);
    BrokerStatus b;
    b.pid = pid;
    b.netns = netns_of(std::to_string(pid));
    for (std::string line; std::getline(f, line) && b.lines.size() < 200;) {
      for (char& c : line)
        if (c < 32 || c > 126 || c == '"' || c == '\\') c = '?';
      b.lines.push_back(line);
    }
    if (!b.lines.empty()) out.push_back(std::move(b));
  }
  closedir(d);
  return out;
}

// "program slot 1 pid 2 name x" -> {"slot":"1","pid":"2","name":"x"}
void line_json(std::ostringstream& o, const std::string& line) {
  std::istringstream in(line);
  std::string kind, k, v;
  in >> kind;
  o << "{";
  bool first = true;
  while (in >> k >> v) {
    o << (first ? "" : ",") << "\"" << k << "\":";
    bool numeric = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) o << v;
    else o << "\"" << v << "\"";
    first = false;
  }
  o << "}";
}

int print_brokers(bool json, bool all, std::ostringstream& js) {
  const std::string my_ns = netns_of("self");
  int shown = 0;
  js << ",\"brokers\":[";
  for (const BrokerStatus& b : read_brokers("/run/xdpload")) {
    if (!all && !b.netns.empty() && b.netns != my_ns) continue;
    if (json) {
      js << (shown ? "," : "") << "{\"pid\":" << b.pid << ",\"programs\":[";
      int progs = 0;
      for (const std::string& l : b.lines) {
        if (l.rfind("program ", 0) != 0) continue;
        if (progs++) js << ",";
        line_json(js, l);
      }
      js << "]";
      for (const std::string& l : b.lines) {
        if (l.rfind("frames ", 0) == 0) js << ",\"frames\":", line_json(js, l);
        if (l.rfind("counters ", 0) == 0) js << ",\"counters\":", line_json(js, l);
        if (l.rfind("broker ", 0) == 0) js << ",\"broker\":", line_json(js, l);
      }
      js << "}";
    } else {
      printf("BROKER (xdpload daemon)\n");
      for (const std::string& l : b.lines) printf("  %s\n", l.c_str());
    }
    ++shown;
  }
  js << "]";
  return shown;
}

int run_once(int only_pid, bool json, bool all) {
  std::vector<Found> found;
  const uid_t me = geteuid();
  for (const stats::ListedSegment& l : stats::list_segments()) {
    if (me != 0 && l.uid != me) continue;  // (another user's: not attached, as ss hides them)
    bool writable = false;
    int pid = 0;
    const stats::Segment* seg = attach_segment(l, &writable, &pid);
    if (!seg) continue;
    if (only_pid && pid != only_pid) {
      shmdt(seg);
      continue;
    }
    found.push_back(Found{pid, seg, writable});
  }
  std::ostringstream js;
  js << "{\"processes\":[";
  bool first = true;
  int shown = 0, elsewhere = 0;
  const std::string my_ns = netns_of("self");
  for (const Found& f : found) {
    int pid = f.pid;
    const std::string ns = netns_of(std::to_string(pid));
    const bool foreign = !ns.empty() && ns != my_ns;
    if (foreign && !all && !only_pid) {
      ++elsewhere;
      shmdt(f.seg);
      continue;
    }
    const stats::Segment* seg = f.seg;
    if (f.writable) ask_refresh(const_cast<stats::Segment*>(seg));
    Snapshot snap;
    bool ok = snapshot(seg, &snap);
    shmdt(seg);
    // (Shown as the process checked: one whose segment names another
    // since, handed over in its family or rewritten, is left to the next
    // reading.)
    if (!ok || snap.head.pid != pid) continue;
    sanitize(&snap.head);
    const stats::Segment& h = snap.head;
    std::set<int> accel_fds;
    for (const auto& r : snap.rows)
      if (r.fd >= 0) accel_fds.insert(r.fd);
    std::vector<stats::SocketRow> rows = snap.rows;
    for (const auto& r : kernel_sockets(pid, accel_fds)) rows.push_back(r);
    double up = now_unix() - h.started_unix_ns / 1e9;
    ++shown;
    if (json) {
      if (!first) js << ",";
      first = false;
      js << "{\"pid\":" << pid << ",\"netns\":";
      json_str(js, ns.c_str());
      js << ",\"other_netns\":" << (foreign ? "true" : "false") << ",\"command\":";
      json_str(js, h.command);
      js << ",\"iface\":";
      json_str(js, h.iface);
      js << ",\"queue_list\":\"" << queue_list(h) << "\",\"interface_queues\":" << h.interface_queues
         << ",\"mode\":";
      json_str(js, h.mode);
      js << ",\"frames\":" << h.frames << ",\"uptime_s\":" << up << ",";
      counters_json(js, h);
      js << ",";
      queues_json(js, h);
      js << ",\"sockets\":[";
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        if (i) js << ",";
        js << "{\"proto\":\"" << (r.proto == IPPROTO_TCP ? "tcp" : "udp") << "\",\"fd\":" << r.fd
           << ",\"local\":\"" << endpoint(r.local_ip, r.local_port) << "\",\"remote\":\""
           << endpoint(r.remote_ip, r.remote_port) << "\",\"state\":\""
           << state_name(r.proto, r.state) << "\",\"recv_q\":" << r.rx_queue
           << ",\"send_q\":" << r.tx_queue << ",\"path\":\""
           << (r.accelerated ? "xdpload" : "kernel") << "\"";
        if (r.cc[0]) js << ",\"cc\":\"" << std::string(r.cc, strnlen(r.cc, sizeof r.cc)) << "\"";
        js << "}";
      }
      js << "],\"more_sockets\":" << (snap.total > snap.rows.size() ? snap.total - snap.rows.size() : 0)
         << "}";
    } else {
      printf("PID %d %s  %s queues %s of %u %s, %u frames, up %.1f s%s%s\n", pid, h.command,
             h.iface, queue_list(h).c_str(), h.interface_queues, h.mode, h.frames, up,
             foreign ? ", network namespace " : "", foreign ? ns.c_str() : "");
      print_counters_text(h);
      print_queues_text(h);
      printf("  %-5s %-4s %-22s %-22s %-11s %7s %7s  %s\n", "Proto", "Fd", "Local", "Peer",
             "State", "Recv-Q", "Send-Q", "Path");
      for (const auto& r : rows)
        printf("  %-5s %-4d %-22s %-22s %-11s %7u %7u  %s%s%.*s\n",
               r.proto == IPPROTO_TCP ? "tcp" : "udp", r.fd,
               endpoint(r.local_ip, r.local_port).c_str(),
               endpoint(r.remote_ip, r.remote_port).c_str(), state_name(r.proto, r.state),
               r.rx_queue, r.tx_queue, r.accelerated ? "xdpload" : "kernel", r.cc[0] ? " " : "",
               int(sizeof r.cc), r.cc);
      if (snap.total > snap.rows.size())
        printf("  ... and %u more accelerated sockets\n", unsigned(snap.total - snap.rows.size()));
    }
  }
  std::ostringstream brokers;
  if (!only_pid) shown += print_brokers(json, all, brokers);
  if (json) {
    js << "]" << brokers.str() << ",\"in_other_netns\":" << elsewhere << "}";
    printf("%s\n", js.str().c_str());
  } else {
    if (elsewhere)
      printf("%d xdpload process%s in other network namespaces not shown (--all shows them)\n",
             elsewhere, elsewhere == 1 ? "" : "es");
    if (!shown && !elsewhere) printf("no xdpload process is running\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int pid = 0;
  bool json = false, all = false;
  double watch = 0;
  static option longs[] = {{"pid", 1, 0, 'p'},  {"json", 0, 0, 'j'}, {"watch", 2, 0, 'w'},
                           {"all", 0, 0, 'a'},  {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "p:jw::ah", longs, nullptr)) != -1) {
    switch (c) {
      case 'p': pid = atoi(optarg); break;
      case 'a': all = true; break;
      case 'j': json = true; break;
      case 'w':
        // "--watch 2" as well as "--watch=2".
        if (!optarg && optind < argc && strspn(argv[optind], "0123456789.") == strlen(argv[optind]))
          optarg = argv[optind++];
        watch = optarg ? atof(optarg) : 1.0;
        if (watch <= 0) {
          fprintf(stderr, "xdpload-stat: --watch needs a positive number of seconds\n");
          return 2;
        }
        break;
      case 'h':
        printf("usage: xdpload-stat [-p PID] [-a|--all] [--json] [--watch [SECONDS]]\n"
               "Lists running xdpload processes of this network namespace (--all: of every\n"
               "namespace, each named), their AF_XDP counters and their sockets (accelerated\n"
               "or on the kernel path).\n");
        return 0;
      default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "xdpload-stat: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  if (watch <= 0) return run_once(pid, json, all);
  for (;;) {
    if (!json) printf("\033[H\033[2J");
    run_once(pid, json, all);
    fflush(stdout);
    usleep(useconds_t(watch * 1e6));
  }
}
