#include "stack/pcap_writer.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "rings/private_fd.h"
#include "rings/user_file.h"

namespace xdpload::stack {

namespace {

constexpr size_t kBufferBytes = 1 << 20;
constexpr int64_t kMaxAgeNs = 200'000'000;

// The pcap file header, nanosecond variant (magic a1b23c4d).
struct FileHeader {
  uint32_t magic = 0xa1b23c4d;
  uint16_t major = 2, minor = 4;
  int32_t thiszone = 0;
  uint32_t sigfigs = 0;
  uint32_t snaplen;
  uint32_t linktype = 1;  // LINKTYPE_ETHERNET
};
struct RecordHeader {
  uint32_t sec, nsec, incl_len, orig_len;
};

int64_t now_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

PcapWriter::~PcapWriter() {
  flush();
  rings::close_private_fd(fd_);
}

int PcapWriter::open(const char* path, uint32_t snaplen, ErrorText* why) {
  int fd = rings::open_user_file_write("XDPLOAD_PCAP", path, why);
  if (fd < 0) return fd;
  fd_ = rings::to_private_fd(fd);
  snaplen_ = snaplen;
  buf_.reserve(kBufferBytes);
  FileHeader h;
  h.snaplen = snaplen;
  append(&h, sizeof h);
  flush();
  if (failed_) return why->set(EIO, "XDPLOAD_PCAP=%s: cannot write", path);
  return 0;
}

void PcapWriter::append(const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  buf_.insert(buf_.end(), b, b + n);
}

void PcapWriter::record(const Piece* pieces, uint32_t nparts) {
  if (fd_ < 0 || failed_) return;
  uint32_t len = 0;
  for (uint32_t i = 0; i < nparts; ++i) len += pieces[i].len;
  uint32_t incl = len < snaplen_ ? len : snaplen_;
  if (buf_.size() + sizeof(RecordHeader) + incl > kBufferBytes) flush();
  int64_t t = now_ns(CLOCK_REALTIME);
  if (buf_.empty()) oldest_ns_ = t;
  RecordHeader r{uint32_t(t / 1000000000), uint32_t(t % 1000000000), incl, len};
  append(&r, sizeof r);
  uint32_t left = incl;
  for (uint32_t i = 0; i < nparts && left; ++i) {
    uint32_t n = pieces[i].len < left ? pieces[i].len : left;
    append(pieces[i].data, n);
    left -= n;
  }
  ++records_;
  if (t - oldest_ns_ > kMaxAgeNs) flush();
}

void PcapWriter::flush() {
  size_t done = 0;
  while (fd_ >= 0 && !failed_ && done < buf_.size()) {
    ssize_t n = write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed_ = true;
      break;
    }
    done += size_t(n);
  }
  buf_.clear();
}

}  // namespace xdpload::stack
