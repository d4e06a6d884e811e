// exec and its variants: the accelerated sockets the new program inherits
// become the kernel's before it starts (hand_inherited_to_kernel), then the
// real call. A failed exec leaves them the kernel's: they work, slower.
// Connections that waited on an inherited listener go to the new program
// through its environment (shim/socket/passed_connections.h): the variants
// without one exec with this process's environment plus that entry.
#include <unistd.h>

#include <cstdarg>
#include <string>
#include <vector>

#include "shim/intercept/export.h"
#include "shim/runtime/fatal_signals.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/passed_connections.h"
#include "shim/socket/socket_ops.h"

using namespace xdpload;
using namespace xdpload::shim;

namespace {

// Around the real call. The exec ends the process's other threads wherever
// they are: the progress thread is kept out of the stack first, and goes
// on if the exec fails.
class ExecScope {
 public:
  // `env`: the new program's environment (null: an empty one, as Linux
  // takes it).
  explicit ExecScope(char* const* env)
      : held_(Runtime::get().enabled() && Runtime::get().keep_progress_out(true)) {
    passing_begins(env, true);
    hand_inherited_to_kernel();
    passed_ = passed_connections_value();
    if (!passed_.empty()) env_ = env_with_passed(env, passed_, &entry_);
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
    const int err = errno;
    passing_failed(passed_);
    if (r.enabled() && r.stack() && !stack::CoreLock::held_here() && !r.vfork_child()) {
      stack::CoreGuard g;
      r.exec_failed();
    }
    errno = err;
    if (held_) r.let_progress_in();
  }
  // The environment to exec with: `env` plus the passed connections.
  char* const* env(char* const* env) const { return env_.empty() ? env : env_.data(); }
  // Whether the environment had to change (the variants without one).
  bool env_changed() const { return !env_.empty(); }

 private:
  bool held_;
  std::string passed_, entry_;
  std::vector<char*> env_;
};

}  // namespace

int xdpload_execve(const char* path, char* const argv[], char* const envp[]) {
  ExecScope scope(envp);
  return libc::execve(path, argv, scope.env(envp));
}

int xdpload_execv(const char* path, char* const argv[]) {
  ExecScope scope(environ);
  if (scope.env_changed()) return libc::execve(path, argv, scope.env(environ));
  return libc::execv(path, argv);
}

int xdpload_execvp(const char* file, char* const argv[]) {
  ExecScope scope(environ);
  if (scope.env_changed()) return libc::execvpe(file, argv, scope.env(environ));
  return libc::execvp(file, argv);
}

int xdpload_execvpe(const char* file, char* const argv[], char* const envp[]) {
  ExecScope scope(envp);
  return libc::execvpe(file, argv, scope.env(envp));
}

int xdpload_fexecve(int fd, char* const argv[], char* const envp[]) {
  ExecScope scope(envp);
  return libc::fexecve(fd, argv, scope.env(envp));
}

int xdpload_execveat(int dirfd, const char* path, char* const argv[], char* const envp[], int flags) {
  ExecScope scope(envp);
  return libc::execveat(dirfd, path, argv, scope.env(envp), flags);
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
  ExecScope scope(environ);
  if (scope.env_changed()) return libc::execve(path, argv.data(), scope.env(environ));
  return libc::execv(path, argv.data());
}

int xdpload_execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  std::vector<char*> argv = gather(arg, ap, nullptr);
  va_end(ap);
  ExecScope scope(environ);
  if (scope.env_changed()) return libc::execvpe(file, argv.data(), scope.env(environ));
  return libc::execvp(file, argv.data());
}

int xdpload_execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  char** envp = nullptr;
  std::vector<char*> argv = gather(arg, ap, &envp);
  va_end(ap);
  ExecScope scope(envp);
  return libc::execve(path, argv.data(), scope.env(envp));
}
