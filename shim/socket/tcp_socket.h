// TcpSocket: a TCP socket on the stack (lwIP's raw API).
//
// Received data waits as a pbuf chain until the program reads it; only then
// does lwIP get tcp_recved(), so the window advertises what the program has
// consumed and closing with unread data resets the connection, as on Linux.
// When the link's frames run short, received data is copied out of the UMEM
// frames it arrived in.
#pragma once

#include <deque>

#include "rings/error_text.h"
#include "shim/socket/socket.h"
#include "shim/socket/tcp_tx_stamps.h"

namespace xdpload::rings {
struct RepairUndo;
}

namespace xdpload::shim {

class TcpSocket final : public Socket {
 public:
  enum class State : uint8_t { Fresh, Listening, Connecting, Connected, Closed };

  explicit TcpSocket(int fd) : Socket(Kind::Tcp, fd) {}
  ~TcpSocket() override;

  uint32_t events() override;
  bool connections_waiting() const override {
    return state == State::Listening && !accept_queue.empty();
  }
  bool kernel_side() const override { return state == State::Listening; }
  void release() override;

  // ---- the program's calls, lock held; results are >= 0 or -errno ----
  // Puts the socket on the stack as a listener on its bound address (both
  // paths: lwIP for remote peers, the kernel socket for local ones).
  int listen(int backlog);
  // Starts a connection from `local` (already bound in the kernel) to `to`;
  // waits unless non-blocking.
  int connect(const SockAddr& to);
  // A connection from the stack's queue: its new descriptor (0 flags: from
  // accept4), or -EAGAIN when the queue is empty.
  int accept_from_stack(int flags, sockaddr* addr, socklen_t* len);
  // control_error: what the control messages were found to be (checked
  // once the connection can send, as Linux does); record_flags: the
  // transmit stamps its own SO_TIMESTAMPING message asked for (-1: none
  // given, the socket's apply).
  ssize_t send(const iovec* iov, int iovcnt, int flags, int control_error = 0, int record_flags = -1);
  // Where a send's bytes come from: the program's buffers (send()), or a
  // file read into transmit frames (sendfile(), shim/files/).
  struct SendSource {
    struct Stop {
      bool end = false;  // nothing more to queue: the send is what was queued
      int error = 0;     // -errno for a send that queued nothing (a read error)
      bool io = false;   // the next bytes need I/O that may wait: wait_io() first
    };
    // Queues the next bytes on `pcb` (which has send buffer and queue room),
    // `sent` of `total` queued so far; `more`: MSG_MORE or TCP_CORK. Returns
    // the bytes queued, 0 when lwIP takes none now.
    virtual size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) = 0;
    // lwIP has the room queue() needs to take something: the send loop
    // waits (or says EAGAIN) until it does. A source that queues whole
    // frames needs room for the next one, not just a byte.
    virtual bool ready(const tcp_pcb* pcb) const { return can_queue(pcb); }
    // The I/O Stop::io asked for, done without the CoreLock (a file not in
    // the page cache: the disk would hold up the family's stack).
    virtual void wait_io() {}
    // The send is over: lets go of what the source still holds (lock held).
    virtual void finish() {}
    virtual ~SendSource() = default;
  };
  // A send of `total` bytes from `src`, with send()'s semantics (blocking,
  // partial counts, errors, transmit stamps).
  ssize_t send_from(SendSource& src, size_t total, int flags, int control_error = 0,
                    int record_flags = -1);
  // lwIP takes more data now: send buffer space, and room in the segment
  // queue (a peer with a small MSS fills the queue before the buffer).
  static bool can_queue(const tcp_pcb* p);
  // How many more segments lwIP's queue takes, `per` queue entries each (it
  // counts pbufs: a segment in a frame of its own takes 2, header and
  // data; the send loop keeps 4 spare).
  static int queue_room(const tcp_pcb* p, int per);
  ssize_t recv(const iovec* iov, int iovcnt, int flags);
  // recv() in place (the extensions' zero-copy receive): the next pbufs of
  // the stream into out[], at most `max` and at most what room() says when
  // there are some to take (-ENOBUFS if 0), each out of its chain (the
  // program gives each back on its own) and starting past what a recv()
  // already read; *n of them. Returns their bytes; recv()'s waits, end (0)
  // and errors.
  ssize_t recv_in_place(pbuf** out, int max, int (*room)(), int* n, int flags);
  int shutdown(int how, int fd_now);
  // The listener goes to the kernel (an option the stack cannot serve),
  // but the connections already waiting in its queue stay and are accepted
  // first, as from a Linux listener that changed an option. The port is
  // shared (share_port_with_kernel): the kernel socket, which listens too,
  // takes every new connection from that moment. lwIP's listener stays
  // for what reached the stack before it: handshakes under way, and SYNs
  // already in the receive rings (answered in a poll made here); their
  // flows are listed, so their next segments come back to the stack. The
  // socket becomes the kernel's for good once it is drained (op_accept).
  // False when the port cannot be shared: the caller hands the socket over
  // as before (its queue reset).
  bool hand_listening_to_kernel();
  bool draining = false;  // handed over as above, not yet drained
  // Nothing of the stack's left to accept: the queue empty, and no
  // handshake of lwIP's listener under way.
  bool drained() const;
  // A listener about to be released: the connections waiting in its queue
  // are reset rather than closed (a closed one would keep the port steered
  // to the stack through TIME_WAIT).
  void reset_waiting_connections();
  // Linux's tcp_disconnect (connect(AF_UNSPEC), shutdown() of a listener or
  // of a connection under way): a listener stops, resetting what waited in
  // its queue; a connection is reset where Linux resets it (ECONNRESET
  // pending then, as for an attempt under way); the socket is unconnected
  // and on the stack, ready for another listen() or connect(). The caller
  // disconnects the kernel twin.
  void disconnect();
  int getsockopt(int level, int name, void* value, socklen_t* len, bool* handled);
  // Applies an option to the PCB (the kernel socket already has it).
  void apply_option(int level, int name);
  int pending_error(bool clear);
  // Bytes the program can read now (FIONREAD), bytes not yet acked (SIOCOUTQ).
  int readable_bytes() const { return int(rx_bytes); }
  // A connection with nothing for recv() to return: no data, no end, no
  // error. Read without the CoreLock (a hint: a racing change is seen by
  // the next call).
  bool nothing_to_read_hint() const {
    return __atomic_load_n(&state, __ATOMIC_RELAXED) == State::Connected &&
           __atomic_load_n(&rx_bytes, __ATOMIC_RELAXED) == 0 &&
           !__atomic_load_n(&rx_fin, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&shut_rd, __ATOMIC_RELAXED) &&
           __atomic_load_n(&error, __ATOMIC_RELAXED) == 0;
  }
  // The receive time of the data the last recv() returned (of its last
  // segment, as Linux's tcp_recv_timestamp), {0, 0} when none was taken.
  // A received segment's stamps: software ({0, 0}: none taken) and the NIC's.
  struct RxStamps {
    timespec sw{};
    timespec hw{};
  };
  RxStamps last_read_stamp{};
  int unacked_bytes() const;
  void fill_tcp_info(void* info, socklen_t* len) const;
  void stat_row(stats::SocketRow* row) const override;

  // lwIP freed the PCB this socket held, without an error callback.
  void pcb_freed();

  // The listener of `port` went to the kernel while connections of the
  // stack on the port live (the port stays steered while any does): from
  // now on the XDP program sends the stack only their flows, and the
  // kernel the port's new connections. Lock held. False, with the reason,
  // where the steering cannot list them: new connections are then refused
  // until the stack's have ended.
  static bool share_port_with_kernel(uint16_t port, ErrorText* why);
  // A connection of the stack on a port shared so: its flow listed too.
  static void list_if_shared(tcp_pcb* p);
  // ... and no longer (its frames the kernel's).
  static void unlist_flow(tcp_pcb* p);

  // The connection becomes the kernel socket `fd` (its twin, the program's
  // descriptor) with its whole state, through TCP_REPAIR (tcp_handover.cc):
  // sequence numbers, windows, options, the bytes not yet acknowledged and
  // those not yet read. Lock held. 0: the socket is done with the stack
  // (the caller drops it to the kernel). -errno, with the reason, and the
  // connection still on the stack: not an established connection, or no
  // CAP_NET_ADMIN (TCP_REPAIR), or the steering refused.
  int hand_connection_to_kernel(int fd, ErrorText* why);
  void rebind_chosen_port(int fd, const rings::RepairUndo& undo);

  // Puts a PCB lwIP created for an incoming connection under this socket.
  void adopt(tcp_pcb* p, TcpSocket* listener);

  State state = State::Fresh;
  tcp_pcb* pcb = nullptr;
  int error = 0;        // pending SO_ERROR (errno value)
  bool reset = false;   // lwIP dropped the connection: further calls fail
  bool rx_fin = false;  // the peer closed its side
  bool established = false;      // the connection was up at some point
  bool connect_unreported = false;  // a non-blocking connect completed; connect() says 0 once
  bool disconnecting = false;  // shut down before any connect() confirmed it: connect() is EINVAL
  // Linux's SOCK_NOSPACE: someone found the socket not writable (a send that
  // could not queue everything, a poll); acknowledgements that make it
  // writable again wake waiters only then, so edge-triggered EPOLLOUT fires
  // when space returns, not at every ACK.
  bool nospace = false;
  bool shut_rd = false;
  bool shut_wr = false;
  int backlog = 0;
  // The kernel socket released the port the kernel had chosen (a
  // disconnected listener, a client connection that ended): its
  // getsockname still shows it (Linux leaves inet_sport); the next listen()
  // or connect() takes a new one.
  bool twin_unbound = false;
  // The kernel socket's port is one the kernel chose for the connection
  // (bind_client_port), held without SOCK_BINDPORT_LOCK: it is let go when
  // the connection ends (release_twin_port). Not after a bind of the
  // program's own.
  bool twin_port_chosen = false;
  // The connection has ended: the kernel socket (this process's `fd`)
  // lets go of such a port, unless the stack still uses it beyond
  // `uses_left` PCBs (1 from lwIP's error callback, whose PCB goes right
  // after). Lock held.
  void let_twin_port_go(int fd, int uses_left);
  family::deque<TcpSocket*> accept_queue;  // connections waiting for accept()
  int64_t queued_since_ns = 0;  // when the queue last became non-empty
  int64_t last_accept_ns = 0;   // when the program last accepted from the stack
  TcpSocket* listener = nullptr;        // while waiting in a listener's queue

  // Transmit timestamps (tcp_tx_stamps.h) and their error queue.
  TcpTxStamps tx_stamps;
  // OPT_ID switched on by setsockopt: keys count from snd_una (write_seq
  // with OPT_ID_TCP). False when the connection is not one Linux would
  // allow it on (TCP_CLOSE or TCP_LISTEN: EINVAL).
  bool start_stamp_keys(uint32_t tsflags);

  // Frees what waits to be read.
  void drop_queue();

  // The stack can no longer carry the connection (its broker is gone):
  // reset it, and the program's next call gets ECONNRESET. Lock held.
  void reset_connection();

 private:
  // A send that asked for transmit stamps (record: the TX_* bits) marks
  // its last byte (sequence number `last`), before lwIP may send it.
  void mark_for_stamps(uint32_t last, uint32_t record);
  // The link's standing watch on transmitted frames, while some connection
  // of the family waits for stamps: finds the connection, stamps its marks.
  static void on_frame_sent(void* ctx, const uint8_t* frame, uint32_t len, const timespec& stamp);
  void watch_frames(bool on);
  size_t error_queue_room() const;
  static size_t opt_stats_of(void* ctx, uint64_t edt_ns, int ack_ttl, uint8_t* out);
  bool frames_watched = false;  // in the family's list for on_frame_sent
  static signed char on_recv(void* arg, tcp_pcb* p, pbuf* data, signed char err);
  static signed char on_sent(void* arg, tcp_pcb* p, uint16_t len);
  static void on_error(void* arg, signed char err);
  static signed char on_connected(void* arg, tcp_pcb* p, signed char err);
  static signed char on_accept(void* arg, tcp_pcb* p, signed char err);
  bool writable() const;
  // recv() found nothing to read: its answer then, with `got` bytes read
  // so far (an end, an error, EAGAIN), or kReadAgain after a wait.
  static constexpr ssize_t kReadAgain = INT64_MIN;
  ssize_t nothing_to_read(bool dontwait, size_t got);
  int failed_attempt_error();
  void attach(tcp_pcb* p);
  int hold_port(tcp_pcb* p);
  // A new PCB bound to `local` (-ENOBUFS, -EADDRINUSE).
  int new_bound_pcb(tcp_pcb** out);
  void detach();
  void stop_listening();
  void apply_all_options();
  void apply_congestion();
  // spin_kind: a SpinKind (shim/ext/thread_spin.h).
  int wait_for(bool (*ready)(TcpSocket*), int64_t timeout_ns, uint8_t spin_kind);

  // Received, not yet read: pbufs in arrival order (a deque, not a pbuf
  // chain: a chain's length is 16 bits).
  family::deque<pbuf*> rx;
  family::deque<RxStamps> rx_stamps;  // each rx pbuf's
  size_t rx_off = 0;    // bytes of rx.front() already read
  size_t rx_bytes = 0;  // readable bytes in rx
  bool owns_port = false;  // the kernel socket reserves the local port (client side)
  // After a disconnect, Linux's write_seq is max_window + 2 beyond snd_nxt
  // until the next connect: bytes "not sent" that TCP_NOTSENT_LOWAT sees
  // (tcp_stream_memory_free), so POLLOUT may be absent. 0: none.
  uint32_t notsent_after_disconnect = 0;
};

}  // namespace xdpload::shim
