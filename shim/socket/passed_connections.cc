#include "shim/socket/passed_connections.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rings/broker_client.h"
#include "rings/private_fd.h"
#include "shim/intercept/libc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/runtime.h"
#include "shim/socket/sockaddr_util.h"
#include "shim/socket/tcp_socket.h"

namespace xdpload::shim {

namespace {

constexpr char kVariable[] = "XDPLOAD_PASSED_CONNECTIONS";
constexpr size_t kVariableLen = sizeof kVariable - 1;

// The library's file name, looked for in a new program's LD_PRELOAD (found
// once, at the start: dladdr takes the loader's lock, which an exec after
// fork in a threaded program must not need).
char g_self_name[256];

// ---- the exec'ing program ----

// Per thread: two threads may exec or spawn at once. (A vfork child runs
// on its parent's thread: passed_connections_value() empties the value
// before the exec, and the parent's next passing_begins() resets both.)
thread_local bool t_new_program_preloads_us = false;
thread_local std::string t_value;
// A vfork child's failed exec: its queues, for its next attempt. (Its
// descriptor numbers are its own. It runs on the thread-local storage of
// the thread that called vfork, which no other thread touches; `pid` tells
// the child's note from a stale one. No heap: the heap is the parent's.)
thread_local pid_t t_carried_pid = 0;
thread_local char t_carried[1024];

pid_t raw_pid() { return pid_t(syscall(SYS_getpid)); }

bool env_preloads_us(char* const* env) {
  if (!g_self_name[0]) return false;
  for (char* const* e = env; e && *e; ++e)
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0) return strstr(*e + 11, g_self_name) != nullptr;
  return false;
}

void append(std::string* value, int listener, int queue) {
  if (!value->empty()) *value += ',';
  *value += std::to_string(listener) + ':' + std::to_string(queue);
}

// Each "L:Q" of `value`, to fn(L, Q); false at the first malformed one.
template <typename Fn>
bool for_each_entry(const char* value, Fn fn) {
  const char* at = value;
  while (*at) {
    char* end;
    long l = strtol(at, &end, 10);
    if (end == at || *end != ':') return false;
    at = end + 1;
    long q = strtol(at, &end, 10);
    if (end == at || (*end && *end != ',') || l < 0 || q < 0 || l >= (1 << 30) || q >= (1 << 30))
      return false;
    at = *end ? end + 1 : end;
    fn(int(l), int(q));
  }
  return true;
}

void set_cloexec(int fd, bool on) { libc::fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0); }

// ---- the exec'd program ----

// A slot: free (queue -1), being filled (-2), or holding a queue, with
// connections still waiting (live) or drained. A drained queue stays open
// until its listener is closed (while another queue is live; else for the
// program's life: one descriptor of ours): another thread may be reading
// it still, and its number, closed, could name a descriptor of ours.
struct Passed {
  std::atomic<int> listener{-1};  // the program's descriptor
  std::atomic<int> queue{-1};     // ours (private)
  std::atomic<bool> live{false};
};
constexpr int kMaxPassed = 64;
Passed g_passed[kMaxPassed];
// Live slots; 0 lets every intercept skip this file at one load.
std::atomic<int> g_live{0};

Passed* find(int listener) {
  for (Passed& p : g_passed)
    if (p.live.load(std::memory_order_acquire) &&
        p.listener.load(std::memory_order_relaxed) == listener)
      return &p;
  return nullptr;
}

// Drained: no longer looked at (once, though two threads may both find it
// empty).
void drop(Passed* p) {
  if (p->live.exchange(false, std::memory_order_acq_rel)) g_live.fetch_sub(1, std::memory_order_relaxed);
}

bool has_waiting(int queue) {
  pollfd q{queue, POLLIN, 0};
  return libc::poll(&q, 1, 0) == 1 && (q.revents & POLLIN);
}

// The entries of `value` whose descriptors are what they should be (L a
// listening TCP socket, Q a datagram socket of AF_UNIX) join the table, Q
// moved out of the program's way (its closefrom(), the numbers it is
// given) and close-on-exec until an exec passes it on.
void adopt(const char* value, bool said) {
  const bool ok = for_each_entry(value, [&](int l, int q) {
    for (Passed& p : g_passed)
      if (p.queue.load() == q && p.live.load()) return;  // (kept from a failed exec: in already)
    int listening = 0, type = 0, domain = 0;
    socklen_t n = sizeof listening;
    bool good = getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &listening, &n) == 0 && listening;
    n = sizeof type;
    good = good && getsockopt(q, SOL_SOCKET, SO_TYPE, &type, &n) == 0 && type == SOCK_DGRAM;
    n = sizeof domain;
    good = good && getsockopt(q, SOL_SOCKET, SO_DOMAIN, &domain, &n) == 0 && domain == AF_UNIX;
    Passed* slot = nullptr;
    for (Passed& p : g_passed) {
      int free = -1;
      if (p.queue.compare_exchange_strong(free, -2)) {
        slot = &p;
        break;
      }
    }
    if (!good || !slot) {
      if (slot) slot->queue.store(-1);
      // (Q is left open, close-on-exec: a descriptor named by a malformed
      // variable may be anything of the program's.)
      if (said)
        log_at(kLogError, "%s: descriptors %d:%d %s: ignored", kVariable, l, q,
               good ? "exceed the 64 listeners followed" : "are not a listener and its queue");
      return;
    }
    const int mine = rings::is_private_fd(q) ? q : rings::to_private_fd(q);
    set_cloexec(mine, true);
    slot->listener.store(l, std::memory_order_relaxed);
    slot->queue.store(mine, std::memory_order_relaxed);
    slot->live.store(true, std::memory_order_release);
    g_live.fetch_add(1, std::memory_order_relaxed);
    XLOG(kLogDecision, "descriptor %d: connections that waited on it at the exec are accepted first",
         l);
  });
  if (!ok && said) log_at(kLogError, "%s=%s is malformed: ignored from there", kVariable, value);
}

}  // namespace

// ---- the exec'ing program ----

void passing_begins(char* const* new_env, bool carry) {
  t_new_program_preloads_us = env_preloads_us(new_env);
  t_value.clear();
  if (!carry) return;
  // A vfork child's own, from its failed attempt (another's: stale).
  if (t_carried_pid == raw_pid())
    for_each_entry(t_carried, [&](int l, int q) {
      if (t_new_program_preloads_us) append(&t_value, l, q);
    });
  t_carried_pid = 0;
  if (!passed_any()) return;
  // This process's, adopted: passed on where the listener survives the exec
  // and connections still wait; else they close with the exec.
  for (Passed& p : g_passed) {
    if (!p.live.load(std::memory_order_acquire)) continue;
    const int q = p.queue.load(std::memory_order_relaxed);
    const int fl = libc::fcntl(p.listener.load(std::memory_order_relaxed), F_GETFD);
    if (t_new_program_preloads_us && fl >= 0 && !(fl & FD_CLOEXEC) && has_waiting(q))
      append(&t_value, p.listener.load(std::memory_order_relaxed), q);
  }
}

size_t pass_waiting_connections(TcpSocket* l, int fd_in_new_program) {
  if (l->accept_queue.empty() || !t_new_program_preloads_us || fd_in_new_program < 0) return 0;
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ends) != 0) return 0;
  // Each connection in flight is charged to the sending end until it is
  // received: room for the whole queue (forced where allowed; else the
  // system's maximum, some hundreds: the rest are reset).
  const int room = int(std::min<size_t>(l->accept_queue.size(), 65536)) * 2048;
  if (setsockopt(ends[0], SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room) != 0)
    setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
  // At most what surely fits (a one-byte SCM_RIGHTS datagram takes 766
  // bytes of the buffer here: 1024 counted), and below the descriptors a
  // user may have in flight (RLIMIT_NOFILE): a connection is handed over
  // only once its place in the queue is sure; the rest are reset.
  int got = 0;
  socklen_t gl = sizeof got;
  getsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &got, &gl);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  const size_t fits = std::min<size_t>(size_t(got) / 1024, size_t(nofile.rlim_cur) / 2);
  Runtime& rt = Runtime::get();
  // (A copy: handing a connection over polls the stack, which may queue
  // more; those are reset with the listener, as any arriving later.)
  std::vector<TcpSocket*> waiting(l->accept_queue.begin(), l->accept_queue.end());
  size_t passed = 0;
  for (TcpSocket* c : waiting) {
    if (passed == fits) {
      log_at(kLogError, "descriptor %d: %zu waiting connection(s) beyond the %zu the new program's "
             "queue takes are reset", fd_in_new_program, waiting.size() - passed, fits);
      break;
    }
    int k = libc::socket(l->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k < 0) break;
    // What accept() would have given it: the listener's options.
    copy_options_to_kernel(k, c->opt);
    ErrorText why;
    if (c->hand_connection_to_kernel(k, &why) != 0) {
      log_at(kLogError, "a connection waiting on descriptor %d cannot go to the new program: %s",
             fd_in_new_program, why.c_str());
      libc::close(k);
      continue;
    }
    // The kernel's now; it leaves the stack's queue.
    for (auto it = l->accept_queue.begin(); it != l->accept_queue.end(); ++it)
      if (*it == c) {
        l->accept_queue.erase(it);
        break;
      }
    c->listener = nullptr;
    c->release();  // (its counts: a stamping user; the connection is gone already)
    rt.maybe_delete(c);
    const char byte = 0;
    const bool sent = rings::send_with_fd(ends[0], &byte, 1, k, MSG_DONTWAIT) == 0;
    libc::close(k);  // (the copy in flight holds it)
    if (!sent) {
      // (Not seen with the room made above.)
      log_at(kLogError, "descriptor %d: a waiting connection was lost at the exec (%s); the "
             "others are reset", fd_in_new_program, strerror(errno));
      break;
    }
    ++passed;
  }
  libc::close(ends[0]);
  if (passed == 0) {
    libc::close(ends[1]);  // (and what was in flight with it)
    return 0;
  }
  // Inherited by the new program (whose library moves it out of its way).
  set_cloexec(ends[1], false);
  append(&t_value, fd_in_new_program, ends[1]);
  XLOG(kLogDecision, "descriptor %d: %zu connection(s) waiting on it go to the program this "
       "process execs", fd_in_new_program, passed);
  return passed;
}

std::string passed_connections_value() {
  std::string v;
  v.swap(t_value);
  // Inheritable until the exec (a carried or adopted queue was not).
  for_each_entry(v.c_str(), [](int, int q) { set_cloexec(q, false); });
  return v;
}

void passing_failed(const std::string& value) {
  if (value.empty()) return;
  for_each_entry(value.c_str(), [](int, int q) { set_cloexec(q, true); });
  if (Runtime::get().vfork_child()) {
    if (value.size() < sizeof t_carried) {
      memcpy(t_carried, value.c_str(), value.size() + 1);
      t_carried_pid = raw_pid();
    }
    return;
  }
  adopt(value.c_str(), false);
}

void close_passed_queues(const std::string& value) {
  for_each_entry(value.c_str(), [](int, int q) { libc::close(q); });
}

std::vector<char*> env_with_passed(char* const* env, const std::string& value, std::string* entry) {
  *entry = std::string(kVariable) + '=' + value;
  std::vector<char*> out;
  for (char* const* e = env; e && *e; ++e)
    if (strncmp(*e, kVariable, kVariableLen) != 0 || (*e)[kVariableLen] != '=') out.push_back(*e);
  out.push_back(entry->data());
  out.push_back(nullptr);
  return out;
}

std::vector<int> passed_queues(const std::string& value) {
  std::vector<int> queues;
  for_each_entry(value.c_str(), [&](int, int q) { queues.push_back(q); });
  return queues;
}

// ---- the exec'd program ----

void adopt_passed_connections() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&adopt_passed_connections), &info) && info.dli_fname) {
    const char* slash = strrchr(info.dli_fname, '/');
    snprintf(g_self_name, sizeof g_self_name, "%s", slash ? slash + 1 : info.dli_fname);
  }
  const char* v = getenv(kVariable);
  if (!v) return;
  std::string value = v;  // (unsetenv frees it)
  unsetenv(kVariable);
  adopt(value.c_str(), true);
}

bool passed_any() { return g_live.load(std::memory_order_relaxed) != 0; }

int passed_accept(int fd, sockaddr* addr, socklen_t* len, int flags) {
  Passed* p = find(fd);
  if (!p) return kNoPassed;
  const int queue = p->queue.load(std::memory_order_relaxed);
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
    errno = EINVAL;
    return -1;
  }
  // A descriptor free for it first (EMFILE as accept() says it): one
  // received without room is closed by the kernel, and the connection
  // with it, where accept() leaves it queued.
  if (int probe = libc::fcntl(queue, F_DUPFD_CLOEXEC, 0); probe >= 0) {
    libc::close(probe);
  } else if (errno == EBADF) {  // (the listener closed meanwhile)
    drop(p);
    return kNoPassed;
  } else {
    return -1;
  }
  for (;;) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    // The lowest free descriptor, as accept() gives.
    ssize_t got = libc::recvmsg(queue, &msg, MSG_DONTWAIT |
                                                 ((flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0));
    if (got < 0) {
      if (errno != EAGAIN && errno != EBADF) return -1;  // (EBADF: the listener closed meanwhile)
      // Empty (another process of the family took the last): for good, the
      // sending end is closed.
      drop(p);
      return kNoPassed;
    }
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
      errno = (msg.msg_flags & MSG_CTRUNC) ? EMFILE : EPROTO;
      return -1;
    }
    int conn;
    memcpy(&conn, CMSG_DATA(c), sizeof conn);
    sockaddr_storage peer{};
    socklen_t n = sizeof peer;
    if (libc::getpeername(conn, reinterpret_cast<sockaddr*>(&peer), &n) != 0) {
      // Not connected after all (a broker that did not give the connection
      // back): it was lost at the exec, said there. The next one.
      libc::close(conn);
      continue;
    }
    if (flags & SOCK_NONBLOCK) libc::fcntl(conn, F_SETFL, libc::fcntl(conn, F_GETFL) | O_NONBLOCK);
    if (addr && len) {
      memcpy(addr, &peer, std::min<socklen_t>(*len, n));
      *len = n;
    }
    if (!has_waiting(queue)) drop(p);
    return conn;
  }
}

int passed_ready(pollfd* fds, nfds_t n) {
  int marked = 0;
  for (nfds_t i = 0; i < n; ++i) {
    fds[i].revents = 0;
    Passed* p = fds[i].fd >= 0 ? find(fds[i].fd) : nullptr;
    if (!p || !(fds[i].events & (POLLIN | POLLRDNORM))) continue;
    if (!has_waiting(p->queue.load(std::memory_order_relaxed))) {
      drop(p);
      continue;
    }
    fds[i].revents = short(fds[i].events & (POLLIN | POLLRDNORM));
    ++marked;
  }
  return marked;
}

bool passed_waiting(int fd) {
  Passed* p = find(fd);
  if (!p) return false;
  if (has_waiting(p->queue.load(std::memory_order_relaxed))) return true;
  drop(p);
  return false;
}

void passed_epoll_ctl(int epfd, int op, int fd, const epoll_event* ev) {
  Passed* p = find(fd);
  if (!p) return;
  const int queue = p->queue.load(std::memory_order_relaxed);
  if (op == EPOLL_CTL_DEL) {
    libc::epoll_ctl(epfd, EPOLL_CTL_DEL, queue, nullptr);
    return;
  }
  if (!ev) return;
  // Only readiness to read: the queue is always writable, a listener
  // never. (Same data: the program's loop sees its listener. Under
  // EPOLLONESHOT each of the two reports once.)
  epoll_event mirror = *ev;
  mirror.events &= EPOLLIN | EPOLLRDNORM | EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP;
  if (!(mirror.events & (EPOLLIN | EPOLLRDNORM))) {
    if (op == EPOLL_CTL_MOD) libc::epoll_ctl(epfd, EPOLL_CTL_DEL, queue, nullptr);
    return;
  }
  if (libc::epoll_ctl(epfd, op, queue, &mirror) != 0 && op == EPOLL_CTL_MOD)
    libc::epoll_ctl(epfd, EPOLL_CTL_ADD, queue, &mirror);  // (left out at ADD: no EPOLLIN)
}

void passed_forget(int fd) {
  // Live or drained: the queue closes with its listener (its connections
  // reset, as a closed listener's are).
  for (Passed& p : g_passed) {
    if (p.queue.load(std::memory_order_acquire) < 0 || p.listener.load(std::memory_order_relaxed) != fd)
      continue;
    drop(&p);
    const int q = p.queue.exchange(-2);
    p.listener.store(-1, std::memory_order_relaxed);
    if (q >= 0) rings::close_private_fd(q);
    p.queue.store(-1, std::memory_order_release);
  }
}

}  // namespace xdpload::shim
