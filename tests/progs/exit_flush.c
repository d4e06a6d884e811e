// A program whose only output waits in stdio's buffer until exit() flushes
// it, after every destructor (the preloaded library's included), into a
// pipe whose reader is gone: the kernel sends SIGPIPE, whose default
// action ends the program (status 141), with or without the library.
// It sends a datagram first, so that the library's stack, and the catchers
// it puts on default-action signals while the stack runs, are there.
//   exit_flush IP
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
  if (s < 0 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  if (sendto(s, "x", 1, 0, (struct sockaddr*)&to, sizeof to) != 1) return 2;
  // Until the reader has closed its end (a pipe without readers polls
  // POLLERR), at most 5 s.
  struct pollfd out = {.fd = 1, .events = POLLOUT};
  for (int i = 0; i < 50 && !(out.revents & POLLERR); ++i) poll(&out, 1, 100);
  printf("left for exit() to flush\n");
  return 0;
}
