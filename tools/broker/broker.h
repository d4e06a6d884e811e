// Broker: serves one interface to several programs (rings/broker_protocol.h
// says what crosses between them).
//
// It owns the XDP program and its maps, the UMEM, and per queue the socket
// that owns the queue's fill and completion rings. Each program it admits
// gets a slot (1..63), one AF_XDP socket per queue bound to the shared UMEM,
// and a control segment. The broker is on no packet's path: programs
// receive on their own rx rings and send on their own tx ring.
//
// How the shared rings are driven: a queue's fill and completion rings are
// single-producer/single-consumer, and every program on the queue shares
// them, so the broker alone drives them. It keeps the fill rings stocked
// from its free frames and reaps the completion rings. In zero-copy mode it
// passes each completed frame back to the program that sent it (the driver
// writes a frame's address when it takes its descriptor, in order). In copy
// mode a completion's address cannot be trusted to name the frame whose
// send completed when several sockets send through one queue's pool (the
// kernel reserves completion slots before it copies, and cancels the last
// reservation on a busy device, whoever made it: strays and doubles were
// seen here on 6.18 with two senders), so completions there only make
// room: a program takes back a sent frame itself as soon as the kernel has
// consumed its descriptor from the program's tx ring, by which time the
// kernel has copied its data (rings/xsk_port.h, reclaim_sent()). The broker
// sleeps until a program wakes it (its eventfd): after receiving half a
// fill ring's worth of frames, when it runs out of frames to send with,
// when the completion ring is full; by itself only for its deadlines (a
// dying program, the status file): each wake-up is a preemption on some
// program's core. It wakes when a program kicks its eventfd (every 64
// frames given back, or when a program runs out of frames to send) and
// every millisecond regardless.
//
// Frame ownership, kept in the broker's own memory (the ledger): every frame
// is free (the broker's), in the fill rings (lent to the kernel), or held by
// one program. Frames the kernel delivered to a program's rx ring become
// that program's when the broker reads (audits) the ring; frames given to a
// program are its own at once. A frame given back by a program is accepted
// only if that program holds it: a stray or double give-back is refused and
// counted, and cannot put a frame another program is reading back into a
// fill ring. A program may hold `quota` frames: past it, it is granted no
// more frames to send, and the XDP program drops the frames that arrive for
// it (as a full rx ring would) until it is back under three quarters of its
// quota: a program that hoards frames (a leak, a socket nobody reads) loses
// its own packets, not everyone's. When a program dies, its ports are unsteered, its sockets
// closed and every frame it held is taken back.
//
// What the ledger does not defend: every program maps the whole UMEM read
// and write (the kernel shares one UMEM per queue), so a program can read or
// scribble on frames it does not hold. The policy decides who may share an
// interface; the broker protects programs from each other's faults and
// deaths, not from a hostile program the policy admitted.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "rings/broker_protocol.h"
#include "rings/ring.h"
#include "rings/xsk_port.h"
#include "tools/broker/policy.h"

namespace xdpload::broker {

// One line on the broker's stderr, "xdpload daemon: " first.
__attribute__((format(printf, 1, 2))) void say(const char* fmt, ...);

struct BrokerConfig {
  std::string iface;
  std::string policy_path;  // empty: root alone
  uint32_t frames = 16384;
  uint32_t frame_size = 4096;
  uint32_t ring_size = 2048;
  // Frames one program may hold; 0: a quarter of what the fill rings
  // leave (4 busy programs can hold all of it; quotas may sum to more than
  // the UMEM, and the fill rings are served first).
  uint32_t quota = 0;
  rings::XdpMode mode = rings::XdpMode::Auto;
  bool hw_stamps = false;  // the stamping steering program (hardware receive stamps)
  std::vector<uint32_t> queues;  // empty: every queue
  std::string status_path;       // where the status is written for xdpload-stat
};

// What the broker counts (printed at exit and in the status file).
struct BrokerCounters {
  uint64_t programs_served = 0;
  uint64_t programs_refused = 0;
  uint64_t claims = 0;
  uint64_t claims_refused = 0;
  uint64_t bad_messages = 0;
  uint64_t refused_returns = 0;   // frames given back by a program not holding them
  uint64_t stray_completions = 0;  // completed frames nobody held (zero-copy)
  uint64_t copy_completions = 0;   // completions drained in copy mode (not attributed)
  uint64_t unaudited_rx = 0;       // rx descriptors overwritten before the audit
  uint64_t frames_reclaimed = 0;   // taken back from programs that went away
  uint64_t pauses = 0;             // programs paused for holding more than their quota
  uint64_t wakeups = 0;            // passes of the broker's loop
  uint64_t kicks = 0;              // of which a program woke it
  uint64_t fill_nearly_empty = 0;  // refills that found a fill ring under an eighth full
  uint64_t longest_gap_us = 0;     // the longest time between two passes
};

class Broker {
 public:
  explicit Broker(BrokerConfig config) : config_(std::move(config)) {}
  ~Broker();

  // Loads the policy, attaches XDP, makes the UMEM and sockets, listens.
  // False with the reason in *why.
  bool start(std::string* why);
  // Serves until *stop becomes true (a signal handler sets it).
  void run(volatile sig_atomic_t* stop);

  // Frames by where they are: the ledger's totals.
  struct FrameCensus {
    uint32_t free = 0, fill = 0, held = 0, total = 0;
  };
  FrameCensus census() const;

  // A program's ring as the broker sees it, mapped read-only.
  struct ReadOnlyRing {
    void* map = nullptr;
    size_t len = 0;
    const uint32_t* producer = nullptr;
    const uint32_t* consumer = nullptr;
    const xdp_desc* desc = nullptr;
  };

 private:
  static constexpr uint8_t kFree = 0;
  static constexpr uint8_t kInFill = 0xff;  // lent to the kernel
  static constexpr uint32_t kMaxSlots = 64;
  static constexpr size_t kMaxFlowsPerProgram = 4096;
  static constexpr size_t kMaxFlows = 60000;  // all programs' (the map holds STEER_MAX_FLOWS)

  struct ProgramSocket {
    int fd = -1;
    ReadOnlyRing rx;
    uint32_t audited = 0;  // rx ring position the broker has read up to
    // The first socket's tx ring (the program sends there): its consumer
    // index, which the kernel advances as it takes frames to send.
    ReadOnlyRing tx;
  };

  struct Program {
    uint32_t slot = 0;
    int conn = -1;
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;  // primary (SO_PEERCRED)
    std::string name;
    bool welcomed = false;
    uint32_t request_seq = 0;  // the number of the request being answered
    uint64_t connected_ns = 0;
    int control_fd = -1;
    rings::broker::Control* control = nullptr;
    size_t control_bytes = 0;
    ProgramSocket socks[rings::kMaxQueues];
    std::vector<uint32_t> ports;  // steer_bit() of each claimed port
    std::vector<uint32_t> shared;  // those shared with a kernel socket (Share)
    struct Flow {
      uint8_t proto;
      uint16_t port;         // host order
      uint32_t remote_ip;    // network order
      uint16_t remote_port;  // host order
      bool operator==(const Flow&) const = default;
    };
    std::vector<Flow> flows;  // its flows on shared ports (Flow)
    // Connections of its stack the broker is building for the kernel
    // (Handover; tools/broker/handover.cc), in repair mode until Finish.
    struct Handover {
      int fd = -1;  // the broker's socket
      rings::RepairState state;
      rings::RepairUndo undo;
      std::vector<uint8_t> out;  // the bytes from the peer's last acknowledgement
    };
    std::vector<Handover> handovers;
    std::vector<uint64_t> to_give;  // frames waiting for room in to_program
    uint32_t held = 0;
    uint64_t lost_rx = 0;  // rx descriptors overwritten before the audit: frames it may give back unseen
    uint64_t dying_at_ns = 0;  // nonzero: gone, its frames are taken back at that time
    // Completions of its frames: with its tx ring's consumer index, how many
    // of its frames the kernel is still sending (see reclaim()).
    uint32_t completed = 0;
    uint64_t refused_returns = 0;
    bool told_over_quota = false;
    bool paused = false;  // over its quota: the XDP program drops its frames
  };

  bool open_port(std::string* why);
  void accept_program();
  void serve_message(Program& p);
  void welcome(Program& p, const rings::broker::Hello& hello);
  void claim(Program& p, const rings::broker::PortMsg& m, int fd);
  void release(Program& p, const rings::broker::PortMsg& m);
  void share(Program& p, const rings::broker::FlowMsg& m);
  void flow(Program& p, const rings::broker::FlowMsg& m);
  // A connection handed to the kernel for a program without CAP_NET_ADMIN
  // (tools/broker/handover.cc); `fd` the Build's memfd (the caller closes it).
  void handover(Program& p, const rings::broker::HandoverMsg& m, int fd);
  void end_handovers(Program& p);
  void reply_with_socket(Program& p, int status, const char* text, int fd);
  // A port of `p` leaves the XDP maps: not shared any more, its flows gone.
  void unshare(Program& p, uint8_t proto, uint16_t port);
  size_t flows_listed_ = 0;  // all programs' flows in the steering map
  void reply(Program& p, int status, const char* fmt, ...) __attribute__((format(printf, 4, 5)));
  bool make_sockets(Program& p, std::string* why);
  void program_gone(Program& p, const char* how);
  void reclaim(Program& p);
  void drop_program(Program& p);

  // One pass over the rings: audits, give-backs, completions, fill, grants.
  void service();
  void audit(Program& p);
  void take_back(Program& p);
  void give(Program& p, uint64_t addr);
  void flush_gives(Program& p);
  void reap_completions();
  void refill();
  void drain_own_rx();
  void write_status();
  // Tells every program how often to wake the broker (Control::kick_every).
  void set_kick_every();

  uint32_t frame_index(uint64_t addr) const { return uint32_t(addr >> frame_shift_); }
  Peer peer_of(int conn, pid_t* pid) const;
  Program* find(uint32_t slot) { return slot && slot < kMaxSlots && programs_[slot] ? programs_[slot].get() : nullptr; }

  BrokerConfig config_;
  Policy policy_;
  std::unique_ptr<rings::XskPort> port_;
  uint32_t frame_shift_ = 12;
  uint32_t fill_target_ = 0;
  std::vector<uint8_t> owner_;     // per frame: kFree, kInFill or a slot
  std::vector<uint32_t> free_;     // free frame indices (a stack)
  std::unique_ptr<Program> programs_[kMaxSlots];
  bool slot_taken_[kMaxSlots] = {};
  std::vector<std::unique_ptr<Program>> pending_;  // connected, no Hello yet
  int listen_fd_ = -1;
  int kick_fd_ = -1;
  uint32_t ifaddr_ = 0;  // the interface's IPv4 address, network order
  BrokerCounters counters_;
  uint64_t last_status_ns_ = 0;
  // What closer_loop() closes and unmaps for the loop (a gone program's
  // sockets and their rings).
  struct Closing {
    int fd;
    void* map;
    size_t len;
  };
  void closer_loop();
  std::thread closer_;
  std::mutex closing_mutex_;
  std::condition_variable closing_cv_;
  std::deque<Closing> closing_;
  bool stop_closer_ = false;
  bool fill_ran_low_ = false;  // the last refill found a fill ring under half
};

}  // namespace xdpload::broker
