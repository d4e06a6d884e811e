// posix_spawn and posix_spawnp, system and popen. glibc runs the child's
// file actions and its exec inside libc (a clone sharing our memory, then
// libc's own execve), where neither the dup2 nor the exec intercepts reach:
// left alone, a socket the new program inherits would stay on the stack,
// out of its reach. So the parent decides before the call: the file actions
// are noted here as the program adds them, and followed over this process's
// descriptors by hand_spawned_to_kernel, which hands the sockets the new
// program will hold to the kernel first, as exec does
// (shim/intercept/intercept_exec.cc). A failed spawn leaves them the
// kernel's: they work, slower. system() and popen() spawn through glibc's
// own posix_spawn, with the file actions glibc gives them (below).
#include <pthread.h>
#include <spawn.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "shim/intercept/export.h"
#include "shim/runtime/log.h"
#include "shim/socket/passed_connections.h"
#include "shim/socket/socket_ops.h"

using namespace xdpload;
using namespace xdpload::shim;

namespace {

// The actions of each live posix_spawn_file_actions_t, by address. (Never
// freed: a program may spawn from its exit handlers.) A program that copies
// the object by value is not followed: its dup2 targets are not seen.
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
// (A fork by another thread while the lock is held: the child's copy would
// stay locked for ever.)
[[maybe_unused]] const int g_atfork =
    pthread_atfork(nullptr, nullptr, [] { g_mu = PTHREAD_MUTEX_INITIALIZER; });

struct Locked {
  Locked() { pthread_mutex_lock(&g_mu); }
  ~Locked() { pthread_mutex_unlock(&g_mu); }
};
std::unordered_map<const void*, std::vector<SpawnAction>>& noted() {
  static auto* m = new std::unordered_map<const void*, std::vector<SpawnAction>>;
  return *m;
}

int note(const posix_spawn_file_actions_t* a, int rc, SpawnAction act) {
  if (rc != 0) return rc;
  Locked l;
  noted()[a].push_back(act);
  return rc;
}

void forget(const posix_spawn_file_actions_t* a) {
  Locked l;
  noted().erase(a);
}

std::vector<SpawnAction> actions_of(const posix_spawn_file_actions_t* a) {
  std::vector<SpawnAction> acts;
  if (a) {
    Locked l;
    auto it = noted().find(a);
    if (it != noted().end()) acts = it->second;
  }
  return acts;
}

// Does an action of the child close or replace descriptor `fd`?
bool covers(const std::vector<SpawnAction>& acts, int fd) {
  for (const SpawnAction& a : acts)
    if ((a.kind == SpawnAction::kClose && a.fd == fd) || (a.kind == SpawnAction::kOpen && a.fd == fd) ||
        (a.kind == SpawnAction::kDup2 && a.newfd == fd) ||
        (a.kind == SpawnAction::kCloseFrom && a.fd <= fd))
      return true;
  return false;
}

// The spawn itself, `envp` with the connections passed to the new program
// (shim/socket/passed_connections.h). This process goes on: it closes its
// copies of their queues once the spawn is made (the child has them) or
// has failed (their connections reset). A queue the file actions would
// close or replace in the child is not passed (its connections reset). (A
// fork by another thread while the queues are inheritable, between the
// hand-over and the spawn, gives that child copies too.)
template <typename Spawn>
int spawn_passing(const posix_spawn_file_actions_t* a, char* const envp[], Spawn spawn) {
  const std::vector<SpawnAction> acts = actions_of(a);
  passing_begins(envp, false);
  hand_spawned_to_kernel(acts.data(), acts.size());
  const std::string passed = passed_connections_value();
  if (passed.empty()) return spawn(envp);
  bool covered = false;
  for (int q : passed_queues(passed)) covered = covered || covers(acts, q);
  if (covered) {
    close_passed_queues(passed);
    log_at(kLogError, "posix_spawn: the file actions close the descriptors that carry the "
           "connections waiting on an inherited listener: they are reset");
    return spawn(envp);
  }
  std::string entry;
  const std::vector<char*> env = env_with_passed(envp, passed, &entry);
  const int rc = spawn(env.data());
  close_passed_queues(passed);
  return rc;
}

}  // namespace

int xdpload_posix_spawn_file_actions_init(posix_spawn_file_actions_t* a) {
  int rc = libc::posix_spawn_file_actions_init(a);
  if (rc == 0) forget(a);  // (an address used before, destroyed without us)
  return rc;
}

int xdpload_posix_spawn_file_actions_destroy(posix_spawn_file_actions_t* a) {
  forget(a);
  return libc::posix_spawn_file_actions_destroy(a);
}

int xdpload_posix_spawn_file_actions_addclose(posix_spawn_file_actions_t* a, int fd) {
  return note(a, libc::posix_spawn_file_actions_addclose(a, fd), {SpawnAction::kClose, fd, -1});
}

int xdpload_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t* a, int fd, int newfd) {
  return note(a, libc::posix_spawn_file_actions_adddup2(a, fd, newfd),
              {SpawnAction::kDup2, fd, newfd});
}

int xdpload_posix_spawn_file_actions_addopen(posix_spawn_file_actions_t* a, int fd,
                                             const char* path, int oflag, mode_t mode) {
  return note(a, libc::posix_spawn_file_actions_addopen(a, fd, path, oflag, mode),
              {SpawnAction::kOpen, fd, -1});
}

int xdpload_posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t* a, int from) {
  return note(a, libc::posix_spawn_file_actions_addclosefrom_np(a, from),
              {SpawnAction::kCloseFrom, from, -1});
}

int xdpload_posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* a,
                        const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  return spawn_passing(a, envp, [&](char* const* env) {
    return libc::posix_spawn(pid, path, a, attr, argv, env);
  });
}

int xdpload_posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* a,
                         const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  return spawn_passing(a, envp, [&](char* const* env) {
    return libc::posix_spawnp(pid, file, a, attr, argv, env);
  });
}

// system() and popen() spawn a shell, nearly always for a command that
// leaves the program's sockets alone. What they inherit:
// - a connection goes to the kernel with its state (as at exec), for the
//   commands that do use one (`cmd >&5`, or a program that dup2s a
//   connection onto 1 and then calls system(), as old CGI-style servers
//   do): before, the shell wrote into an unconnected kernel socket and the
//   bytes were lost;
// - a listener or UDP socket stays on the stack, with its queued
//   connections and datagrams for this program, as Linux leaves them to
//   whoever reads first. The shell's copy is the socket's kernel twin
//   (local peers only). Moving the socket to the kernel instead, as an
//   exec must, would take the port off the stack for good and reset the
//   connections waiting on it at every popen("date").
// system(): glibc spawns `sh -c COMMAND` with no file actions. (system(NULL)
// runs `exit 0` to see that a shell exists: nothing to hand over.)
int xdpload_system(const char* command) {
  if (command) hand_spawned_to_kernel(nullptr, 0, "system", /*connections_only=*/true);
  return libc::system(command);
}

// popen(): the same, with glibc's one file action: the pipe dup2'd onto the
// child's stdout ("r") or stdin ("w"). (It also closes the streams of
// earlier popen() calls in the child: pipes, never sockets of ours.) The
// mode is read as glibc reads it: 'r', 'w' and 'e' in any order, exactly
// one of 'r' and 'w'; glibc refuses any other (EINVAL) and spawns nothing,
// so nothing is handed over.
FILE* xdpload_popen(const char* command, const char* mode) {
  bool read = false, write = false, valid = command && mode;
  for (const char* m = mode; valid && *m; ++m) {
    if (*m == 'r') read = true;
    else if (*m == 'w') write = true;
    else if (*m != 'e') valid = false;
  }
  if (valid && read != write) {
    const SpawnAction pipe_onto_std{SpawnAction::kDup2, -1, read ? 1 : 0};
    hand_spawned_to_kernel(&pipe_onto_std, 1, "popen", /*connections_only=*/true);
  }
  return libc::popen(command, mode);
}
