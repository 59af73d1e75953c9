// A flush pass's sends as one io_uring batch (server/transport/send_batch.hpp): every queued send
// reaches its socket and its owner gets the same result its own sendmsg would have (bytes, or
// -errno: would-block, a gone peer); a full batch refuses more; and the server's fan-out uses it
// (and does not with --io-uring off).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "server/app/server.hpp"
#include "server/transport/send_batch.hpp"
#include "test_client.hpp"

namespace ps = pushwire::server;
using namespace test;

namespace {

struct result_sink : ps::batch_sender {
  std::vector<long> results;
  void batch_sent(long r) override { results.push_back(r); }
};

// A socket pair and one message for it, held while the batch runs.
struct pipe_and_message {
  int fd[2] = {-1, -1};
  std::string text;
  iovec iov{};
  msghdr mh{};
  explicit pipe_and_message(std::string t) : text(std::move(t)) {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    iov = iovec{text.data(), text.size()};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
  }
  ~pipe_and_message() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  std::string received() {
    std::string out(text.size() + 16, '\0');
    auto n = recv(fd[1], out.data(), out.size(), MSG_DONTWAIT);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
  }
};

TEST(SendBatch, EverySendReachesItsSocketAndItsOwnerGetsTheByteCount) {
  ps::send_batch b;
  ASSERT_TRUE(b.enable(8));
  std::vector<std::unique_ptr<pipe_and_message>> pipes;
  std::vector<std::shared_ptr<result_sink>> owners;
  for (int i = 0; i < 3; ++i) {
    pipes.push_back(std::make_unique<pipe_and_message>("message " + std::to_string(i)));
    owners.push_back(std::make_shared<result_sink>());
    ASSERT_TRUE(b.add(pipes[i]->fd[0], &pipes[i]->mh, owners[i]));
  }
  b.run();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(owners[i]->results.size(), 1u);
    EXPECT_EQ(owners[i]->results[0], static_cast<long>(pipes[i]->text.size()));
    EXPECT_EQ(pipes[i]->received(), pipes[i]->text);
  }
  // The ring is reused by the next pass.
  auto again = std::make_shared<result_sink>();
  ASSERT_TRUE(b.add(pipes[0]->fd[0], &pipes[0]->mh, again));
  b.run();
  EXPECT_EQ(again->results, std::vector<long>{static_cast<long>(pipes[0]->text.size())});
}

TEST(SendBatch, AFullBatchRefusesMoreAndTheCallerSendsItself) {
  ps::send_batch b;
  ASSERT_TRUE(b.enable(2));
  pipe_and_message p("x");
  auto o = std::make_shared<result_sink>();
  EXPECT_TRUE(b.add(p.fd[0], &p.mh, o));
  EXPECT_TRUE(b.add(p.fd[0], &p.mh, o));
  EXPECT_TRUE(b.full());
  EXPECT_FALSE(b.add(p.fd[0], &p.mh, o));
  b.run();
  EXPECT_EQ(o->results.size(), 2u);
  EXPECT_FALSE(b.full());
}

TEST(SendBatch, AFullSocketAnswersWouldBlockInsteadOfWaiting) {
  ps::send_batch b;
  ASSERT_TRUE(b.enable(4));
  pipe_and_message p(std::string(4096, 'y'));
  int small = 4096;
  setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  while (send(p.fd[0], p.text.data(), p.text.size(), MSG_DONTWAIT) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  auto o = std::make_shared<result_sink>();
  ASSERT_TRUE(b.add(p.fd[0], &p.mh, o));
  b.run();   // returns at once: the send is not parked in the kernel
  EXPECT_EQ(o->results, std::vector<long>{-EAGAIN});
}

TEST(SendBatch, AGonePeerIsReportedAsItsError) {
  ps::send_batch b;
  ASSERT_TRUE(b.enable(4));
  pipe_and_message p("z");
  close(p.fd[1]);
  p.fd[1] = -1;
  auto o = std::make_shared<result_sink>();
  ASSERT_TRUE(b.add(p.fd[0], &p.mh, o));
  b.run();
  EXPECT_EQ(o->results, std::vector<long>{-EPIPE});
}

TEST(SendBatch, DisabledRefusesEverySend) {
  ps::send_batch b;
  pipe_and_message p("w");
  EXPECT_FALSE(b.enabled());
  EXPECT_FALSE(b.full());   // a flush slice without a batch is bounded by its time alone
  EXPECT_FALSE(b.add(p.fd[0], &p.mh, std::make_shared<result_sink>()));
  b.run();   // nothing queued: nothing happens
}

// Three WebSocket subscribers, ten publications: each gets all ten in order, and the fan-out's
// writes went through the batch only when --io-uring is on.
std::uint64_t batched_sends_for(bool io_uring) {
  ps::config c;
  c.port = 0;
  c.threads = 1;
  c.api_key = "key";
  c.log_level = "error";
  c.io_uring = io_uring;
  c.shutdown_timeout_ms = 200;
  ps::server srv(c);
  std::string err;
  EXPECT_TRUE(srv.start(err)) << err;
  auto subs = subscribed_ws_clients(srv.port(), 3, "batch");
  for (int m = 1; m <= 10; ++m)
    EXPECT_EQ(api_post(srv.port(), "/api/publish", R"({"channel":"batch","data":)" + std::to_string(m) + "}").status, 200u);
  for (auto& s : subs)
    for (int m = 1; m <= 10; ++m) {
      auto f = s->next_non_ping();
      EXPECT_EQ(f.kind, pp::frame_kind::message);
      EXPECT_EQ(f.data, std::to_string(m));
    }
  return srv.stats().sends_batched.load();
}

TEST(SendBatch, TheServersFanOutGoesOutInBatchesUnlessTurnedOff) {
  EXPECT_GT(batched_sends_for(true), 0u);
  EXPECT_EQ(batched_sends_for(false), 0u);
}

}  // namespace
