// Idempotency keys of API publishes against the real server (issue 18, defect 3): one publication
// per key even when retries race, keys scoped to their channel, the key reused with other data
// refused (409, 4023), and the key's length bounded (--max-idempotency-key-bytes, 400 over it).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server/app/server.hpp"
#include "server/ops/config.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
namespace json = boost::json;
using namespace test;

class Idempotency : public ::testing::Test {
 protected:
  void start(std::size_t max_key_bytes = 128) {
    ps::config c;
    c.port = 0;
    c.threads = 2;
    c.api_key = "key";
    c.log_level = "error";
    c.history_size = 1000;
    c.max_idempotency_key_bytes = max_key_bytes;
    srv_ = std::make_unique<ps::server>(c);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port_ = srv_->port();
  }
  void SetUp() override { start(); }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  static std::string body(const std::string& channel, const std::string& data, const std::string& key) {
    json::object o{{"channel", channel}, {"data", json::parse(data)}, {"idempotency_key", key}};
    return json::serialize(o);
  }
  http_result publish(const std::string& channel, const std::string& data, const std::string& key) {
    return api_post(port_, "/api/publish", body(channel, data, key));
  }
  std::size_t history_size(const std::string& channel) {
    auto r = api_get(port_, "/api/history?channel=" + channel);
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body).at("publications").as_array().size();
  }
  static std::uint64_t offset_of(const http_result& r) {
    return json::parse(r.body).at("offset").to_number<std::uint64_t>();
  }

  std::unique_ptr<ps::server> srv_;
  unsigned short port_ = 0;
};

// The reproduction: 8 concurrent requests per key, over many keys; before the fix two requests of
// one key could both miss the look-up and both publish.
TEST_F(Idempotency, ConcurrentRetriesOfOneKeyPublishOnce) {
  constexpr int keys = 300, threads = 8;
  std::mutex mu;
  std::map<int, std::set<std::uint64_t>> offsets;   // key -> every offset answered for it
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      api_client c(port_);   // keep-alive: the threads' requests of one key overlap
      for (int k = 0; k < keys; ++k) {
        auto key = std::to_string(k);
        auto r = c.post("/api/publish", body("race", key, "k-" + key));
        ASSERT_EQ(r.status, 200u) << r.body;
        std::lock_guard lk(mu);
        offsets[k].insert(offset_of(r));
      }
    });
  for (auto& t : ts) t.join();
  for (auto& [k, o] : offsets) EXPECT_EQ(o.size(), 1u) << "key " << k << " answered several offsets";
  EXPECT_EQ(history_size("race"), static_cast<std::size_t>(keys));
}

TEST_F(Idempotency, KeysAreScopedToTheirChannel) {
  auto a = publish("a", "1", "shared");
  ASSERT_EQ(a.status, 200u) << a.body;
  auto b = publish("b", "1", "shared");   // before the fix: 200 with a's position, nothing on b
  ASSERT_EQ(b.status, 200u) << b.body;
  EXPECT_EQ(json::parse(b.body).at("channel").as_string(), "b");
  EXPECT_EQ(history_size("b"), 1u);
  auto again = publish("b", "1", "shared");
  EXPECT_EQ(again.body, b.body);
  EXPECT_EQ(history_size("b"), 1u);
}

TEST_F(Idempotency, TheKeyWithOtherDataIsAConflict) {
  auto first = publish("c", R"({"n":1})", "k");
  ASSERT_EQ(first.status, 200u);
  auto other = publish("c", R"({"n":2})", "k");
  EXPECT_EQ(other.status, 409u) << other.body;
  EXPECT_NE(other.body.find("4023"), std::string::npos) << other.body;
  EXPECT_EQ(history_size("c"), 1u);
  EXPECT_EQ(publish("c", R"({"n":1})", "k").body, first.body);   // the true retry still works
}

TEST_F(Idempotency, KeyLengthIsBounded) {
  TearDown();
  start(16);
  EXPECT_EQ(publish("d", "1", std::string(16, 'k')).status, 200u);
  auto over = publish("d", "1", std::string(17, 'k'));
  EXPECT_EQ(over.status, 400u) << over.body;
  EXPECT_EQ(history_size("d"), 1u);
  TearDown();
  start();   // the default: 128
  EXPECT_EQ(publish("d", "1", std::string(128, 'k')).status, 200u);
  EXPECT_EQ(publish("d", "2", std::string(129, 'k')).status, 400u);
}

}  // namespace
