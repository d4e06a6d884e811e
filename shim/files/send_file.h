// sendfile() and splice() whose destination is an accelerated TCP socket.
//
// sendfile(): the file is read straight into transmit frames (FileReader:
// io_uring, a batch of segments per system call) only as lwIP's send
// buffer takes them, and each frame becomes one segment that goes to the
// wire from where it lies (LinkNetif::alloc_tcp_data_pbuf): one copy, page
// cache to frame, where a send() of the same bytes makes two. When frames
// run short (or XDPLOAD_SENDFILE=copy), the bytes go through a buffer
// instead (counted as copied).
//
// The reads under the CoreLock ask the page cache alone (RWF_NOWAIT);
// what must come from the disk is read with the lock let go, so that a
// cold file does not hold up the stack of the whole process family.
//
// splice() from a pipe: the pipe is read with readv() straight into frames
// the same way, only what lwIP takes, so that what is not sent stays in
// the pipe, as with Linux. splice() out of a TCP socket on the stack into a
// pipe moves what the socket has through a buffer.
//
// Arguments are judged in Linux's order, with its errors; results and the
// file position are what Linux gives (tests/progs/sendfile_parity.c).
#pragma once

#include <sys/types.h>

namespace xdpload::shim {

class Socket;

// out_fd is `s`, a TCP socket on the stack. Returns bytes sent or -errno;
// kNotOnStack (socket_ops.h) when the kernel should do it after all.
// `offset` is the caller's copy of the program's (sendfile64 reads it
// first and writes it back whatever happened): moved past what was sent.
ssize_t op_sendfile(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count);
ssize_t op_splice_to(Socket* s, int out_fd, int in_fd, loff_t* off_in, loff_t* off_out,
                     size_t len, unsigned flags);
// splice() out of `s` (in_fd, accelerated) into a pipe: what the socket
// has, no more than the pipe has room for, through a buffer (a receive
// into it, then a write that the room makes sure does not wait).
ssize_t op_splice_from(Socket* s, int in_fd, int out_fd, loff_t* off_in, loff_t* off_out,
                       size_t len, unsigned flags);

}  // namespace xdpload::shim
