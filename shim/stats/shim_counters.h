// ShimCounters: decisions and events of the preloaded library. Plain words
// for the shared-memory segment.
#pragma once

#include <cstdint>

namespace xdpload::shim {

struct ShimCounters {
  // TCP sockets put on the stack: listeners, connections made, and
  // connections accepted from the stack (not those a listener got through
  // the kernel, from loopback or another interface).
  uint64_t accelerated_tcp = 0;
  uint64_t accelerated_udp = 0;   // UDP sockets put on the stack
  uint64_t kernel_sockets = 0;    // candidates left with the kernel
  uint64_t rx_copies = 0;         // received pbufs copied out of UMEM (frame pressure)
  uint64_t udp_rx_dropped = 0;    // datagrams dropped: receive buffer full
  // sendfile() and splice() into accelerated TCP sockets: file reads into
  // transmit frames by io_uring and by pread (no io_uring), the bytes they
  // read, and bytes that went through a buffer instead (no frame to spare,
  // a pipe as the source).
  uint64_t file_reads_uring = 0;
  uint64_t file_reads_pread = 0;
  uint64_t file_bytes_read = 0;
  uint64_t file_bytes_copied = 0;
  // Frames whose file bytes were not in the page cache: read from the disk
  // without the CoreLock (the family's stack goes on meanwhile).
  uint64_t file_reads_waited = 0;
  // MSG_ZEROCOPY sends notified on the error queue (each with the COPIED
  // code: the stack copies the program's buffer).
  uint64_t zerocopy_notified = 0;
  // The extensions' zero-copy calls: bytes handed to the program in place
  // (xdpload_zc_recv), sent from frames it filled (xdpload_zc_send), and
  // copied out of such frames instead (longer than a segment once the MSS
  // fell).
  uint64_t zc_recv_bytes = 0;
  uint64_t zc_send_bytes = 0;
  uint64_t zc_send_copied = 0;
  uint64_t blocked_waits = 0;     // calls that slept
  uint64_t progress_polls = 0;    // stack polls by the progress thread
  // Times the progress thread woke (its ppoll returned, for an event or a
  // timeout): a sleeping thread wakes a few times a second at most, and at
  // most 100 times a second while program threads sleep in blocking calls
  // (it looks every 10 ms whether that changed); a spinning one would count
  // hundreds of thousands. Tests count these rather than time CPU use.
  uint64_t progress_wakeups = 0;
  // Receive calls of the process family that polled the stack under the
  // CoreLock, and those answered without it (nothing pending: a spinning
  // non-blocking reader's EAGAIN). Copied from the family's shared state.
  uint64_t polls_locked = 0;
  uint64_t polls_lockfree = 0;
  // Wake-ups sent to a sleeping thread of another process of the family (a
  // datagram each): a connection to a listener several processes block in
  // accept() on sends one, not one per process (WaitQueue::wake_exclusive).
  uint64_t remote_wakes = 0;
  // The family's frame watch taken back from a sleeper that took no frame
  // in during a whole look of the progress thread while frames waited
  // (stopped by SIGSTOP or a debugger, or kept off the CPU): handed on.
  uint64_t watch_reclaims = 0;
  // Packets the progress thread's own polls took in: few while a program
  // thread watches for frames, one a frame while nobody answers.
  uint64_t progress_rx_packets = 0;
  // The family's stack taken over from a progress thread that ran none of
  // its timers, due for a while (its process stopped): runtime.cc says why.
  uint64_t progress_takeovers = 0;
  // Sockets left with the kernel because of an option not served, by
  // option (the first kOptionSlots different ones; names in
  // shim/stats/option_names.h).
  struct OptionCount {
    int32_t level;
    int32_t name;
    uint64_t sockets;
  };
  static constexpr int kOptionSlots = 8;
  OptionCount kernel_options[kOptionSlots] = {};
};

}  // namespace xdpload::shim
