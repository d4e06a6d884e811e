#include "shim/files/send_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/files/file_reader.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/tcp_socket.h"
#include "shim/socket/user_memory.h"
#include "stack/link_netif.h"
#include "stack/stack.h"

extern "C" {
#include "lwip/tcp.h"
}

namespace xdpload::shim {
namespace {

// XDPLOAD_SENDFILE's words, in options.def's order.
enum { kSendfileFrames = 0, kSendfileCopy = 1 };
constexpr int kBatch = FileReader::kMaxBatch;

// Frames for up to `want` bytes in segments of at most `seg` bytes, no more
// than the queue takes (2 entries each: header and data): their pbufs into
// p[], each as long as its segment; returns how many.
int take_frames(tcp_pcb* pcb, size_t want, uint16_t seg, pbuf** p) {
  stack::LinkNetif& nif = Runtime::get().stack()->driver();
  int k = int(std::min<size_t>((want + seg - 1) / seg, kBatch));
  k = std::min(k, TcpSocket::queue_room(pcb, 2));
  int got = 0;
  for (size_t off = 0; got < k; ++got) {
    uint16_t len = uint16_t(std::min<size_t>(seg, want - off));
    p[got] = nif.alloc_tcp_data_pbuf(len);
    if (!p[got]) break;
    off += len;
  }
  return got;
}

// Queues frames 0..n-1 whose data is in: frame i got[i] bytes of the
// asked[i] (fewer: the source ends there; < 0: an error). Frees the frames
// not queued. Returns the bytes queued; *ended when the source ended at a
// frame that came back short or failed.
size_t queue_frames(tcp_pcb* pcb, pbuf** p, const int32_t* got, const uint32_t* asked, int n,
                    size_t sent, size_t total, bool more, bool* ended) {
  int full = 0;  // frames to queue: every one up to and with the first short one
  size_t bytes = 0;
  while (full < n && got[full] > 0) {
    pbuf_realloc(p[full], u16_t(got[full]));
    bytes += size_t(got[full]);
    const bool short_read = uint32_t(got[full]) < asked[full];
    ++full;
    if (short_read) {
      *ended = true;
      break;
    }
  }
  if (full < n && got[full] <= 0) *ended = true;
  bool last = *ended || sent + bytes >= total;
  int queued = tcp_write_pbufs(pcb, p, u16_t(full), more || !last ? TCP_WRITE_FLAG_MORE : 0);
  size_t queued_bytes = 0;
  for (int i = 0; i < queued; ++i) queued_bytes += size_t(got[i]);
  // (lwIP refuses only when memory runs out: its buffer and queue had room.)
  if (queued < full) *ended = false;
  for (int i = queued; i < n; ++i) pbuf_free(p[i]);
  return queued_bytes;
}

// A read through a buffer (no frame to read into, or XDPLOAD_SENDFILE=copy)
// may take what one tcp_write of it is sure to have taken: room in lwIP's
// send buffer and in its queue (1 entry a segment), at most `buf_len`.
size_t copy_cap(const tcp_pcb* pcb, size_t want, uint16_t seg, size_t buf_len) {
  return std::min({want, buf_len, size_t(TcpSocket::queue_room(pcb, 1)) * seg});
}

// Queues the `got` bytes a read of `cap` put in `buf` (got <= 0: the end,
// or an error for a send that queued nothing). Returns the bytes queued.
// Should lwIP refuse them (only when memory runs out), a file is read again
// later; a pipe's bytes are gone, and the send ends with the error.
size_t queue_copied(tcp_pcb* pcb, const char* buf, ssize_t got, size_t cap, size_t sent,
                    size_t total, bool more, bool can_read_again,
                    TcpSocket::SendSource::Stop* stop) {
  if (got <= 0) {
    stop->end = true;
    if (!sent) stop->error = int(got);
    return 0;
  }
  size_t n = size_t(got);
  u8_t fl = TCP_WRITE_FLAG_COPY;
  if (more || sent + n < total) fl |= TCP_WRITE_FLAG_MORE;
  if (tcp_write(pcb, buf, u16_t(n), fl) != ERR_OK) {
    if (!can_read_again) {
      stop->end = true;
      stop->error = -ENOMEM;
    }
    return 0;
  }
  Runtime::get().counters().file_bytes_copied += n;
  if (n < cap) stop->end = true;
  return n;
}

// A file's or a pipe's bytes: read into frames when frames are to spare
// (and XDPLOAD_SENDFILE allows), else through a buffer. The source says
// how to fill each.
class FrameSource : public TcpSocket::SendSource {
 public:
  size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) override {
    Runtime& rt = Runtime::get();
    size_t want = std::min(total - sent, size_t(tcp_sndbuf(pcb)));
    uint16_t seg = tcp_write_pbuf_max(pcb);
    if (!seg) return 0;
    if (rt.config().sendfile == kSendfileFrames && !rt.frames_short()) {
      if (!TcpSocket::queue_room(pcb, 2)) return 0;  // wait for acknowledgements
      pbuf* p[kBatch];
      if (int n = take_frames(pcb, want, seg, p)) return queue_in_frames(pcb, p, n, sent, total, more, stop);
    }
    return queue_buffered(pcb, want, seg, sent, total, more, stop);
  }
  // A frame's segment takes 2 queue entries (header and data); one through
  // a buffer, 1: the send waits for the frame's.
  bool ready(const tcp_pcb* pcb) const override {
    return tcp_sndbuf(pcb) > 0 && TcpSocket::queue_room(pcb, 2) > 0;
  }

 protected:
  // Fills frames p[0..n) and queues what they got (frees the rest).
  virtual size_t queue_in_frames(tcp_pcb* pcb, pbuf** p, int n, size_t sent, size_t total,
                                 bool more, Stop* stop) = 0;
  // No frame to read into: through a buffer (queue_copied).
  virtual size_t queue_buffered(tcp_pcb* pcb, size_t want, uint16_t seg, size_t sent,
                                size_t total, bool more, Stop* stop) = 0;
};

// A sendfile()'s bytes: a regular file from `pos` on.
//
// Reads into frames are asked of the page cache alone (RWF_NOWAIT): the
// frames whose bytes are not there wait (pending_) while the send loop
// lets go of the CoreLock and wait_io() reads them from the disk.
class FileSource final : public FrameSource {
 public:
  FileSource(int fd, int64_t pos) : fd_(fd), pos_(pos) {}
  int64_t pos() const { return pos_; }

  void wait_io() override {
    iovec iov[kBatch];
    for (int i = 0; i < npending_; ++i) iov[i] = iovec{pending_[i]->payload, pending_asked_[i]};
    ssize_t r;
    do r = preadv(fd_, iov, npending_, pending_pos_);
    while (r < 0 && errno == EINTR);
    size_t left = r > 0 ? size_t(r) : 0;
    for (int i = 0; i < npending_; ++i) {
      pending_got_[i] = int32_t(std::min<size_t>(left, pending_asked_[i]));
      left -= size_t(pending_got_[i]);
    }
    if (r < 0) pending_got_[0] = int32_t(-errno);
    Runtime::get().counters().file_reads_waited += uint64_t(npending_);
  }

  void finish() override {
    for (int i = 0; i < npending_; ++i) pbuf_free(pending_[i]);
    npending_ = 0;
  }

  size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) override {
    if (npending_) return queue_pending(pcb, sent, total, more, stop);
    return FrameSource::queue(pcb, sent, total, more, stop);
  }

 private:
  size_t queue_in_frames(tcp_pcb* pcb, pbuf** p, int n, size_t sent, size_t total, bool more,
                         Stop* stop) override {
    FileReader::Read reads[kBatch];
    int32_t got[kBatch] = {};
    uint32_t asked[kBatch];
    int64_t at = pos_;
    for (int i = 0; i < n; ++i) {
      reads[i] = FileReader::Read{p[i]->payload, p[i]->len, at, 0};
      asked[i] = p[i]->len;
      at += p[i]->len;
    }
    size_t mem_len;
    uint8_t* mem = Runtime::get().stack()->driver().link()->frame_memory(&mem_len);
    FileReader::read(fd_, reads, n, mem, mem_len, /*nowait=*/true);
    for (int i = 0; i < n; ++i) got[i] = reads[i].result;
    // The frames from the first the page cache could not fill on wait for
    // the disk (unless the file ends before them).
    int ready = 0;
    while (ready < n && got[ready] == int32_t(asked[ready])) ++ready;
    if (ready < n && got[ready] == -EAGAIN) {
      size_t before = 0;
      for (int i = 0; i < ready; ++i) before += asked[i];
      for (int i = ready; i < n; ++i) {
        pending_[npending_] = p[i];
        pending_asked_[npending_++] = asked[i];
      }
      bool ended = false;
      size_t queued = ready ? queue_frames(pcb, p, got, asked, ready, sent, total, true, &ended) : 0;
      pos_ += int64_t(queued);
      if (queued < before) {
        finish();  // (out of memory) read again later
      } else {
        pending_pos_ = pos_;
        stop->io = true;
      }
      return queued;
    }
    bool ended = false;
    size_t queued = queue_frames(pcb, p, got, asked, n, sent, total, more, &ended);
    pos_ += int64_t(queued);
    if (ended) {
      stop->end = true;
      // A read error ends the send; it is the call's result when nothing
      // was queued at all (Linux's partial count otherwise).
      for (int i = 0; i < n; ++i)
        if (got[i] < 0) {
          if (!queued && !sent) stop->error = got[i];
          break;
        }
    }
    return queued;
  }

  // The frames wait_io() read from the disk, queued as the page cache's
  // would have been (the connection may take fewer now: the rest is read
  // again).
  size_t queue_pending(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) {
    int n = npending_;
    npending_ = 0;
    bool ended = false;
    size_t queued = queue_frames(pcb, pending_, pending_got_, pending_asked_, n, sent, total, more,
                                 &ended);
    pos_ += int64_t(queued);
    if (ended) {
      stop->end = true;
      if (pending_got_[0] < 0 && !queued && !sent) stop->error = pending_got_[0];
    }
    Runtime::get().counters().file_bytes_read += queued;
    return queued;
  }

  size_t queue_buffered(tcp_pcb* pcb, size_t want, uint16_t seg, size_t sent, size_t total,
                        bool more, Stop* stop) override {
    char buf[16384];
    size_t cap = copy_cap(pcb, want, seg, sizeof buf);
    if (!cap) return 0;
    FileReader::Read r{buf, uint32_t(cap), pos_, 0};
    FileReader::read(fd_, &r, 1, nullptr, 0);
    size_t n = queue_copied(pcb, buf, r.result, cap, sent, total, more, true, stop);
    pos_ += int64_t(n);
    return n;
  }

  int fd_;
  int64_t pos_;
  // Frames waiting for their bytes from the disk (wait_io()), from
  // pending_pos_ on in the file.
  pbuf* pending_[kBatch];
  uint32_t pending_asked_[kBatch];
  int32_t pending_got_[kBatch] = {};
  int npending_ = 0;
  int64_t pending_pos_ = 0;
};

// A splice()'s bytes: what a pipe holds (the caller saw some), read
// straight into frames. Only what lwIP's buffer and queue have room for is
// read, so that lwIP takes every byte read: what it cannot take stays in
// the pipe.
class PipeSource final : public FrameSource {
 public:
  explicit PipeSource(int fd) : fd_(fd) {}

 private:
  size_t queue_in_frames(tcp_pcb* pcb, pbuf** p, int n, size_t sent, size_t total, bool more,
                         Stop* stop) override {
    iovec iov[kBatch];
    uint32_t asked[kBatch];
    for (int i = 0; i < n; ++i) iov[i] = iovec{p[i]->payload, asked[i] = p[i]->len};
    // One read fills the frames in order: how much each got follows.
    ssize_t r = read_pipe(iov, n);
    int32_t got[kBatch];
    size_t left = r > 0 ? size_t(r) : 0;
    for (int i = 0; i < n; ++i) {
      got[i] = int32_t(std::min<size_t>(left, asked[i]));
      left -= size_t(got[i]);
    }
    if (r < 0) got[0] = int32_t(r);
    bool ended = false;
    size_t queued = queue_frames(pcb, p, got, asked, n, sent, total, more, &ended);
    if (ended) {
      stop->end = true;  // the pipe held less than the caller saw, or failed
      if (r < 0 && !sent) stop->error = int(r);
    }
    Runtime::get().counters().file_bytes_read += queued;
    return queued;
  }

  size_t queue_buffered(tcp_pcb* pcb, size_t want, uint16_t seg, size_t sent, size_t total,
                        bool more, Stop* stop) override {
    char buf[16384];
    size_t cap = copy_cap(pcb, want, seg, sizeof buf);
    if (!cap) return 0;
    iovec iov{buf, cap};
    return queue_copied(pcb, buf, read_pipe(&iov, 1), cap, sent, total, more, false, stop);
  }

  // Never waits (the CoreLock is held): RWF_NOWAIT (-EAGAIN should another
  // reader have emptied the pipe). Kernels before 6.4 refuse RWF_NOWAIT on
  // pipes: there, a plain read of no more than the pipe holds.
  ssize_t read_pipe(iovec* iov, int n) {
    ssize_t r;
    do r = preadv2(fd_, iov, n, -1, RWF_NOWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 0 || errno != EOPNOTSUPP) return r < 0 ? -errno : r;
    int avail = 0;
    if (ioctl(fd_, FIONREAD, &avail) != 0 || avail <= 0) return -EAGAIN;
    size_t room = size_t(avail);
    int k = 0;
    for (; k < n && room; ++k) {
      iov[k].iov_len = std::min(iov[k].iov_len, room);
      room -= iov[k].iov_len;
    }
    do r = ::readv(fd_, iov, k);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
  }

  int fd_;
};

}  // namespace

ssize_t op_sendfile(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) {
  // In the order Linux judges them (sendfile64 and do_sendfile).
  int64_t pos = offset ? *offset : 0;
  int fl = libc::fcntl(in_fd, F_GETFL);
  if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) == O_WRONLY) return -EBADF;
  struct stat st;
  if (fstat(in_fd, &st) != 0) return -errno;
  const bool positional = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode) ||
                          S_ISCHR(st.st_mode);
  if (offset && !positional) return -ESPIPE;
  if (!offset) {
    pos = lseek64(in_fd, 0, SEEK_CUR);
    if (pos < 0 && !positional) pos = 0;  // (a pipe: refused just below)
  }
  if (pos < 0) return -EINVAL;
  if (count > kMaxRwCount) count = kMaxRwCount;
  // do_splice_direct reads only regular files and block devices.
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return -EINVAL;
  // Nothing to read: 0, without a look at the socket (a reset one too).
  if (count == 0 || (S_ISREG(st.st_mode) && pos >= st.st_size)) return 0;
  FileSource src(in_fd, pos);
  ssize_t r = op_send_from(s, out_fd, src, count, 0);
  if (r == kNotOnStack) return r;
  if (r > 0) {
    if (offset) {
      *offset = src.pos();
    } else {
      lseek64(in_fd, src.pos(), SEEK_SET);
    }
  }
  return r;
}

// A splice between a socket of ours and `other`, which must then be a pipe
// (the socket is not one), judged in Linux's order (splice, __do_splice,
// do_splice): 1 to go on, with the pipe's file flags in *fl; 0 for a call
// of 0 bytes; or -errno.
static int judge_splice(int other, bool other_is_input, const loff_t* other_off,
                        const loff_t* sock_off, size_t len, unsigned flags, int* fl) {
  if (len == 0) return 0;
  constexpr unsigned kAllFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;
  if (flags & ~kAllFlags) return -EINVAL;
  *fl = libc::fcntl(other, F_GETFL);
  if (*fl < 0 || (*fl & O_PATH)) return -EBADF;
  struct stat st;
  if (fstat(other, &st) != 0) return -errno;
  const bool is_pipe = S_ISFIFO(st.st_mode);
  if (is_pipe && other_off) return -ESPIPE;
  if ((*fl & O_ACCMODE) == (other_is_input ? O_WRONLY : O_RDONLY)) return -EBADF;
  if (!is_pipe) return -EINVAL;
  if (sock_off) return -EINVAL;  // a socket takes no offset
  return 1;
}

ssize_t op_splice_to(Socket* s, int out_fd, int in_fd, loff_t* off_in, loff_t* off_out,
                     size_t len, unsigned flags) {
  int fl;
  if (int rc = judge_splice(in_fd, true, off_in, off_out, len, flags, &fl); rc <= 0) return rc;
  if (len > kMaxRwCount) len = kMaxRwCount;
  // splice_to_socket waits for the pipe to hold something (not with
  // SPLICE_F_NONBLOCK or a non-blocking pipe), and moves what it holds;
  // an empty pipe without writers is the end (0).
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || (fl & O_NONBLOCK);
  pollfd p{in_fd, POLLIN, 0};
  int n = poll(&p, 1, nonblock ? 0 : -1);
  if (n < 0) return -errno;
  if (n == 0) return -EAGAIN;
  int avail = 0;
  if (ioctl(in_fd, FIONREAD, &avail) != 0) return -errno;
  if (avail <= 0) return 0;  // hung up, nothing left
  PipeSource src(in_fd);
  return op_send_from(s, out_fd, src, std::min(len, size_t(avail)),
                      (flags & SPLICE_F_MORE) ? MSG_MORE : 0);
}

ssize_t op_splice_from(Socket* s, int in_fd, int out_fd, loff_t* off_in, loff_t* off_out,
                       size_t len, unsigned flags) {
  int fl;
  if (int rc = judge_splice(out_fd, false, off_out, off_in, len, flags, &fl); rc <= 0) return rc;
  // Room in the pipe (wait for some, unless SPLICE_F_NONBLOCK).
  size_t room = 0;
  for (;;) {
    int cap = libc::fcntl(out_fd, F_GETPIPE_SZ), used = 0;
    if (cap < 0 || ioctl(out_fd, FIONREAD, &used) != 0) return -errno;
    if (cap > used) {
      room = size_t(cap - used);
      break;
    }
    if (flags & SPLICE_F_NONBLOCK) return -EAGAIN;
    pollfd p{out_fd, POLLOUT, 0};
    if (poll(&p, 1, -1) < 0) return -errno;
  }
  char buf[65536];
  iovec iov{buf, std::min({len, room, sizeof buf})};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t r = op_recvmsg(s, in_fd, &msg, (flags & SPLICE_F_NONBLOCK) ? MSG_DONTWAIT : 0, false);
  if (r <= 0) return r;
  // The pipe had room for these: the write does not wait (another writer
  // could take the room meanwhile; then it waits, as a write would).
  size_t done = 0;
  while (done < size_t(r)) {
    ssize_t w = ::write(out_fd, buf + done, size_t(r) - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return done ? ssize_t(done) : -errno;
    }
    done += size_t(w);
  }
  return r;
}

}  // namespace xdpload::shim
