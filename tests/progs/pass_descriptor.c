/* pass_descriptor: a socket passed to another process over a Unix socket
 * (SCM_RIGHTS), as Node.js's cluster does (its primary accepts each
 * connection and passes it to a worker, or passes the listener), as
 * HAProxy and Envoy pass their listeners to a new process, and as
 * systemd-style socket passing does. The receiver is a new program (this
 * one, exec'd: outside the sender's process family) or, with "forked-",
 * a forked child that stays in the family.
 *
 *   pass_descriptor MODE ADDR PORT
 *
 * MODE: connection | listener | udp | malformed | forked-connection
 * - connection: the sender accepts a connection on ADDR:PORT after the
 *   client has sent its line (so that the bytes wait unread on the
 *   sender's side), passes it and closes its own copy; the receiver reads
 *   the line and answers "echo: LINE".
 * - listener: the sender passes its listener before any connection and
 *   closes its copy; the receiver accepts one and answers as above.
 * - udp: the sender passes its bound UDP socket and keeps its own copy
 *   open; the receiver answers one datagram with "echo: DATAGRAM".
 * - malformed: the sender sends a malformed SCM_RIGHTS message naming its
 *   listener (refused: EINVAL), then accepts and answers itself.
 * Prints what each side did, the same with and without xdpload; exits 0
 * when the receiver answered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHANNEL_FD 3 /* the receiver's end of the Unix socket, after exec */

static void die(const char* what) {
  printf("%s: %s\n", what, strerror(errno));
  fflush(stdout);
  _exit(1);
}

/* One byte with an SCM_RIGHTS message naming `fd`: a control buffer of
 * `controllen` bytes whose header says `cmsg_len`. */
struct rights_message {
  char byte;
  struct iovec iov;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } control;
  struct msghdr msg;
};
static void make_rights(struct rights_message* m, int fd, size_t controllen, size_t cmsg_len) {
  memset(m, 0, sizeof *m);
  m->byte = 'F';
  m->iov = (struct iovec){&m->byte, 1};
  m->msg = (struct msghdr){.msg_iov = &m->iov, .msg_iovlen = 1, .msg_control = m->control.buf,
                           .msg_controllen = controllen};
  struct cmsghdr* c = CMSG_FIRSTHDR(&m->msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = cmsg_len;
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
}

/* sendmsg with SCM_RIGHTS, errno set to EDOM first: a sendmsg that works
 * leaves it as it was. */
static void send_fd(int channel, int fd) {
  struct rights_message m;
  make_rights(&m, fd, CMSG_SPACE(sizeof(int)), CMSG_LEN(sizeof(int)));
  errno = EDOM;
  if (sendmsg(channel, &m.msg, 0) != 1) die("sendmsg");
  if (errno != EDOM) printf("sendmsg changed errno to %s\n", strerror(errno));
}

/* A malformed SCM_RIGHTS message naming `fd`: its cmsg_len runs 4 bytes
 * past the control buffer. The kernel refuses it whole (EINVAL), nothing
 * passed: the socket stays as it was. */
static void send_malformed(int channel, int fd) {
  struct rights_message m;
  make_rights(&m, fd, CMSG_LEN(sizeof(int)), CMSG_LEN(2 * sizeof(int)));
  ssize_t n = sendmsg(channel, &m.msg, 0);
  printf("malformed sendmsg: %zd %s\n", n, n < 0 ? strerror(errno) : "");
}

static int receive_fd(int channel) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  if (recvmsg(channel, &msg, 0) != 1) die("recvmsg");
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) die("no descriptor passed");
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* A line from a connection (up to its newline), answered. */
static void answer_connection(int c, const char* who) {
  char line[256];
  size_t have = 0;
  while (have < sizeof line - 1) {
    ssize_t n = read(c, line + have, sizeof line - 1 - have);
    if (n <= 0) die("read");
    have += (size_t)n;
    if (memchr(line, '\n', have)) break;
  }
  line[have] = 0;
  char* nl = strchr(line, '\n');
  if (nl) *nl = 0;
  char reply[300];
  int len = snprintf(reply, sizeof reply, "echo: %s\n", line);
  if (write(c, reply, (size_t)len) != len) die("write");
  printf("%s: read \"%s\", answered\n", who, line);
  close(c);
}

static int receiver(const char* mode, int channel) {
  int fd = receive_fd(channel);
  printf("receiver: got a descriptor\n");
  if (!strcmp(mode, "listener")) {
    int c = accept(fd, NULL, NULL);
    if (c < 0) die("accept");
    answer_connection(c, "receiver");
  } else if (!strcmp(mode, "udp")) {
    char buf[256];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr*)&from, &fl);
    if (n < 0) die("recvfrom");
    buf[n] = 0;
    char reply[300];
    int len = snprintf(reply, sizeof reply, "echo: %s", buf);
    if (sendto(fd, reply, (size_t)len, 0, (struct sockaddr*)&from, fl) != len) die("sendto");
    printf("receiver: datagram \"%s\" answered\n", buf);
  } else {
    answer_connection(fd, "receiver");
  }
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && !strcmp(argv[1], "receive")) return receiver(argv[2], CHANNEL_FD);
  if (argc < 4) {
    fprintf(stderr, "usage: pass_descriptor MODE ADDR PORT\n");
    return 2;
  }
  const char* mode = argv[1];
  const int forked = !strncmp(mode, "forked-", 7);
  const char* what = forked ? mode + 7 : mode;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  const int udp = !strcmp(what, "udp");
  int s = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr*)&a, sizeof a) != 0) die("bind");
  if (!udp && listen(s, 8) != 0) die("listen");
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) die("socketpair");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sp[0]);
    close(s);
    if (!strcmp(what, "malformed")) {
      char b;
      _exit(read(sp[1], &b, 1) == 0 ? 0 : 1); /* (nothing arrives: EOF) */
    }
    if (forked) _exit(receiver(what, sp[1]));
    if (dup2(sp[1], CHANNEL_FD) < 0) die("dup2");
    execl("/proc/self/exe", argv[0], "receive", what, (char*)NULL);
    die("exec");
  }
  close(sp[1]);
  if (!strcmp(what, "malformed")) {
    /* No receiver: the child waits for the channel's end. */
    send_malformed(sp[0], s);
    printf("ready\n");
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept");
    answer_connection(c, "sender");
    close(sp[0]);
  } else if (!strcmp(what, "connection")) {
    printf("ready\n");
    fflush(stdout);
    /* The client's line is there before the connection is passed. */
    struct pollfd p = {s, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) die("poll");
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept");
    p.fd = c;
    if (poll(&p, 1, 10000) != 1) die("poll for the line");
    usleep(100000);
    printf("sender: passes the connection with its line unread\n");
    fflush(stdout);
    send_fd(sp[0], c);
    close(c);
  } else {
    printf("sender: passes the %s\n", udp ? "UDP socket" : "listener");
    fflush(stdout);
    send_fd(sp[0], s);
    /* (The UDP socket's copy stays open here meanwhile, as a process that
     * goes on using it would: the datagram must reach the receiver.) */
    if (!udp) close(s);
    /* (The client starts only now: a SYN or datagram that reached the
     * stack before the hand-over would be reset or dropped.) */
    printf("ready\n");
    fflush(stdout);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  printf("receiver exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
