// TCP loss recovery (stack/lwip/patches: SACK scoreboard, PRR, NewReno
// partial ACKs) over the fake link, with chosen data segments dropped on the
// wire from A to B. Each case sends a burst once the congestion window is
// open, loses some of its segments, and checks that every byte arrives and
// how the stack repaired the holes, from its counters (stack::tcp_events): by
// fast recovery, never by a retransmission timeout, and each lost segment
// sent again exactly once.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "stack/stack.h"
#include "tests/unit/fake_link.h"
#include "tests/unit/fake_stack_pair.h"
#include "tests/unit/tcp_stream_sink.h"

extern "C" {
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
}

using namespace xdpload;
using namespace xdpload::stack;
using xdpload::testing::sink_accept;
using xdpload::testing::stream_byte;
using xdpload::testing::TcpSink;

namespace {

// The TCP header of an IPv4 frame, or nullptr.
uint8_t* tcp_header(uint8_t* frame, uint32_t len, uint32_t* payload) {
  if (len < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00) return nullptr;
  uint8_t* ip = frame + 14;
  uint32_t ihl = (ip[0] & 0xf) * 4u;
  if (ip[9] != IPPROTO_TCP) return nullptr;
  uint8_t* tcp = ip + ihl;
  uint32_t doff = (tcp[12] >> 4) * 4u;
  *payload = ((ip[2] << 8) | ip[3]) - ihl - doff;
  return tcp;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

// Recomputes the TCP checksum of an IPv4 frame after a change (the netif
// driver checks it before lwIP sees the frame).
void fix_tcp_checksum(uint8_t* frame) {
  uint8_t* ip = frame + 14;
  uint32_t ihl = (ip[0] & 0xf) * 4u;
  uint32_t tcp_len = ((ip[2] << 8) | ip[3]) - ihl;
  uint8_t* tcp = ip + ihl;
  tcp[16] = tcp[17] = 0;
  uint32_t sum = IPPROTO_TCP + tcp_len;
  for (int i = 12; i < 20; i += 2) sum += (ip[i] << 8) | ip[i + 1];
  for (uint32_t i = 0; i + 1 < tcp_len; i += 2) sum += (tcp[i] << 8) | tcp[i + 1];
  if (tcp_len & 1) sum += tcp[tcp_len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = uint16_t(~sum);
  tcp[16] = uint8_t(c >> 8);
  tcp[17] = uint8_t(c);
}

// The TSval of a frame's timestamp option, or nullptr.
uint8_t* tsval_field(uint8_t* tcp) {
  uint32_t doff = (tcp[12] >> 4) * 4u;
  for (uint32_t i = 20; i + 1 < doff;) {
    if (tcp[i] == 0) break;
    if (tcp[i] == 1) {
      ++i;
      continue;
    }
    if (tcp[i + 1] < 2) break;
    if (tcp[i] == 8 && tcp[i + 1] == 10) return tcp + i + 2;
    i += tcp[i + 1];
  }
  return nullptr;
}

// What the wire from A to B does to A's data segments: those that are new
// (above every sequence number seen so far) are numbered from 0 once `armed`;
// the first copy of each numbered segment in `lose` is dropped, and of those
// in `lose_twice` the first retransmission as well.
struct LossyWire {
  bool armed = false;
  uint32_t next_index = 0;
  uint32_t highest_end = 0;
  bool seen_data = false;
  std::set<uint32_t> lose, lose_twice;
  // Numbered segments held back until three later ones have passed
  // (reordering by three), then put on the wire by `put`.
  std::set<uint32_t> hold;
  // Numbered segments whose timestamp is set back a minute (an old
  // duplicate, to PAWS): the receiver must drop them.
  std::set<uint32_t> age;
  std::function<void(const uint8_t*, uint32_t)> put;
  struct Held {
    std::vector<uint8_t> frame;
    int later = 0;
  };
  std::vector<Held> held;
  std::set<uint32_t> lost_seqs;        // sequence numbers dropped once
  std::set<uint32_t> lost_again_seqs;  // ...of which the retransmission is dropped too
  uint32_t data_segments = 0, retransmissions = 0;
  std::map<uint32_t, uint32_t> resent;  // sequence number -> copies sent again

  // The retransmissions of segments that were not lost, for a failure message.
  std::string spurious() const {
    std::string out;
    for (auto [seq, n] : resent)
      if (!lost_seqs.count(seq) || n > 1)
        out += " " + std::to_string(seq) + " x" + std::to_string(n);
    return out;
  }

  bool drop(uint8_t* frame, uint32_t len) {
    uint32_t payload = 0;
    uint8_t* tcp = tcp_header(frame, len, &payload);
    if (!tcp || payload == 0) return false;
    ++data_segments;
    // Held segments go out just before the fourth data segment after them.
    for (auto it = held.begin(); it != held.end();) {
      if (++it->later == 4) {
        put(it->frame.data(), uint32_t(it->frame.size()));
        it = held.erase(it);
      } else {
        ++it;
      }
    }
    uint32_t seq = be32(tcp + 4);
    bool fresh = !seen_data || int32_t(seq - highest_end) >= 0;
    if (!fresh) {
      ++retransmissions;
      ++resent[seq];
      if (lost_again_seqs.count(seq)) {
        lost_again_seqs.erase(seq);
        return true;
      }
      return false;
    }
    seen_data = true;
    highest_end = seq + payload;
    if (!armed) return false;
    uint32_t index = next_index++;
    if (age.count(index)) {
      if (uint8_t* ts = tsval_field(tcp)) {
        uint32_t v = be32(ts) - 60000;
        ts[0] = uint8_t(v >> 24), ts[1] = uint8_t(v >> 16), ts[2] = uint8_t(v >> 8), ts[3] = uint8_t(v);
        fix_tcp_checksum(frame);
        lost_seqs.insert(be32(tcp + 4));
      }
      return false;
    }
    if (hold.count(index)) {
      held.push_back(Held{std::vector<uint8_t>(frame, frame + len), 0});
      return true;
    }
    if (lose.count(index) || lose_twice.count(index)) {
      lost_seqs.insert(seq);
      if (lose_twice.count(index)) lost_again_seqs.insert(seq);
      return true;
    }
    return false;
  }
};

// A path's delay, one way: the frames a link sends are held and put on the
// wire `ms` later, at the first poll after that (the fake link alone
// delivers at the next poll).
struct DelayLine {
  xdpload::testing::FakeLink* link = nullptr;  // the sender, as which they are delivered
  int ms = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::vector<uint8_t>>> frames;

  bool hold(const uint8_t* frame, uint32_t len) {
    if (ms <= 0) return false;
    frames.emplace_back(std::chrono::steady_clock::now() + std::chrono::milliseconds(ms),
                        std::vector<uint8_t>(frame, frame + len));
    return true;
  }
  void deliver_due() {
    const auto now = std::chrono::steady_clock::now();
    while (!frames.empty() && frames.front().first <= now) {
      link->deliver(frames.front().second.data(), uint32_t(frames.front().second.size()));
      frames.pop_front();
    }
  }
};

// Turns the SACK-permitted option of B's SYN into two NOPs: A then talks to a
// peer without SACK.
bool strip_sack_permitted(uint8_t* frame, uint32_t len) {
  uint32_t payload = 0;
  uint8_t* tcp = tcp_header(frame, len, &payload);
  if (!tcp || !(tcp[13] & 0x02)) return false;
  uint32_t doff = (tcp[12] >> 4) * 4u;
  for (uint32_t i = 20; i + 1 < doff;) {
    uint8_t kind = tcp[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    uint8_t l = tcp[i + 1];
    if (l < 2) break;
    if (kind == 4 && l == 2) {
      tcp[i] = tcp[i + 1] = 1;
      fix_tcp_checksum(frame);
    }
    i += l;
  }
  return false;
}

struct Transfer {
  xdpload::testing::FakeStackPair pair;
  TcpSink sink;
  LossyWire wire;
  DelayLine delay_ab, delay_ba;  // none unless asked for
  struct tcp_pcb* listener = nullptr;
  struct tcp_pcb* client = nullptr;
  bool connected = false;
  uint64_t sent = 0;

  // delay_ms: the path's delay each way, from the handshake on.
  explicit Transfer(bool peer_has_sack = true, int delay_ms = 0) {
    ErrorText why;
    CoreGuard g;
    EXPECT_EQ(pair.open(&why), 0) << why.c_str();
    // (A held segment joins the delay line behind those that overtook it.)
    wire.put = [this](const uint8_t* f, uint32_t l) {
      if (!delay_ab.hold(f, l)) pair.link_a->deliver(f, l);
    };
    delay_ab.link = pair.link_a;
    delay_ba.link = pair.link_b;
    delay_ab.ms = delay_ba.ms = delay_ms;
    pair.link_a->wire_filter = [this](uint8_t* f, uint32_t l) {
      return wire.drop(f, l) || delay_ab.hold(f, l);
    };
    pair.link_b->wire_filter = [this, peer_has_sack](uint8_t* f, uint32_t l) {
      if (!peer_has_sack) strip_sack_permitted(f, l);
      return delay_ba.hold(f, l);
    };
    listener = tcp_new();
    ip4_addr_t b{pair.ip_b};
    EXPECT_EQ(tcp_bind(listener, &b, 7000), ERR_OK);
    listener = tcp_listen(listener);
    tcp_arg(listener, &sink);
    tcp_accept(listener, sink_accept);
    client = tcp_new();
    ip4_addr_t src{pair.ip_a};
    EXPECT_EQ(tcp_bind(client, &src, 0), ERR_OK);
    tcp_arg(client, &connected);
    EXPECT_EQ(tcp_connect(client, &b, 7000,
                          [](void* arg, struct tcp_pcb*, err_t) -> err_t {
                            *static_cast<bool*>(arg) = true;
                            return ERR_OK;
                          }),
              ERR_OK);
  }
  ~Transfer() {
    CoreGuard g;
    pair.link_a->wire_filter = nullptr;
    pair.link_b->wire_filter = nullptr;
    if (client) tcp_abort(client);
    if (sink.pcb) tcp_abort(sink.pcb);
    tcp_close(listener);
    while (tcp_tw_pcbs) tcp_abort(tcp_tw_pcbs);
    pair.a.reset();
    pair.b.reset();
  }

  void poll() {
    delay_ab.deliver_due();
    delay_ba.deliver_due();
    pair.poll();
  }

  // Queues `bytes` more of the stream and polls until B has all of it and A
  // holds nothing unacknowledged. Polls with short sleeps, so that lwIP's
  // timers (a retransmission timeout, if it came to that) run as in a
  // program; gives up after 10 s (a stalled connection fails the checks).
  void send_and_drain(uint64_t bytes) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    uint64_t target = sent + bytes;
    uint8_t chunk[16384];
    while (std::chrono::steady_clock::now() < deadline) {
      {
        CoreGuard g;
        if (connected && sent < target) {
          while (sent < target) {
            uint32_t n = uint32_t(std::min<uint64_t>({sizeof chunk, tcp_sndbuf(client), target - sent}));
            if (n == 0 || tcp_sndqueuelen(client) >= TCP_SND_QUEUELEN - 4) break;
            for (uint32_t i = 0; i < n; ++i) chunk[i] = stream_byte(sent + i);
            if (tcp_write(client, chunk, uint16_t(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
            sent += n;
          }
          tcp_output(client);
        }
        for (int i = 0; i < 50; ++i) poll();
        if (sink.received == target && client->unacked == nullptr && client->unsent == nullptr)
          return;
      }
      usleep(200);
    }
  }
};

// The stack's TCP event counters since construction.
struct EventsSince {
  TcpEvents at;
  EventsSince() {
    CoreGuard g;
    at = tcp_events();
  }
  TcpEvents delta() const {
    CoreGuard g;
    TcpEvents d = tcp_events();
    d.recoveries -= at.recoveries;
    d.rexmit_recovery -= at.rexmit_recovery;
    d.rexmit_rto -= at.rexmit_rto;
    d.sack_blocks -= at.sack_blocks;
    d.tlp_probes -= at.tlp_probes;
    d.rack_lost -= at.rack_lost;
    d.lost_rexmit -= at.lost_rexmit;
    d.dsacks -= at.dsacks;
    d.undone -= at.undone;
    d.rto_undone -= at.rto_undone;
    d.paws_dropped -= at.paws_dropped;
    d.tw_syn_accepted -= at.tw_syn_accepted;
    return d;
  }
};

constexpr uint32_t kSeg = TCP_MSS - 12;  // payload of a segment with timestamps

// A base delay each way for the reordering cases, as real paths have. RACK
// tells a late original's acknowledgement from its retransmission's by the
// round trip it implies: below the path's minimum, it was the original's
// (RFC 8985 6.2 step 2, Linux's tcp_rack_advance). Without a base delay the
// fake wire's only delay is its queue, the minimum is microseconds, and in
// about one run in ten (4 of 40, 2026-11-28) RACK took the retransmission
// for delivered and the window queued before it for lost, sending it again.
constexpr int kBaseDelayMs = 1;

// Opens the window: 512 KB without loss, then arms the wire.
void warm_up(Transfer& t) {
  t.send_and_drain(512 * 1024);
  ASSERT_EQ(t.sink.received, 512u * 1024);
  CoreGuard g;
  ASSERT_GE(t.client->cwnd, 40u * kSeg) << "the window did not open";
  t.wire.armed = true;
}

// Sends `segments` more full segments through the wire as set up and
// drains them; every byte must arrive intact. The stack's events meanwhile.
TcpEvents send_intact(Transfer& t, uint32_t segments) {
  EventsSince x;
  t.send_and_drain(uint64_t(segments) * kSeg);
  EXPECT_EQ(t.sink.received, t.sent);
  EXPECT_EQ(t.sink.mismatches, 0u);
  return x.delta();
}

}  // namespace

TEST(TcpLossRecovery, OneLossInAWindowOfTenIsRepairedWithoutTimeout) {
  Transfer t;
  warm_up(t);
  t.wire.lose = {3};
  TcpEvents d = send_intact(t, 10);
  EXPECT_EQ(t.wire.lost_seqs.size(), 1u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(d.recoveries, 1u);
  EXPECT_EQ(d.rexmit_recovery, 1u);
  EXPECT_EQ(t.wire.retransmissions, 1u);
}

TEST(TcpLossRecovery, ThreeLossesInOneWindowAreRepairedTogetherWithSack) {
  Transfer t;
  warm_up(t);
  t.wire.lose = {3, 8, 13};
  TcpEvents d = send_intact(t, 20);
  EXPECT_EQ(t.wire.lost_seqs.size(), 3u);
  EXPECT_GT(d.sack_blocks, 0u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(d.recoveries, 1u);
  EXPECT_EQ(d.rexmit_recovery, 3u);
  EXPECT_EQ(t.wire.retransmissions, 3u);
}

TEST(TcpLossRecovery, ThreeLossesInOneWindowWithoutSackByPartialAcks) {
  Transfer t(/*peer_has_sack=*/false);
  warm_up(t);
  {
    CoreGuard g;
    ASSERT_FALSE(t.client->flags & TF_SACK) << "SACK was negotiated";
  }
  t.wire.lose = {3, 8, 13};
  TcpEvents d = send_intact(t, 20);
  EXPECT_EQ(d.sack_blocks, 0u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(d.recoveries, 1u);
  EXPECT_EQ(d.rexmit_recovery, 3u);
}

TEST(TcpLossRecovery, ScatteredLossesOverManyWindowsNeverTimeOut) {
  Transfer t;
  warm_up(t);
  // About 2 % of 2000 segments, two of them adjacent.
  for (uint32_t i = 7; i < 2000; i += 50) t.wire.lose.insert(i);
  t.wire.lose.insert(58);
  TcpEvents d = send_intact(t, 2000);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(d.rexmit_recovery, t.wire.lost_seqs.size())
      << "spurious:" << t.wire.spurious() << "; rack lost " << d.rack_lost << " (retransmissions "
      << d.lost_rexmit << "), probes " << d.tlp_probes;
}

TEST(TcpLossRecovery, LostTailSegmentIsRepairedByAProbeNotATimeout) {
  Transfer t;
  warm_up(t);
  t.wire.lose = {9};  // the last of the burst: no duplicate ACK will come
  TcpEvents d = send_intact(t, 10);
  EXPECT_EQ(t.wire.lost_seqs.size(), 1u);
  EXPECT_EQ(d.tlp_probes, 1u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(t.wire.retransmissions, 1u) << "spurious:" << t.wire.spurious();
}

TEST(TcpLossRecovery, LostRetransmissionIsFoundWithoutTimeout) {
  Transfer t;
  warm_up(t);
  t.wire.lose_twice = {3};  // the segment and its first retransmission
  TcpEvents d = send_intact(t, 400);
  EXPECT_EQ(t.wire.lost_seqs.size(), 1u);
  EXPECT_EQ(d.lost_rexmit, 1u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_EQ(t.wire.resent[*t.wire.lost_seqs.begin()], 2u);
}

TEST(TcpLossRecovery, ReorderingByThreeIsUndoneByDsack) {
  Transfer t(true, kBaseDelayMs);
  warm_up(t);
  t.wire.hold = {5};  // overtaken by three later segments, not lost
  uint32_t cwnd_before, ssthresh_before;
  {
    CoreGuard g;
    cwnd_before = t.client->cwnd;
    ssthresh_before = t.client->ssthresh;
  }
  TcpEvents d = send_intact(t, 40);
  EXPECT_TRUE(t.wire.lost_seqs.empty());
  // Three duplicate ACKs look like a loss: one needless retransmission,
  // which the receiver reports as a D-SACK, and the sender undoes. (Once in
  // a full suite run on a loaded machine the fake link's timing made it two,
  // both D-SACKed and undone together: at most two.)
  EXPECT_GE(t.wire.retransmissions, 1u);
  EXPECT_LE(t.wire.retransmissions, 2u) << "sent again:" << t.wire.spurious();
  EXPECT_GE(d.dsacks, 1u);
  EXPECT_EQ(d.undone, 1u);
  EXPECT_EQ(d.rexmit_rto, 0u);
  CoreGuard g;
  EXPECT_GE(t.client->cwnd, cwnd_before) << "the window was not given back";
  EXPECT_GE(t.client->ssthresh, ssthresh_before);
}

// Patch 0012: the first reordering costs a needless retransmission (the
// peer has not been seen to reorder), which the D-SACK undoes; from then on
// the connection knows its peer reorders: DupThresh rises to four (three
// SACKed segments above a hole no longer make it lost) and each D-SACK
// widens RACK's reordering window, so that a reordering of that degree
// costs nothing.
// Before the patch each of the six cost one retransmission and one
// recovery (checked). (On this fake link RACK's timer, which has
// millisecond steps, sometimes still fires for a later one: at most three.)
// (Without kBaseDelayMs a whole window queued on the wire: in about one run
// of six, the late original of the first held segment was acknowledged
// while its retransmission waited behind that window, RACK took the
// retransmission for delivered and every segment queued before it for
// lost: one recovery sent the window again, all of it undone by D-SACKs.
// Hence the checks are per reordering, not a total.)
TEST(TcpLossRecovery, RepeatedReorderingStopsCostingRetransmissions) {
  Transfer t(true, kBaseDelayMs);
  warm_up(t);
  // Further apart than a whole window (256 KiB): the D-SACK of one comes
  // back before the next.
  t.wire.hold = {5, 255, 505, 755, 1005, 1255};
  TcpEvents d = send_intact(t, 1400);
  EXPECT_TRUE(t.wire.lost_seqs.empty());
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_LE(d.recoveries, 3u) << "six reorderings";
  EXPECT_EQ(d.undone, d.recoveries) << "each recovery was needless, and undone";
  {
    CoreGuard g;
    EXPECT_EQ(t.client->reord_seen, 1);
    EXPECT_GE(t.client->reordering, 4) << "DupThresh raised past the reordering's three";
    EXPECT_LE(t.client->reordering, 8) << "...by one per needless recovery, not to a window";
    EXPECT_GE(t.client->reo_wnd_steps, 2) << "a step for a D-SACK";
  }
  // The first held segment was sent again; of the six, at most three were
  // (before the patch: all six).
  ASSERT_FALSE(t.wire.resent.empty());
  const uint32_t first_seq = t.wire.resent.begin()->first;  // segment 5's
  int holds_resent = 0;
  for (uint32_t h : t.wire.hold) holds_resent += t.wire.resent.count(first_seq + (h - 5) * kSeg) > 0;
  EXPECT_LE(holds_resent, 3) << "sent again:" << t.wire.spurious();
}

// Once reordering is seen, losses are still repaired without a timeout,
// found by the SACKed segments above them against the raised DupThresh
// (four after a reordering by three; a needless recovery on this fake link
// adds one: at most eight). (That 16 recoveries without a D-SACK
// bring both back is not checked: on this fake link an occasional recovery
// sends a queued window again, D-SACKed, which restarts the count.)
TEST(TcpLossRecovery, AfterReorderingLossesAreStillRepairedWithoutTimeout) {
  Transfer t(true, kBaseDelayMs);
  warm_up(t);
  t.wire.hold = {5};
  // Further apart than a whole window (256 KiB): one recovery each.
  // (Ten: sixteen recoveries without a D-SACK would bring DupThresh back.)
  for (uint32_t i = 100; i < 100 + 10 * 250; i += 250) t.wire.lose.insert(i);
  TcpEvents d = send_intact(t, 100 + 10 * 250 + 40);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_GE(d.recoveries, 10u);
  for (uint32_t seq : t.wire.lost_seqs) EXPECT_GE(t.wire.resent[seq], 1u) << seq;
  CoreGuard g;
  EXPECT_EQ(t.client->reord_seen, 1);
  EXPECT_GE(t.client->reordering, 4) << "DupThresh raised by the reordering";
  EXPECT_LE(t.client->reordering, 8) << "lost segments taken for reordered (a window: ~180)";
}

// B's acknowledgements held back longer than A's retransmission timeout
// (a delay spike, a peer that stalls), then all delivered: the timeout
// sent the first segment again and cut the window to one segment, but the
// first acknowledgement that comes echoes the original's timestamp (older
// than the retransmission's): nothing was lost, and the window comes back
// (Eifel detection, lwIP patch 0013).
TEST(TcpLossRecovery, ATimeoutForADelayNotALossIsUndone) {
  Transfer t;
  warm_up(t);
  t.wire.armed = false;  // nothing lost on the way to B
  std::vector<std::vector<uint8_t>> held;
  bool holding = true;
  EventsSince x;
  uint32_t cwnd_before = 0, cwnd_cut = 0;
  {
    CoreGuard g;
    t.pair.link_b->wire_filter = [&](uint8_t* f, uint32_t l) {
      if (!holding) return false;
      held.emplace_back(f, f + l);
      return true;
    };
    cwnd_before = t.client->cwnd;
    uint8_t chunk[kSeg];
    for (int i = 0; i < 20; ++i) {
      for (uint32_t j = 0; j < kSeg; ++j) chunk[j] = stream_byte(t.sent + j);
      ASSERT_EQ(tcp_write(t.client, chunk, kSeg, TCP_WRITE_FLAG_COPY), ERR_OK);
      t.sent += kSeg;
    }
    tcp_output(t.client);
  }
  // Until the timeout fires (lwIP's is 200 ms at least).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  bool timed_out = false;
  while (!timed_out && std::chrono::steady_clock::now() < deadline) {
    {
      CoreGuard g;
      t.poll();
      timed_out = tcp_events().rexmit_rto > x.at.rexmit_rto;
      if (timed_out) cwnd_cut = t.client->cwnd;
    }
    usleep(1000);
  }
  ASSERT_TRUE(timed_out) << "no retransmission timeout while B's ACKs were held";
  {
    // The first ACK alone (it acknowledges the burst's first segments):
    // the undo, and the rest of the burst stays in flight, not sent again.
    CoreGuard g;
    holding = false;
    ASSERT_GE(held.size(), 2u);
    const uint32_t resent_before = t.wire.retransmissions;
    t.pair.link_b->deliver(held[0].data(), uint32_t(held[0].size()));
    for (int i = 0; i < 50; ++i) t.poll();
    EXPECT_LE(cwnd_cut, uint32_t(TCP_MSS)) << "the timeout did not cut the window";
    EXPECT_GE(t.client->cwnd, cwnd_before) << "the window did not come back";
    EXPECT_EQ(t.wire.retransmissions, resent_before)
        << "the timeout's go-back-N went on after the undo:" << t.wire.spurious();
    for (size_t i = 1; i < held.size(); ++i)
      t.pair.link_b->deliver(held[i].data(), uint32_t(held[i].size()));
    for (int i = 0; i < 50; ++i) t.poll();
  }
  TcpEvents d = x.delta();
  EXPECT_EQ(d.rto_undone, 1u);
  t.send_and_drain(10 * kSeg);
  EXPECT_EQ(t.sink.received, t.sent);
  EXPECT_EQ(t.sink.mismatches, 0u);
}

// A segment really lost, its tail probe too: the timeout's retransmission is
// what B acknowledges, the echo is the retransmission's, and the cut stays.
TEST(TcpLossRecovery, ATimeoutForARealLossIsNotUndone) {
  Transfer t;
  warm_up(t);
  t.wire.lose_twice = {0};  // the burst's only segment, and the probe that sends it again
  TcpEvents d = send_intact(t, 1);
  EXPECT_EQ(d.rexmit_rto, 1u);
  EXPECT_EQ(d.rto_undone, 0u);
}

// Congestion control (patch 0004), on a PCB of its own: how far the window
// falls on a loss and how fast it grows back while ACKs come at once (no
// time passes, so CUBIC's cubic term stays at the window it started from and
// its Reno-friendly estimate governs: RFC 9438's alpha, 0.53 a window).
// A request/response connection, one small message in flight at a time:
// its window never limits the sender, so congestion avoidance does not run
// (RFC 7661, Linux's tcp_is_cwnd_limited; lwIP patch 0014): the window
// stays, and CUBIC's epoch never starts (its arithmetic ran on every ACK).
TEST(TcpCongestionControl, CongestionAvoidanceWaitsForTheWindowToLimit) {
  Transfer t;
  t.send_and_drain(64);
  uint32_t cwnd0;
  {
    CoreGuard g;
    ASSERT_EQ(t.client->cc, TCP_CC_CUBIC);
    t.client->ssthresh = t.client->cwnd;  // past slow start
    t.client->cubic_epoch_us = 0;
    cwnd0 = t.client->cwnd;
  }
  for (int i = 0; i < 30; ++i) t.send_and_drain(64);
  EXPECT_EQ(t.sink.received, t.sent);
  CoreGuard g;
  EXPECT_EQ(t.client->cubic_epoch_us, 0u) << "congestion avoidance ran for a window that did not limit";
  EXPECT_EQ(t.client->cwnd, cwnd0);
}

// Slow start too (patch 0018, RFC 7661 as Linux's tcp_is_cwnd_limited):
// the window grows only while it is below twice what was in flight. A
// request/response connection in slow start keeps its initial window;
// before, each of its 64-byte ACKs added 64 bytes to it.
TEST(TcpCongestionControl, SlowStartWaitsForTheWindowToLimit) {
  Transfer t;
  t.send_and_drain(64);
  uint32_t cwnd0;
  {
    CoreGuard g;
    ASSERT_LT(t.client->cwnd, t.client->ssthresh) << "not in slow start";
    cwnd0 = t.client->cwnd;
  }
  for (int i = 0; i < 30; ++i) t.send_and_drain(64);
  EXPECT_EQ(t.sink.received, t.sent);
  CoreGuard g;
  // (At most: a timeout on a stalled machine would cut it.)
  EXPECT_LE(t.client->cwnd, cwnd0) << "slow start grew a window that did not limit";
}

// ...and a sender that fills its window still doubles it each round trip.
TEST(TcpCongestionControl, SlowStartStillOpensTheWindowForABulkSender) {
  Transfer t(true, kBaseDelayMs);
  t.send_and_drain(64);
  uint32_t cwnd0;
  {
    CoreGuard g;
    cwnd0 = t.client->cwnd;
  }
  t.send_and_drain(256 * 1024);
  EXPECT_EQ(t.sink.received, t.sent);
  CoreGuard g;
  EXPECT_GE(t.client->cwnd, 8 * cwnd0) << "slow start did not open the window";
}

TEST(TcpCongestionControl, RenoHalvesCubicKeepsSeventyPercent) {
  CoreGuard g;
  struct tcp_pcb* p = tcp_new();
  ASSERT_NE(p, nullptr);
  p->mss = kSeg;
  EXPECT_EQ(tcp_set_congestion(p, "reno"), 0);
  EXPECT_STREQ(tcp_get_congestion(p), "reno");
  EXPECT_EQ(tcp_cc_ssthresh(p, 100 * kSeg), 50u * kSeg);
  EXPECT_EQ(tcp_set_congestion(p, "cubic"), 0);
  EXPECT_STREQ(tcp_get_congestion(p), "cubic");
  EXPECT_EQ(tcp_cc_ssthresh(p, 100 * kSeg), 70u * kSeg);
  // Fast convergence: a loss below the last maximum remembers less.
  EXPECT_EQ(tcp_cc_ssthresh(p, 80 * kSeg), 56u * kSeg);
  EXPECT_NEAR(p->cubic_wmax, 80 * 1.7 / 2, 0.01);
  EXPECT_EQ(tcp_set_congestion(p, "bbr"), -1);
  EXPECT_STREQ(tcp_get_congestion(p), "cubic");
  tcp_abort(p);
}

TEST(TcpCongestionControl, GrowthInCongestionAvoidance) {
  CoreGuard g;
  uint32_t grown[2];
  const char* names[2] = {"reno", "cubic"};
  for (int i = 0; i < 2; ++i) {
    struct tcp_pcb* p = tcp_new();
    ASSERT_NE(p, nullptr);
    p->mss = kSeg;
    p->srtt_us = 50;
    ASSERT_EQ(tcp_set_congestion(p, names[i]), 0);
    p->cwnd = p->ssthresh = tcp_cc_ssthresh(p, 100 * kSeg);  // after a loss at 100
    uint32_t start = p->cwnd;
    for (int window = 0; window < 10; ++window) {
      uint32_t segs = p->cwnd / kSeg;
      for (uint32_t s = 0; s < segs; ++s) tcp_cc_cong_avoid(p, kSeg);
    }
    grown[i] = (p->cwnd - start) / kSeg;
    tcp_abort(p);
  }
  EXPECT_EQ(grown[0], 10u) << "reno: one segment a window";
  EXPECT_GE(grown[1], 5u) << "cubic: 0.53 a window";
  EXPECT_LE(grown[1], 6u);
}

TEST(TcpLossRecovery, ReorderingAndLossTogetherStayIntactWithoutTimeout) {
  Transfer t(true, kBaseDelayMs);
  warm_up(t);
  for (uint32_t i = 11; i < 2000; i += 37) t.wire.hold.insert(i);
  for (uint32_t i = 30; i < 2000; i += 97) t.wire.lose.insert(i);
  TcpEvents d = send_intact(t, 2000);
  EXPECT_EQ(d.rexmit_rto, 0u);
  EXPECT_GE(d.rexmit_recovery, t.wire.lost_seqs.size());
  EXPECT_GE(d.undone, 1u);
}

TEST(TcpLossRecovery, AnOldDuplicateIsDroppedByPaws) {
  Transfer t;
  warm_up(t);
  t.wire.age = {4};  // arrives with a timestamp a minute old
  TcpEvents d = send_intact(t, 20);
  EXPECT_EQ(t.wire.lost_seqs.size(), 1u);
  EXPECT_EQ(d.paws_dropped, 1u);
  // Dropped by the receiver, so sent again (with a fresh timestamp): once,
  // or twice when the harness's polls (short sleeps, RACK's millisecond
  // clock) let a timer see the first resend late; seen once in a full run
  // under load, never in 30 runs alone.
  EXPECT_GE(t.wire.retransmissions, 1u);
  EXPECT_LE(t.wire.retransmissions, 2u) << "sent again:" << t.wire.spurious();
  EXPECT_EQ(d.rexmit_rto, 0u);
}

// A connection idle long enough for the peer's timestamp clock to move past
// half its range (RFC 7323 5.5: 24.8 days at a millisecond; Linux since 6.7
// allows 36 minutes, for microsecond clocks; lwIP patch 0017): its
// timestamps look older than the last one taken. PAWS trusts them then,
// as Linux does, and takes the new value. Before, every segment was
// dropped, for good (an older value is never taken).
TEST(TcpLossRecovery, AfterALongIdlePawsTrustsTheTimestampsAgain) {
  Transfer t;
  warm_up(t);
  {
    CoreGuard g;
    ASSERT_NE(t.sink.pcb, nullptr);
    t.sink.pcb->ts_recent_stamp -= TCP_PAWS_IDLE_S + 60;  // taken that long ago
  }
  t.wire.age = {0, 1, 2};  // a minute older than the last one B took
  TcpEvents d = send_intact(t, 10);
  EXPECT_EQ(d.paws_dropped, 0u);
  EXPECT_EQ(t.wire.retransmissions, 0u) << "sent again:" << t.wire.spurious();
  CoreGuard g;
  EXPECT_LT(uint32_t(TCP_NOW_S() - t.sink.pcb->ts_recent_stamp), 60u)
      << "the new timestamp was not taken";
}

// Some stacks put 0 in the timestamp of their SYN and real values after
// it; Linux's PAWS lets everything past a ts_recent of 0 (patch 0017). B's
// SYN-ACK says 0 here, and its later timestamps are above 2^31, where they
// look older than 0: A dropped every ACK of B's before.
TEST(TcpLossRecovery, ATimestampOfZeroInTheSynBarsNoLaterOne) {
  Transfer t;
  {
    CoreGuard g;  // (before the first poll: B has not answered A's SYN yet)
    t.pair.link_b->wire_filter = [](uint8_t* f, uint32_t l) {
      uint32_t payload = 0;
      uint8_t* tcp = tcp_header(f, l, &payload);
      uint8_t* ts = tcp ? tsval_field(tcp) : nullptr;
      if (!ts) return false;
      const uint32_t v = (tcp[13] & 0x02) ? 0 : be32(ts) | 0x80000000u;
      ts[0] = uint8_t(v >> 24), ts[1] = uint8_t(v >> 16), ts[2] = uint8_t(v >> 8), ts[3] = uint8_t(v);
      fix_tcp_checksum(f);
      return false;
    };
  }
  EventsSince x;
  t.send_and_drain(40 * kSeg);
  EXPECT_EQ(t.sink.received, t.sent);
  EXPECT_EQ(x.delta().paws_dropped, 0u);
  CoreGuard g;
  EXPECT_EQ(t.client->unacked, nullptr) << "B's acknowledgements did not reach A's TCP";
}

// The retransmission timeout (lwIP patch 0016): SRTT from every ACK's round
// trip in microseconds, and RTO = SRTT + RTTVAR with RTTVAR at least 200 ms,
// as Linux computes it. On a path of 60 ms each way, lwIP's estimator (one
// sample per round trip, in 40 ms ticks) read the round trip as 72-80 ms
// and gave a timeout of 520-560 ms (Linux: about 320).
TEST(TcpRetransmissionTimeout, IsTheRoundTripAndAtLeast200msMore) {
  Transfer t(true, 60);
  t.send_and_drain(100 * kSeg);
  ASSERT_EQ(t.sink.received, t.sent);
  CoreGuard g;
  // 120 ms, plus B's delayed ACKs (lwIP's fast timer, 20 ms at most) and
  // the polling's lateness on a loaded machine.
  const uint32_t srtt_us = t.client->srtt8_us >> 3;
  EXPECT_GE(srtt_us, 115000u);
  EXPECT_LE(srtt_us, 250000u);
  EXPECT_GE(t.client->rttvar_us, 200000u) << "RTTVAR below the timeout's floor";
  // SRTT + RTTVAR in whole slow-timer ticks, rounded up, and one more (the
  // timer counts whole ticks from a transmission anywhere within one).
  const uint32_t tick_us = TCP_SLOW_INTERVAL * 1000;
  EXPECT_EQ(uint32_t(t.client->rto), (srtt_us + t.client->rttvar_us + tick_us - 1) / tick_us + 1)
      << "SRTT " << srtt_us << " us, RTTVAR " << t.client->rttvar_us << " us";
}

// An ACK for a segment sent twice gives no sample from the segment's time
// (Karn's rule: which copy arrived is unknown); the timestamp it echoes does
// (RFC 7323): it names the copy the peer answered. After the path's delay
// grew from 10 to 100 ms each way, the one ACK of a segment whose first copy
// was lost moves SRTT an eighth of the way to the new round trip.
TEST(TcpRetransmissionTimeout, TimestampsSampleWhatKarnsRuleLeaves) {
  Transfer t(true, 10);
  t.send_and_drain(40 * kSeg);
  ASSERT_EQ(t.sink.received, t.sent);
  uint32_t before_us;
  {
    CoreGuard g;
    before_us = t.client->srtt8_us >> 3;
    ASSERT_GE(before_us, 15000u);
    ASSERT_LE(before_us, 45000u);
  }
  t.delay_ab.ms = t.delay_ba.ms = 100;
  t.wire.armed = true;
  t.wire.lose = {0};
  send_intact(t, 1);
  EXPECT_EQ(t.wire.lost_seqs.size(), 1u);
  EXPECT_GE(t.wire.retransmissions, 1u);
  CoreGuard g;
  // 200 ms or more, weighed an eighth: at least 19 ms more.
  EXPECT_GE(t.client->srtt8_us >> 3, before_us + 15000) << "SRTT stayed at " << before_us << " us";
}
