#include "shim/files/send_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "shim/files/file_reader.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"
#include "shim/socket/tcp_socket.h"
#include "stack/link_netif.h"
#include "stack/stack.h"

extern "C" {
#include "lwip/tcp.h"
}

namespace xdpload::shim {
namespace {

// Linux's MAX_RW_COUNT: no transfer moves more in one call.
constexpr size_t kMaxRwCount = 0x7ffff000;
// XDPLOAD_SENDFILE's words, in options.def's order.
enum { kSendfileFrames = 0, kSendfileCopy = 1 };

// The program's memory, read and written the way the kernel does it:
// EFAULT for an address that is not mapped, instead of a crash.
bool copy_in(const void* user, void* out, size_t n) {
  iovec local{out, n}, remote{const_cast<void*>(user), n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == ssize_t(n);
}
bool copy_out(void* user, const void* in, size_t n) {
  iovec local{const_cast<void*>(in), n}, remote{user, n};
  return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == ssize_t(n);
}

// Frames for up to `want` bytes of segments of at most `seg` bytes each, no
// more than the connection's queue takes: their pbufs into p[], each set
// to its length; returns how many.
int take_frames(tcp_pcb* pcb, size_t want, uint16_t seg, pbuf** p) {
  stack::LinkNetif& nif = Runtime::get().stack()->driver();
  int queue_room = (TCP_SND_QUEUELEN - 4 - int(tcp_sndqueuelen(pcb))) / 2;  // header + data each
  int k = int(std::min<size_t>((want + seg - 1) / seg, FileReader::kMaxBatch));
  k = std::min(k, queue_room);
  int got = 0;
  for (size_t off = 0; got < k; ++got) {
    uint16_t len = uint16_t(std::min<size_t>(seg, want - off));
    p[got] = nif.alloc_tcp_data_pbuf(len);
    if (!p[got]) break;
    off += len;
  }
  return got;
}

// Queues frames 0..n whose data is in, frame i holding got[i] bytes of the
// asked asked[i] (fewer: the source ends there). Frees the frames not
// queued. Returns the bytes queued; *ended when a frame came back short.
size_t queue_frames(tcp_pcb* pcb, pbuf** p, const int32_t* got, const uint32_t* asked, int n,
                    size_t sent, size_t total, bool more, bool* ended) {
  size_t queued = 0;
  int i = 0;
  for (; i < n && got[i] > 0; ++i) {
    pbuf_realloc(p[i], u16_t(got[i]));
    bool last = sent + queued + size_t(got[i]) >= total || uint32_t(got[i]) < asked[i];
    if (tcp_write_pbuf(pcb, p[i], more || !last ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK) break;
    queued += size_t(got[i]);
    if (uint32_t(got[i]) < asked[i]) {
      *ended = true;
      ++i;
      break;
    }
  }
  if (i < n && got[i] <= 0) *ended = true;
  for (; i < n; ++i) pbuf_free(p[i]);
  return queued;
}

// A sendfile()'s bytes: a regular file from `pos` on.
class FileSource final : public TcpSocket::SendSource {
 public:
  FileSource(int fd, int64_t pos) : fd_(fd), pos_(pos) {}
  int64_t pos() const { return pos_; }

  size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) override {
    Runtime& rt = Runtime::get();
    size_t want = std::min(total - sent, size_t(tcp_sndbuf(pcb)));
    uint16_t seg = tcp_write_pbuf_max(pcb);
    if (seg && rt.config().sendfile == kSendfileFrames && !rt.frames_short()) {
      pbuf* p[FileReader::kMaxBatch];
      int n = take_frames(pcb, want, seg, p);
      if (n) {
        FileReader::Read reads[FileReader::kMaxBatch];
        int32_t got[FileReader::kMaxBatch] = {};
        uint32_t asked[FileReader::kMaxBatch];
        int64_t at = pos_;
        for (int i = 0; i < n; ++i) {
          reads[i] = FileReader::Read{p[i]->payload, p[i]->len, at, 0};
          asked[i] = p[i]->len;
          at += p[i]->len;
        }
        size_t mem_len;
        uint8_t* mem = rt.stack()->driver().link()->frame_memory(&mem_len);
        FileReader::read(fd_, reads, n, mem, mem_len);
        for (int i = 0; i < n; ++i) got[i] = reads[i].result;
        bool ended = false;
        size_t queued = queue_frames(pcb, p, got, asked, n, sent, total, more, &ended);
        pos_ += int64_t(queued);
        if (ended) end_at_first_failure(got, n, queued, stop);
        return queued;
      }
    }
    return queue_copied(pcb, want, sent, total, more, stop);
  }

 private:
  // The source ended: a read error (reported when nothing was queued) or
  // the end of the file.
  static void end_at_first_failure(const int32_t* got, int n, size_t queued, Stop* stop) {
    stop->end = true;
    for (int i = 0; i < n; ++i)
      if (got[i] < 0) {
        if (!queued) stop->error = got[i];
        return;
      }
  }

  // No frame to read into: through a buffer, copied into lwIP's segments.
  size_t queue_copied(tcp_pcb* pcb, size_t want, size_t sent, size_t total, bool more, Stop* stop) {
    char buf[16384];
    FileReader::Read r{buf, uint32_t(std::min(want, sizeof buf)), pos_, 0};
    FileReader::read(fd_, &r, 1, nullptr, 0);
    if (r.result <= 0) {
      stop->end = true;
      stop->error = r.result;
      return 0;
    }
    size_t n = size_t(r.result);
    u8_t fl = TCP_WRITE_FLAG_COPY;
    if (more || sent + n < total) fl |= TCP_WRITE_FLAG_MORE;
    if (tcp_write(pcb, buf, u16_t(n), fl) != ERR_OK) return 0;  // read again later
    pos_ += int64_t(n);
    Runtime::get().counters().file_bytes_copied += n;
    if (n < r.len) stop->end = true;
    return n;
  }

  int fd_;
  int64_t pos_;
};

// A splice()'s bytes: what a pipe holds (the caller waited for some),
// `total` of them at most, read straight into frames.
class PipeSource final : public TcpSocket::SendSource {
 public:
  explicit PipeSource(int fd) : fd_(fd) {}

  size_t queue(tcp_pcb* pcb, size_t sent, size_t total, bool more, Stop* stop) override {
    size_t want = std::min(total - sent, size_t(tcp_sndbuf(pcb)));
    uint16_t seg = tcp_write_pbuf_max(pcb);
    Runtime& rt = Runtime::get();
    if (!seg || rt.config().sendfile != kSendfileFrames || rt.frames_short())
      return queue_copied(pcb, want, sent, total, more, stop);
    pbuf* p[FileReader::kMaxBatch];
    int n = take_frames(pcb, want, seg, p);
    if (!n) return queue_copied(pcb, want, sent, total, more, stop);
    iovec iov[FileReader::kMaxBatch];
    uint32_t asked[FileReader::kMaxBatch];
    for (int i = 0; i < n; ++i) iov[i] = iovec{p[i]->payload, asked[i] = p[i]->len};
    // One read fills the frames in order: how much each got follows.
    ssize_t r = read_pipe(iov, n);
    int32_t got[FileReader::kMaxBatch];
    size_t left = r > 0 ? size_t(r) : 0;
    for (int i = 0; i < n; ++i) {
      got[i] = int32_t(std::min<size_t>(left, asked[i]));
      left -= size_t(got[i]);
    }
    if (r < 0) got[0] = int32_t(r);
    bool ended = false;
    size_t queued = queue_frames(pcb, p, got, asked, n, sent, total, more, &ended);
    if (r < 0 || (ended && !queued)) {
      stop->end = true;
      if (r < 0 && !sent) stop->error = int(r);
    } else if (ended) {
      stop->end = true;  // the pipe held less than the caller saw
    }
    Runtime::get().counters().file_bytes_read += queued;
    return queued;
  }

 private:
  // Never waits (the CoreLock is held): RWF_NOWAIT, should another reader
  // have emptied the pipe since the caller looked (-EAGAIN then).
  ssize_t read_pipe(iovec* iov, int n) {
    ssize_t r;
    do r = preadv2(fd_, iov, n, -1, RWF_NOWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
  }
  size_t queue_copied(tcp_pcb* pcb, size_t want, size_t sent, size_t total, bool more, Stop* stop) {
    char buf[16384];
    iovec iov{buf, std::min(want, sizeof buf)};
    ssize_t r = read_pipe(&iov, 1);
    if (r <= 0) {
      stop->end = true;
      if (!sent) stop->error = int(r);
      return 0;
    }
    u8_t fl = TCP_WRITE_FLAG_COPY;
    if (more || sent + size_t(r) < total) fl |= TCP_WRITE_FLAG_MORE;
    // The bytes are out of the pipe now: lwIP takes them (its buffer had
    // the room) or, should it not, they are lost with the call's error.
    if (tcp_write(pcb, buf, u16_t(r), fl) != ERR_OK) {
      stop->end = true;
      stop->error = -ENOMEM;
      return 0;
    }
    Runtime::get().counters().file_bytes_copied += size_t(r);
    if (size_t(r) < iov.iov_len) stop->end = true;
    return size_t(r);
  }
  int fd_;
};

}  // namespace

ssize_t op_sendfile(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) {
  // In the order Linux judges them (sendfile64 and do_sendfile).
  int64_t pos = 0;
  if (offset && !copy_in(offset, &pos, sizeof pos)) return -EFAULT;
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
  FileSource src(in_fd, pos);
  ssize_t r = op_send_from(s, out_fd, src, count, 0);
  if (r == kNotOnStack) return r;
  if (r > 0) {
    if (offset) {
      int64_t now = src.pos();
      if (!copy_out(offset, &now, sizeof now)) return -EFAULT;
    } else {
      lseek64(in_fd, src.pos(), SEEK_SET);
    }
  }
  return r;
}

ssize_t op_splice_to(Socket* s, int out_fd, int in_fd, loff_t* off_in, loff_t* off_out,
                     size_t len, unsigned flags) {
  // One side of a splice is a pipe; the socket is not one, so the input
  // must be (EINVAL), and neither side takes an offset (ESPIPE).
  struct stat st;
  if (libc::fcntl(in_fd, F_GETFL) < 0) return -EBADF;
  if (fstat(in_fd, &st) != 0) return -errno;
  if (!S_ISFIFO(st.st_mode)) return -EINVAL;
  if (off_in || off_out) return -ESPIPE;
  if (len == 0) return 0;
  if (len > kMaxRwCount) len = kMaxRwCount;
  // splice_to_socket waits for the pipe to hold something (not with
  // SPLICE_F_NONBLOCK or a non-blocking pipe), and moves what it holds;
  // an empty pipe without writers is the end (0).
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || (libc::fcntl(in_fd, F_GETFL) & O_NONBLOCK);
  pollfd p{in_fd, POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, nonblock ? 0 : -1);
    if (n < 0) return -errno;
    if (n == 0) return -EAGAIN;
    break;
  }
  int avail = 0;
  if (ioctl(in_fd, FIONREAD, &avail) != 0) return -errno;
  if (avail <= 0) return 0;  // hung up, nothing left
  PipeSource src(in_fd);
  return op_send_from(s, out_fd, src, std::min(len, size_t(avail)),
                      (flags & SPLICE_F_MORE) ? MSG_MORE : 0);
}

}  // namespace xdpload::shim
