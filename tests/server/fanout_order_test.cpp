// Fan-out order under concurrent publishers: publications of one channel published from several
// connections at once (so from several I/O threads) reach every subscriber exactly once, in offset
// order. (Per-message posts to the I/O threads were once reordered by Asio, and the subscriber's
// duplicate filter then dropped the overtaken frame: see worker in server/net.hpp.)
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "server/app/server.hpp"
#include "test_client.hpp"

namespace ps = pushwire::server;
using namespace test;

namespace {

class keep_alive_publisher {
 public:
  explicit keep_alive_publisher(unsigned short port) : s_(connect_socket(ioc_, port)) {}
  unsigned publish(const std::string& channel, const std::string& data) {
    http::request<http::string_body> req{http::verb::post, "/api/publish", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer key");
    req.body() = R"({"channel":")" + channel + R"(","data":)" + data + "}";
    req.prepare_payload();
    beast::error_code ec;
    http::write(s_, req, ec);
    if (ec) return 0;
    http::response<http::string_body> res;
    http::read(s_, buf_, res, ec);
    return ec ? 0 : res.result_int();
  }

 private:
  net::io_context ioc_;
  tcp::socket s_;
  beast::flat_buffer buf_;
};

}  // namespace

TEST(FanoutOrder, ConcurrentPublishersNeitherLoseNorReorder) {
  ps::config c;
  c.port = 0;
  c.threads = 2;
  c.api_key = "key";
  c.log_level = "warn";
  c.history_size = 10;
  c.shutdown_timeout_ms = 500;
  ps::server srv(c);
  std::string err;
  ASSERT_TRUE(srv.start(err)) << err;

  constexpr int publishers = 4, per_publisher = 250, total = publishers * per_publisher;
  auto subs = subscribed_ws_clients(srv.port(), 4, "race");
  if (HasFailure()) return;   // (every subscriber must be in before the race starts)
  std::vector<std::unique_ptr<keep_alive_publisher>> pubs;
  for (int p = 0; p < publishers; ++p) pubs.push_back(std::make_unique<keep_alive_publisher>(srv.port()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_publisher; ++i)
        if (pubs[p]->publish("race", std::to_string(i)) != 200) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (auto& s : subs) {
    for (std::uint64_t expected = 1; expected <= total; ++expected) {
      auto f = s->next_non_ping();
      ASSERT_EQ(f.kind, pp::frame_kind::message) << f.reason;
      ASSERT_EQ(f.pos.offset, expected);
    }
  }
  for (auto& s : subs) s->close();
  srv.shutdown();
}
