// exec and its variants: the accelerated sockets the new program inherits
// become the kernel's before it starts (hand_inherited_to_kernel), then the
// real call. A failed exec leaves them the kernel's: they work, slower.
#include <unistd.h>

#include <cstdarg>
#include <vector>

#include "shim/intercept/export.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/socket_ops.h"

using namespace xdpload;
using namespace xdpload::shim;

namespace {

// Around the real call. The exec ends the process's other threads wherever
// they are: the progress thread is kept out of the stack first, and goes
// on if the exec fails.
class ExecScope {
 public:
  ExecScope() : held_(Runtime::get().enabled() && Runtime::get().keep_progress_out(true)) {
    hand_inherited_to_kernel();
    // A fatal signal came meanwhile: the process dies by it (the progress
    // thread finishes it) instead of running the new image.
    if (held_ && fatal_signal_pending() && !stack::CoreLock::held_here()) {
      Runtime::get().let_progress_in();
      for (;;) pause();
    }
  }
  ~ExecScope() {
    // (Only a failed exec comes back.)
    Runtime& r = Runtime::get();
    if (r.enabled() && r.stack() && !stack::CoreLock::held_here() && !r.vfork_child()) {
      const int err = errno;
      stack::CoreGuard g;
      r.exec_failed();
      errno = err;
    }
    if (held_) r.let_progress_in();
  }

 private:
  bool held_;
};

}  // namespace

int xdpload_execve(const char* path, char* const argv[], char* const envp[]) {
  ExecScope scope;
  return libc::execve(path, argv, envp);
}

int xdpload_execv(const char* path, char* const argv[]) {
  ExecScope scope;
  return libc::execv(path, argv);
}

int xdpload_execvp(const char* file, char* const argv[]) {
  ExecScope scope;
  return libc::execvp(file, argv);
}

int xdpload_execvpe(const char* file, char* const argv[], char* const envp[]) {
  ExecScope scope;
  return libc::execvpe(file, argv, envp);
}

int xdpload_fexecve(int fd, char* const argv[], char* const envp[]) {
  ExecScope scope;
  return libc::fexecve(fd, argv, envp);
}

int xdpload_execveat(int dirfd, const char* path, char* const argv[], char* const envp[], int flags) {
  ExecScope scope;
  return libc::execveat(dirfd, path, argv, envp, flags);
}

namespace {

// The execl family's arguments, up to the terminating null pointer (and,
// for execle, the environment after it).
std::vector<char*> gather(const char* arg, va_list ap, char*** envp) {
  std::vector<char*> argv{const_cast<char*>(arg)};
  while (argv.back()) argv.push_back(va_arg(ap, char*));
  if (envp) *envp = va_arg(ap, char**);
  return argv;
}

}  // namespace

int xdpload_execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> argv = gather(arg, ap, nullptr);
  va_end(ap);
  ExecScope scope;
  return libc::execv(path, argv.data());
}

int xdpload_execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> argv = gather(arg, ap, nullptr);
  va_end(ap);
  ExecScope scope;
  return libc::execvp(file, argv.data());
}

int xdpload_execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  char** envp = nullptr;
  std::vector<char*> argv = gather(arg, ap, &envp);
  va_end(ap);
  ExecScope scope;
  return libc::execve(path, argv.data(), envp);
}
