/* jump_sleepers: signal handlers that leave a blocking socket call by
 * siglongjmp, as alarm()-based timeouts do. recv(), accept() and poll()
 * are async-signal-safe, so POSIX lets a handler that interrupted them
 * jump out; the program then goes on with the same sockets.
 *
 *   jump_sleepers IP UDP_ECHO_PORT BRIDGE_PORT LISTEN_PORT
 *
 * IP runs a UDP echo server (B), and on BRIDGE_PORT a relay that connects
 * back to our LISTEN_PORT for each connection it gets. Cases:
 * - a thread jumps out of recv(), accept(), poll() or epoll_wait() and
 *   ends (or its handler ends it by pthread_exit() in recv()); it runs on a stack the program maps itself and unmaps once it
 *   has joined the thread (whatever a library kept of the thread there is
 *   gone then); the socket is used again;
 * - a thread jumps out of epoll_wait() on one of two sets that watch a
 *   listener with EPOLLEXCLUSIVE: the next connection is the other set's;
 *   with a handler that returns instead, and the thread waiting on that
 *   set again, the connection is that thread's alone;
 * - the main thread jumps out of recv() 30 times, a helper thread sending
 *   the signal every 2 ms, then uses the socket again (a thread that spins
 *   in its calls is interrupted anywhere in them);
 * - a helper thread queues 300 realtime signals with values to the main
 *   thread while it waits in recv(): the handler must see each once (the
 *   order, which a thread that holds the stack's lock may change, goes to
 *   stderr).
 * Prints one line per case; the test compares the output with and without
 * the preload.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sleepers.h"

#define MAIN_JUMPS 30


static __thread sigjmp_buf t_jump;
static __thread volatile sig_atomic_t t_armed;
static __thread volatile sig_atomic_t t_exit_instead;

static void jump_out(int sig) {
  (void)sig;
  if (!t_armed) return;
  t_armed = 0;
  if (t_exit_instead) pthread_exit((void*)3);
  siglongjmp(t_jump, 1);
}

/* Sleeps in the call `how` until the signal's handler jumps out of it. */
static void* sleep_in(void* arg) {
  struct sleeper* s = arg;
  if (sigsetjmp(t_jump, 1)) return (void*)2;
  t_exit_instead = !strcmp(s->how, "recv, ended by pthread_exit in the handler");
  t_armed = 1;
  block_in(s);
  t_armed = 0;
  return (void*)1;  // (returned: reported)
}

/* Starts a thread sleeping in `how` on fd, jumps it out after 200 ms,
 * joins it and unmaps its stack. */
static const char* jump_thread_out(int fd, const char* how) {
  struct sleeper s;
  start_sleeper(&s, fd, how, sleep_in);
  pause_ms(200);  // (asleep by then)
  pthread_kill(s.thread, SIGUSR1);
  void* r = join_sleeper(&s);
  return r == (void*)2 ? "jumped out" : r == (void*)3 ? "exited" : "returned";
}

/* epoll_wait() on s->fd, left by a handler that returns (EINTR, noted in
 * g_first_eintr), then again for up to 5 s: what the second returned. */
static volatile int g_first_eintr;
static void* epoll_wait_twice(void* arg) {
  struct sleeper* s = arg;
  struct epoll_event ev;
  g_first_eintr = epoll_wait(s->fd, &ev, 1, -1) < 0 && errno == EINTR;
  return (void*)(long)epoll_wait(s->fd, &ev, 1, 5000);
}

static volatile int g_stop_kicking;

static void* kick_main(void* arg) {
  pthread_t main_thread = *(pthread_t*)arg;
  while (!g_stop_kicking) {
    pthread_kill(main_thread, SIGUSR1);
    pause_ms(2);
  }
  return NULL;
}

/* One signal a time, each once the main thread has put its one-shot
 * handler (SA_RESETHAND) back: a second would meet SIG_DFL. */
static volatile int g_oneshot_armed;
static void* kick_main_once(void* arg) {
  pthread_t main_thread = *(pthread_t*)arg;
  while (!g_stop_kicking) {
    if (g_oneshot_armed) {
      g_oneshot_armed = 0;
      pthread_kill(main_thread, SIGUSR2);
    }
    pause_ms(1);
  }
  return NULL;
}

#define RT_SIGNALS 300
static volatile int g_rt_values[RT_SIGNALS];
static volatile int g_rt_count;

static void note_value(int sig, siginfo_t* info, void* ctx) {
  (void)sig;
  (void)ctx;
  if (g_rt_count < RT_SIGNALS) g_rt_values[g_rt_count] = info->si_value.sival_int;
  ++g_rt_count;
}

static void* queue_values(void* arg) {
  pthread_t main_thread = *(pthread_t*)arg;
  for (int i = 0; i < RT_SIGNALS; ++i) {
    union sigval v = {.sival_int = i};
    while (pthread_sigqueue(main_thread, SIGRTMIN, v) != 0) pause_ms(1);  // (EAGAIN: queue full)
    if (i % 8 == 7) pause_ms(1);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: jump_sleepers IP UDP_ECHO_PORT BRIDGE_PORT LISTEN_PORT\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  udp_echo.sin_family = AF_INET;
  inet_pton(AF_INET, argv[1], &udp_echo.sin_addr);
  udp_echo.sin_port = htons(atoi(argv[2]));
  bridge = udp_echo;
  bridge.sin_port = htons(atoi(argv[3]));
  struct sigaction sa = {.sa_handler = jump_out};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL)) die("sigaction");

  /* recv(), poll() and epoll_wait() on a UDP socket, each left by a jump
   * of a thread that then ends; the socket's next echo wakes whatever
   * waits on it. */
  int u = udp_socket();
  printf("recv: %s\n", jump_thread_out(u, "recv"));
  echo("recv, then", u);
  printf("recv, pthread_exit: %s\n",
         jump_thread_out(u, "recv, ended by pthread_exit in the handler"));
  echo("recv, pthread_exit, then", u);
  printf("poll: %s\n", jump_thread_out(u, "poll"));
  echo("poll, then", u);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = u};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev)) die("epoll");
  printf("epoll_wait: %s\n", jump_thread_out(ep, "epoll_wait"));
  echo("epoll_wait, then", u);
  struct epoll_event got;
  printf("epoll_wait, then: %d event(s)\n", epoll_wait(ep, &got, 1, 0));
  close(ep);

  /* accept() on a listener: the next connection (made back to it by B's
   * relay) goes to the next accept(). */
  int l = listener(atoi(argv[4]));
  printf("accept: %s\n", jump_thread_out(l, "accept"));
  accept_through_bridge("accept, then", l);

  /* Two epoll sets watch a listener with EPOLLEXCLUSIVE; a thread jumps
   * out of epoll_wait() on the first. A new connection is then the
   * second set's too: Linux goes past an exclusive entry with nobody
   * waiting on its set. */
  l = listener(atoi(argv[4]));
  int e1 = epoll_create1(0), e2 = epoll_create1(0);
  struct epoll_event xe = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
  if (e1 < 0 || e2 < 0 || epoll_ctl(e1, EPOLL_CTL_ADD, l, &xe) || epoll_ctl(e2, EPOLL_CTL_ADD, l, &xe))
    die("epoll exclusive");
  printf("exclusive epoll_wait: %s\n", jump_thread_out(e1, "epoll_wait"));
  int via = socket(AF_INET, SOCK_STREAM, 0);
  if (via < 0 || connect(via, (struct sockaddr*)&bridge, sizeof bridge)) die("connect bridge");
  printf("exclusive epoll_wait, then the other set: %d event(s)\n", epoll_wait(e2, &got, 1, 3000));
  accept_bridged("exclusive epoll_wait, then", via, l);
  close(e1);
  close(e2);

  /* The same two sets, a handler that returns: the thread waits on the
   * first set again, and the next connection is its alone (its set's
   * count of sleepers taken down once, by the leave, and up again; the
   * other set, never told, reports nothing). */
  l = listener(atoi(argv[4]));
  e1 = epoll_create1(0);
  e2 = epoll_create1(0);
  xe.data.fd = l;
  if (e1 < 0 || e2 < 0 || epoll_ctl(e1, EPOLL_CTL_ADD, l, &xe) || epoll_ctl(e2, EPOLL_CTL_ADD, l, &xe))
    die("epoll exclusive");
  struct sleeper twice;
  start_sleeper(&twice, e1, "epoll_wait twice", epoll_wait_twice);
  pause_ms(200);
  pthread_kill(twice.thread, SIGUSR1);  // (not armed: the handler returns)
  pause_ms(200);
  via = socket(AF_INET, SOCK_STREAM, 0);
  if (via < 0 || connect(via, (struct sockaddr*)&bridge, sizeof bridge)) die("connect bridge");
  long second = (long)join_sleeper(&twice);
  printf("exclusive, a handler returned: %s, then %ld event(s)\n", g_first_eintr ? "EINTR" : "no EINTR",
         second);
  /* (Looked at once the connection is there, not yet accepted.) */
  printf("exclusive, a handler returned, the other set: %d event(s)\n", epoll_wait(e2, &got, 1, 0));
  accept_bridged("exclusive, a handler returned, then", via, l);
  close(e1);
  close(e2);

  /* The main thread jumps out of recv() again and again. */
  pthread_t self = pthread_self(), kicker;
  int jumps = 0;
  if (pthread_create(&kicker, NULL, kick_main, &self)) die("pthread_create");
  while (jumps < MAIN_JUMPS) {
    char buf[64];
    if (sigsetjmp(t_jump, 1)) {
      ++jumps;
      continue;
    }
    t_armed = 1;
    recv(u, buf, sizeof buf, 0);
    t_armed = 0;
  }
  g_stop_kicking = 1;
  pthread_join(kicker, NULL);
  printf("main thread: %d jumps out of recv\n", jumps);
  echo("the jumps, then", u);

  /* The same with a one-shot handler (SA_RESETHAND), put back before each
   * recv(): the kernel resets the action as it delivers the signal. */
  struct sigaction once = {.sa_handler = jump_out, .sa_flags = SA_RESETHAND};
  sigemptyset(&once.sa_mask);
  jumps = 0;
  g_stop_kicking = 0;
  if (pthread_create(&kicker, NULL, kick_main_once, &self)) die("pthread_create");
  while (jumps < MAIN_JUMPS) {
    char buf[64];
    if (sigsetjmp(t_jump, 1)) {
      ++jumps;
      continue;
    }
    if (sigaction(SIGUSR2, &once, NULL)) die("sigaction");
    t_armed = 1;
    g_oneshot_armed = 1;
    recv(u, buf, sizeof buf, 0);
    t_armed = 0;
  }
  g_stop_kicking = 1;
  pthread_join(kicker, NULL);
  struct sigaction now;
  sigaction(SIGUSR2, NULL, &now);
  printf("main thread, one-shot handler: %d jumps out of recv, then SIGUSR2 is %s\n", jumps,
         now.sa_handler == SIG_DFL ? "SIG_DFL" : "still handled");
  echo("the one-shot jumps, then", u);

  /* Realtime signals queued to a thread in recv(): in order. */
  struct sigaction rt = {.sa_sigaction = note_value, .sa_flags = SA_SIGINFO};
  sigemptyset(&rt.sa_mask);
  if (sigaction(SIGRTMIN, &rt, NULL)) die("sigaction");
  pthread_t queuer;
  if (pthread_create(&queuer, NULL, queue_values, &self)) die("pthread_create");
  while (g_rt_count < RT_SIGNALS) {
    char buf[64];
    recv(u, buf, sizeof buf, 0);  // (EINTR, mostly)
  }
  pthread_join(queuer, NULL);
  int first_out = -1, seen[RT_SIGNALS] = {0}, each_once = g_rt_count == RT_SIGNALS;
  for (int i = 0; i < RT_SIGNALS && i < g_rt_count; ++i) {
    if (g_rt_values[i] != i && first_out < 0) first_out = i;
    if (g_rt_values[i] < 0 || g_rt_values[i] >= RT_SIGNALS || seen[g_rt_values[i]]++) each_once = 0;
  }
  printf("realtime signals: %d, %s\n", g_rt_count, each_once ? "each once" : "some lost or twice");
  if (first_out >= 0) fprintf(stderr, "jump_sleepers: realtime signals out of order at %d\n", first_out);
  close(u);
  printf("all done\n");
  return 0;
}
