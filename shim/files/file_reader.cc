#include "shim/files/file_reader.h"

#include <liburing.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rings/private_fd.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"

namespace xdpload::shim {
namespace {

// A fixed buffer is at most 1 GiB: a larger UMEM is registered as several.
constexpr size_t kFixedPiece = size_t(1) << 30;
constexpr int kMaxPieces = 8;

// This process's ring. Process memory, not the family arena: a forked child
// sees its parent's copy and makes its own.
struct Ring {
  io_uring ring{};
  pid_t pid = 0;        // the process that made it; 0: none
  bool broken = false;  // io_uring refused (setup or submission): pread from now on
  char* fixed = nullptr;  // the memory registered as fixed buffers, if any
  size_t fixed_len = 0;
  bool fixed_ok = false;
  FileReader::Method last = FileReader::Method::kNone;
};
Ring g;

// Drops a ring a parent made (the child's mappings and descriptor of it; the
// parent's ring is untouched).
void forget_parent_ring() {
  if (g.pid && !g.broken) {
    rings::close_private_fd(g.ring.ring_fd);
    g.ring.ring_fd = g.ring.enter_ring_fd = -1;
    io_uring_queue_exit(&g.ring);  // unmaps (its close of -1 fails harmlessly)
  }
  g = Ring{};
}

bool ring_ready() {
  pid_t me = getpid();
  if (g.pid == me) return !g.broken;
  forget_parent_ring();
  g.pid = me;
  if (int rc = io_uring_queue_init(FileReader::kMaxBatch, &g.ring, 0); rc < 0) {
    g.broken = true;
    XLOG(kLogInfo, "sendfile: io_uring is not available (%s): files are read with pread",
         strerror(-rc));
    return false;
  }
  // Off the program's descriptor numbers, like every descriptor of ours.
  int fd = rings::to_private_fd(g.ring.ring_fd);
  g.ring.ring_fd = g.ring.enter_ring_fd = fd;
  return true;
}

// Registers [base, base + len) as the ring's fixed buffers, once per region
// (a broker that came back brings a new UMEM).
void register_fixed(char* base, size_t len) {
  if (base == g.fixed && len == g.fixed_len) return;
  if (g.fixed_ok) io_uring_unregister_buffers(&g.ring);
  g.fixed = base;
  g.fixed_len = len;
  g.fixed_ok = false;
  if (!base || !len || len > kFixedPiece * kMaxPieces) return;
  iovec iov[kMaxPieces];
  int n = 0;
  for (size_t off = 0; off < len; off += kFixedPiece, ++n)
    iov[n] = iovec{base + off, std::min(kFixedPiece, len - off)};
  if (int rc = io_uring_register_buffers(&g.ring, iov, unsigned(n)); rc < 0) {
    XLOG(kLogInfo, "sendfile: the packet memory could not be registered with io_uring (%s): "
         "plain io_uring reads", strerror(-rc));
    return;
  }
  g.fixed_ok = true;
}

void read_with_pread(int fd, FileReader::Read* reads, int n, bool nowait) {
  for (int i = 0; i < n; ++i) {
    FileReader::Read& r = reads[i];
    iovec iov{r.dst, r.len};
    ssize_t got;
    do got = preadv2(fd, &iov, 1, r.pos, nowait ? RWF_NOWAIT : 0);
    while (got < 0 && errno == EINTR);
    // (A file system without RWF_NOWAIT: a read that may wait.)
    if (got < 0 && errno == EOPNOTSUPP && nowait) {
      do got = pread64(fd, r.dst, r.len, r.pos);
      while (got < 0 && errno == EINTR);
    }
    r.result = got < 0 ? -errno : int32_t(got);
  }
}

// One batch through the ring. False, with nothing read, when the ring
// refuses it (the caller reads with pread).
bool read_with_uring(int fd, FileReader::Read* reads, int n, bool nowait) {
  for (int i = 0; i < n; ++i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&g.ring);
    if (!sqe) return false;  // (never: the ring is empty between batches)
    FileReader::Read& r = reads[i];
    char* dst = static_cast<char*>(r.dst);
    if (g.fixed_ok && dst >= g.fixed && dst + r.len <= g.fixed + g.fixed_len)
      io_uring_prep_read_fixed(sqe, fd, dst, r.len, uint64_t(r.pos), int((dst - g.fixed) / kFixedPiece));
    else
      io_uring_prep_read(sqe, fd, dst, r.len, uint64_t(r.pos));
    if (nowait) sqe->rw_flags = RWF_NOWAIT;
    io_uring_sqe_set_data64(sqe, uint64_t(i));
  }
  int submitted = 0;
  while (submitted < n) {
    int rc = io_uring_submit(&g.ring);
    if (rc > 0) {
      submitted += rc;
    } else if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      // The reads not submitted stay in the queue; the ring is never
      // entered again, so they never run. Those submitted are waited for.
      g.broken = true;
      XLOG(kLogInfo, "sendfile: io_uring refused reads (%s): files are read with pread",
           strerror(-rc));
      break;
    }
  }
  for (int i = 0; i < n; ++i) reads[i].result = INT32_MIN;
  for (int done = 0; done < submitted;) {
    io_uring_cqe* cqe;
    int rc = io_uring_wait_cqe(&g.ring, &cqe);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc < 0) break;  // (cannot happen with reads in flight)
    uint64_t i = io_uring_cqe_get_data64(cqe);
    if (i < uint64_t(n)) reads[i].result = cqe->res;
    io_uring_cqe_seen(&g.ring, cqe);
    ++done;
  }
  // Anything the ring did not read is read here.
  for (int i = 0; i < n; ++i)
    if (reads[i].result == INT32_MIN) read_with_pread(fd, &reads[i], 1, nowait);
  return true;
}

}  // namespace

void FileReader::read(int fd, Read* reads, int n, void* fixed, size_t fixed_len, bool nowait) {
  ShimCounters& c = Runtime::get().counters();
  if (ring_ready()) {
    // (A read into other memory leaves the registration as it is.)
    if (fixed) register_fixed(static_cast<char*>(fixed), fixed_len);
    if (read_with_uring(fd, reads, n, nowait)) {
      g.last = g.fixed_ok ? Method::kUringFixed : Method::kUring;
      c.file_reads_uring += uint64_t(n);
      for (int i = 0; i < n; ++i)
        if (reads[i].result > 0 && fixed) c.file_bytes_read += uint64_t(reads[i].result);
      return;
    }
  }
  read_with_pread(fd, reads, n, nowait);
  g.last = Method::kPread;
  c.file_reads_pread += uint64_t(n);
  for (int i = 0; i < n; ++i)
    if (reads[i].result > 0 && fixed) c.file_bytes_read += uint64_t(reads[i].result);
}

FileReader::Method FileReader::method() { return g.last; }

const char* FileReader::method_name(Method m) {
  switch (m) {
    case Method::kUringFixed: return "io_uring (fixed buffers)";
    case Method::kUring: return "io_uring";
    case Method::kPread: return "pread";
    case Method::kNone: break;
  }
  return "none";
}

}  // namespace xdpload::shim
