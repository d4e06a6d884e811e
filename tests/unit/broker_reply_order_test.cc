// A program's requests to its broker (rings/broker_client.h) against a
// broker that answers late: the answer that comes after its caller gave up
// must not be taken for the next request's, and a descriptor it brings must
// be closed. The broker here is this test's thread on the other end of a
// socketpair, speaking rings/broker_protocol.h.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "rings/broker_client.h"
#include "rings/broker_protocol.h"

namespace xdpload::rings {
namespace {

// Reads one request of `len` bytes; its number.
uint32_t read_request(int conn, size_t len) {
  char buf[512];
  ssize_t n = recv(conn, buf, sizeof buf, 0);
  EXPECT_EQ(n, ssize_t(len));
  broker::Header h;
  memcpy(&h, buf, sizeof h);
  return h.seq;
}

void answer(int conn, uint32_t seq, int status, int fd = -1) {
  broker::Reply r;
  r.h.seq = seq;
  r.status = status;
  snprintf(r.text, sizeof r.text, "status %d", status);
  ASSERT_EQ(send_with_fd(conn, &r, sizeof r, fd), 0);
}

TEST(BrokerReplyOrder, AnAnswerTooLateIsNotTakenForTheNextRequestsAndItsSocketIsClosed) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  // The broker: answers the Finish (request 20) past the program's timeout,
  // with a descriptor as a Finish does and a refusal's status; then request
  // 21 at once.
  std::thread slow_broker([&] {
    uint32_t first = read_request(sv[1], sizeof(broker::HandoverMsg));
    EXPECT_EQ(first, 20u);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    answer(sv[1], first, EEXIST, pipe_fds[1]);
    close(pipe_fds[1]);
    uint32_t second = read_request(sv[1], sizeof(broker::PortMsg));
    EXPECT_EQ(second, 21u);
    answer(sv[1], second, 0);
  });

  RepairState state{};
  int handed = -2;
  ErrorText why;
  EXPECT_EQ(broker_handover(sv[0], 20, broker::kHandoverFinish, state, nullptr, nullptr, &handed,
                            &why),
            -ETIMEDOUT);
  EXPECT_EQ(handed, -1);
  // Request 21 waits past the late answer (already queued or arriving) to
  // its own: 0, not the late EEXIST.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(broker_release(sv[0], 21, IPPROTO_UDP, 9000), 0);
  slow_broker.join();

  // The late answer's descriptor was the only writer left: closed, the
  // pipe reads end of file.
  pollfd p{pipe_fds[0], POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_TRUE(p.revents & POLLHUP);
  close(pipe_fds[0]);
  close(sv[0]);
  close(sv[1]);
}

TEST(BrokerReplyOrder, TheHelloAndRequestsCarryTheirNumbers) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  std::thread broker_side([&] {
    EXPECT_EQ(read_request(sv[1], sizeof(broker::PortMsg)), 5u);
    answer(sv[1], 4, EEXIST);  // another request's: skipped
    answer(sv[1], 5, ENOENT);
  });
  ErrorText why;
  EXPECT_EQ(broker_claim(sv[0], 5, IPPROTO_TCP, 80, -1, &why), -ENOENT);
  broker_side.join();
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace xdpload::rings
