/* MSG_ZEROCOPY, run the same way on the kernel and under xdpload
 * (tests/shim/shim-zerocopy.sh): every line printed must be the same.
 *
 *   zerocopy_parity PEER_IP TCP_PORT UDP_PORT
 *
 * For TCP and for connected UDP: SO_ZEROCOPY, then sends with MSG_ZEROCOPY;
 * the completions are read from the error queue (poll says POLLERR) until
 * every send's id has been notified, and the program prints whether each id
 * was notified exactly once, the fields every notification must have, and
 * what recvmsg(MSG_ERRQUEUE) returned. Without SO_ZEROCOPY the flag is
 * ignored: no notification once everything is acknowledged. How many
 * notifications the ids were merged into, and their code, go to stderr (they
 * depend on timing and on the path).
 */
#define _GNU_SOURCE
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "parity.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif

static const char* yes(int b) { return b ? "yes" : "no"; }

/* One more read of the error queue: empty by now (EAGAIN, at once). */
static void errqueue_empty(const char* what, int fd) {
  char c[64];
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_control = c;
  m.msg_controllen = sizeof c;
  errno = 0;
  long r = recvmsg(fd, &m, MSG_ERRQUEUE);
  printf("%s: the error queue then: %ld %s\n", what, r, r < 0 ? en(errno) : "");
}

/* Reads notifications until ids 0..n-1 are all in, or poll gives up. */
static void collect(const char* what, int fd, uint32_t n) {
  static unsigned char seen[4096];
  memset(seen, 0, sizeof seen);
  uint32_t have = 0, notes = 0, copied = 0;
  int twice = 0, fields_ok = 1, zero_bytes = 1, flag_ok = 1, namelen_zero = 1, level_ok = 1;
  while (have < n) {
    struct pollfd p = {fd, 0, 0}; /* POLLERR is always reported */
    if (poll(&p, 1, 5000) <= 0 || !(p.revents & POLLERR)) break;
    char cbuf[128];
    struct sockaddr_in from;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    ssize_t r = recvmsg(fd, &m, MSG_ERRQUEUE);
    if (r < 0) {
      if (errno == EAGAIN) continue;
      printf("%s: recvmsg(MSG_ERRQUEUE): %s\n", what, en(errno));
      return;
    }
    zero_bytes &= r == 0;
    flag_ok &= (m.msg_flags & MSG_ERRQUEUE) != 0;
    namelen_zero &= m.msg_namelen == 0;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      level_ok &= c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR &&
                  c->cmsg_len == CMSG_LEN(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in));
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      fields_ok &= ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_type == 0;
      ++notes;
      copied += ee.ee_code == SO_EE_CODE_ZEROCOPY_COPIED;
      for (uint64_t id = ee.ee_info; id <= ee.ee_data && id < sizeof seen; ++id) {
        if (seen[id]) twice = 1;
        else if (id < n) ++have;
        seen[id] = 1;
      }
    }
  }
  printf("%s: %u sends, every id notified: %s, none twice: %s\n", what, n, yes(have == n), yes(!twice));
  printf("%s: errno 0, origin ZEROCOPY, type 0: %s; IP_RECVERR of the right size: %s\n", what,
         yes(fields_ok), yes(level_ok));
  printf("%s: 0 bytes, MSG_ERRQUEUE, no address: %s %s %s\n", what, yes(zero_bytes), yes(flag_ok),
         yes(namelen_zero));
  errqueue_empty(what, fd);
  fprintf(stderr, "%s: %u notifications, %u with the COPIED code\n", what, notes, copied);
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  peer = argv[1];
  int tcp_port = atoi(argv[2]), udp_port = atoi(argv[3]);
  static char buf[4096];
  memset(buf, 'z', sizeof buf);
  int one = 1;

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  printf("tcp SO_ZEROCOPY: %s\n", setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) ? en(errno) : "ok");
  struct sockaddr_in a = addr_of(peer, tcp_port);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("setup: connect: %s\n", en(errno));
    return 1;
  }
  errqueue_empty("tcp before any send", fd);
  int sent_all = 1;
  for (int i = 0; i < 128; ++i) sent_all &= send(fd, buf, sizeof buf, MSG_ZEROCOPY) == (ssize_t)sizeof buf;
  printf("tcp: 128 sends of 4096 bytes with MSG_ZEROCOPY: %s\n", yes(sent_all));
  collect("tcp", fd, 128);
  close(fd);

  /* The flag without the option: ignored, nothing is ever notified. */
  fd = connect_to(tcp_port);
  for (int i = 0; i < 16; ++i) send(fd, buf, sizeof buf, MSG_ZEROCOPY);
  int unacked = 1;
  for (int i = 0; i < 500 && unacked; ++i) {
    ioctl(fd, SIOCOUTQ, &unacked);
    if (unacked) usleep(10000);
  }
  printf("tcp without SO_ZEROCOPY: all acknowledged: %s\n", yes(!unacked));
  errqueue_empty("tcp without SO_ZEROCOPY", fd);
  close(fd);

  fd = socket(AF_INET, SOCK_DGRAM, 0);
  printf("udp SO_ZEROCOPY: %s\n", setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) ? en(errno) : "ok");
  a = addr_of(peer, udp_port);
  connect(fd, (struct sockaddr*)&a, sizeof a);
  sent_all = 1;
  for (int i = 0; i < 64; ++i) sent_all &= send(fd, buf, 1000, MSG_ZEROCOPY) == 1000;
  printf("udp: 64 sends of 1000 bytes with MSG_ZEROCOPY: %s\n", yes(sent_all));
  collect("udp", fd, 64);
  close(fd);
  return 0;
}
