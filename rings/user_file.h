// Files a program names to xdpload (XDPLOAD_PCAP, XDPLOAD_RULES), opened
// the way the kernel's fs.protected_symlinks and fs.protected_regular would
// (many hosts turn those off): in a sticky directory every user can write
// to, such as /tmp, a symbolic link is followed only when it belongs to the
// caller or to the directory's owner, and a file to be created is never an
// existing one of another user. Otherwise a local user could plant
// /tmp/capture.pcap -> /etc/shadow and have a root program overwrite it.
//
// (Generic file code kept in rings/ beside error_text.h and private_fd.h,
// the helpers every layer uses.)
#pragma once

#include "rings/error_text.h"

namespace xdpload::rings {

// Opens `path` for reading. Returns a descriptor (O_CLOEXEC) or -errno
// with the reason, which names `what` (the variable).
int open_user_file_read(const char* what, const char* path, ErrorText* why);
// Creates or truncates `path` for writing (mode 0644 when new).
int open_user_file_write(const char* what, const char* path, ErrorText* why);

}  // namespace xdpload::rings
