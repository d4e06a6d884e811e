// FileReader: reads ranges of a file straight into memory the link sends
// from (UMEM frames), a batch at a time, for sendfile() and splice() into an
// accelerated TCP socket: the file's bytes are copied once, page cache to
// frame, and go to the wire from there.
//
// io_uring does the reads: one system call for a batch of up to kMaxBatch
// reads, with the UMEM registered as a fixed buffer when the kernel lets us
// pin it (READ_FIXED: no page lookup per read), plain READ otherwise (a
// memory lock limit too low to pin it). A kernel without io_uring, or with
// it disabled (kernel.io_uring_disabled, a seccomp filter), gets pread(),
// said once at XDPLOAD_LOG=1.
//
// One ring per process, made at the first read and made again in a forked
// child (a ring's queues must not be shared between processes); its
// descriptor is a private one (rings/private_fd.h). Called with the
// CoreLock held, which also keeps this process's threads off the ring.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xdpload::shim {

class FileReader {
 public:
  static constexpr int kMaxBatch = 64;

  struct Read {
    void* dst;
    uint32_t len;
    int64_t pos;     // file offset
    int32_t result;  // set by read(): bytes read (0 at end of file) or -errno
  };
  enum class Method { kNone, kUringFixed, kUring, kPread };

  // Reads each of reads[0..n) (n <= kMaxBatch) from `fd`; returns when all
  // are done. [fixed, fixed + fixed_len) is the memory the reads go into
  // (the UMEM), registered with the ring the first time it is seen, and
  // their bytes are counted as read into frames; nullptr: reads into a
  // buffer of the caller's.
  // nowait: a read the page cache cannot answer at once fails with
  // -EAGAIN instead of waiting for the disk (RWF_NOWAIT), so that the
  // caller can wait without the CoreLock.
  static void read(int fd, Read* reads, int n, void* fixed, size_t fixed_len, bool nowait = false);
  // How the last batch was read.
  static Method method();
  static const char* method_name(Method m);
};

}  // namespace xdpload::shim
