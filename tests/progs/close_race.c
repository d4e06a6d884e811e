/* A descriptor closed by one thread while another waits on it (a pattern of
 * programs that stop a reader by closing its socket), then new sockets made
 * at once, which take the memory a freed socket leaves.
 *
 *   close_race PEER_IP TCP_PORT UDP_PORT
 *
 * For a TCP recv, a UDP recv, a poll on a TCP socket and a TCP recvmsg
 * with MSG_WAITALL that has part of its data already: a thread waits,
 * the main thread closes the descriptor 200 ms later and runs 20 echo
 * exchanges on new sockets to the peer's echo servers, then waits up to 5 s
 * for the waiting thread. Prints how each wait ended and whether every
 * exchange was intact. (On Linux a recv keeps waiting on the socket its
 * call holds; under xdpload it ends with EBADF; a poll reports POLLNVAL,
 * or the state of a new socket that took the number meanwhile.
 * What must never happen is a crash, a hang, or a wait that reads the
 * memory of a freed socket: tests/shim/shim-close-race.sh runs this with
 * freed memory scribbled over.)
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "parity.h"

static struct sockaddr_in tcp_peer, udp_peer;

static int tcp_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&tcp_peer, sizeof tcp_peer) != 0) {
    printf("connect: %s\n", en(errno));
    exit(1);
  }
  return fd;
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (connect(fd, (struct sockaddr*)&udp_peer, sizeof udp_peer) != 0) {
    printf("udp connect: %s\n", en(errno));
    exit(1);
  }
  return fd;
}

struct waiter {
  int fd;
  int kind; /* 0 recv, 1 poll, 2 recvmsg(MSG_WAITALL) after part of the data came */
  long result;
  int err;
  short revents;
  size_t controllen;
};

static void* wait_on(void* arg) {
  struct waiter* w = arg;
  char buf[100];
  errno = 0;
  if (w->kind == 0) {
    w->result = (long)recv(w->fd, buf, sizeof buf, 0);
  } else if (w->kind == 2) {
    /* 10 bytes come back from the echo, then the call waits for the rest:
     * it returns those 10 once the descriptor is closed, and no control
     * message (none was asked for). */
    send(w->fd, "0123456789", 10, 0);
    char cbuf[256];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    w->result = (long)recvmsg(w->fd, &m, MSG_WAITALL);
    w->controllen = m.msg_controllen;
  } else {
    struct pollfd p = {w->fd, POLLIN, 0};
    w->result = poll(&p, 1, 10000);
    w->revents = p.revents;
  }
  w->err = errno;
  return NULL;
}

/* 20 exchanges on fresh sockets: how many came back intact. */
static int churn(int udp) {
  int intact = 0;
  for (int i = 0; i < 20; ++i) {
    int fd = udp ? udp_socket() : tcp_socket();
    char msg[32], back[32];
    int n = snprintf(msg, sizeof msg, "exchange %d", i);
    send(fd, msg, (size_t)n, 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t got = recv(fd, back, udp ? sizeof back : (size_t)n, udp ? 0 : MSG_WAITALL);
    intact += got == n && !memcmp(msg, back, (size_t)n);
    close(fd);
  }
  return intact;
}

static void run(const char* name, int udp, int kind) {
  struct waiter w = {udp ? udp_socket() : tcp_socket(), kind, 0, 0, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, wait_on, &w);
  usleep(200000);
  close(w.fd);
  int intact = churn(udp);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  if (pthread_timedjoin_np(t, NULL, &until) != 0) {
    printf("%s: the waiting thread never returned; %d of 20 exchanges intact\n", name, intact);
    fflush(stdout);
    _exit(1);
  }
  printf("%s: the wait ended (%ld %s revents 0x%x); %d of 20 exchanges intact\n", name, w.result,
         w.result < 0 ? en(w.err) : "", w.revents, intact);
  if (kind == 2) printf("%s: %zu bytes of control messages\n", name, w.controllen);
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  tcp_peer = addr_of(argv[1], atoi(argv[2]));
  udp_peer = addr_of(argv[1], atoi(argv[3]));
  run("tcp recv", 0, 0);
  run("udp recv", 1, 0);
  run("tcp poll", 0, 1);
  run("tcp recvmsg waitall", 0, 2);
  printf("done\n");
  return 0;
}
