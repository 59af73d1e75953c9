// Black-box tests of the HTTP API endpoints that had none: /api/publish_batch results,
// /api/channels and /api/history with `since` and `limit` (docs/protocol.md "HTTP API"). A real
// server in-process on an ephemeral port of 127.0.0.1, real sockets.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/ops/config.hpp"
#include "server/app/server.hpp"
#include "tests/server/test_client.hpp"

namespace {

namespace ps = pushwire::server;
namespace json = boost::json;
using namespace test;
using namespace std::chrono_literals;
using pushwire::protocol::frame_kind;
using clk = std::chrono::steady_clock;

ps::config base_config() {
  ps::config c;
  c.port = 0;
  c.threads = 2;
  c.api_key = "key";
  c.log_level = "error";
  c.history_size = 100;
  c.max_message_bytes = 100;
  c.housekeeping_ms = 20;
  c.shutdown_timeout_ms = 500;
  return c;
}

pp::frame next_frame(ws_client& c) {
  return c.next_non_ping();
}

std::uint64_t num(const json::value& v, std::string_view key) { return v.as_object().at(key).to_number<std::uint64_t>(); }
std::string str(const json::value& v, std::string_view key) { return std::string(v.as_object().at(key).as_string()); }

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    srv_ = std::make_unique<ps::server>(base_config());
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port = srv_->port();
  }
  void TearDown() override {
    if (srv_) srv_->shutdown();
  }
  http_result get(const std::string& target) { return api_get(port, target); }
  http_result post(const std::string& target, const std::string& body) { return api_post(port, target, body); }
  json::value parse_body(const http_result& r) {
    beast::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "not a JSON object: " << r.body;
      return json::object{};
    }
    return v;
  }
  // Offsets and data of /api/history?<query>, and the answer's epoch and offset.
  struct history {
    std::string epoch;
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    std::vector<std::string> data;
  };
  history history_of(const std::string& query) {
    auto r = get("/api/history?" + query);
    EXPECT_EQ(r.status, 200u) << r.body;
    history h;
    auto v = parse_body(r);
    if (r.status != 200u) return h;
    h.epoch = str(v, "epoch");
    h.offset = num(v, "offset");
    for (auto& p : v.at("publications").as_array()) {
      h.offsets.push_back(num(p, "offset"));
      h.data.push_back(json::serialize(p.at("data")));
    }
    return h;
  }
  json::value channel_entry(const std::string& channel) {
    auto all = parse_body(get("/api/channels"));   // a named value: the loop below refers into it
    for (auto& c : all.at("channels").as_array())
      if (str(c, "channel") == channel) return c;
    return nullptr;
  }
  std::uint64_t error_code_of(const http_result& r) {
    auto v = parse_body(r);
    auto* e = v.as_object().if_contains("error");
    return e ? num(*e, "code") : 0;
  }

  std::unique_ptr<ps::server> srv_;
  unsigned short port = 0;
};

// Every message gets its own result, in order: a position, or its error inline (the batch itself is
// 200); a failed message takes no offset, a repeated idempotency key returns the first result, and
// the key reused with other data is refused (4023).
TEST_F(Api, PublishBatchAnswersEachMessageInOrder) {
  std::string too_big = "\"" + std::string(99, 'a') + "\"";   // 101 bytes > max_message_bytes 100
  auto r = post("/api/publish_batch", R"({"messages":[)"
                                      R"({"channel":"b","data":{"n":1}},)"
                                      R"({"channel":"nope:x","data":1},)"
                                      R"({"channel":"b","data":{"n":2}},)"
                                      R"({"channel":"b"},)"
                                      R"({"channel":"b","data":)" + too_big + "}," +
                                      R"(42,)"
                                      R"({"channel":"other","data":1},)"
                                      R"({"channel":"b","data":3,"idempotency_key":"k"},)"
                                      R"({"channel":"b","data":3,"idempotency_key":"k"},)"
                                      R"({"channel":"b","data":4,"idempotency_key":"k"})"
                                      "]}");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto results = parse_body(r).at("results").as_array();
  ASSERT_EQ(results.size(), 10u) << r.body;
  auto ok = [&](std::size_t i, const char* channel, std::uint64_t offset) {
    auto& o = results[i].as_object();
    ASSERT_FALSE(o.contains("error")) << i << ": " << json::serialize(o);
    EXPECT_EQ(str(o, "channel"), channel) << i;
    EXPECT_EQ(num(o, "offset"), offset) << i;
    EXPECT_FALSE(str(o, "epoch").empty()) << i;
  };
  auto failed = [&](std::size_t i, std::uint64_t code) {
    auto* e = results[i].as_object().if_contains("error");
    ASSERT_TRUE(e) << i << ": " << json::serialize(results[i]);
    EXPECT_EQ(num(*e, "code"), code) << i;
    EXPECT_FALSE(str(*e, "reason").empty()) << i;
  };
  ok(0, "b", 1);
  failed(1, 4002);   // namespace not configured
  ok(2, "b", 2);
  failed(3, 4000);   // no data
  failed(4, 4007);   // payload over the limit
  failed(5, 4000);   // not an object
  ok(6, "other", 1);
  ok(7, "b", 3);
  ok(8, "b", 3);     // same idempotency key: the first result, nothing published
  failed(9, 4023);   // same key, other data
  EXPECT_EQ(str(results[0], "epoch"), str(results[2], "epoch"));
  auto h = history_of("channel=b");
  EXPECT_EQ(h.offsets, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(h.data, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", "3"}));
}

TEST_F(Api, ChannelsListsPositionsAndSubscribers) {
  ws_client a(port), b(port);
  for (auto* c : {&a, &b}) {
    c->send(R"({"cmd":"connect","id":1})");
    ASSERT_EQ(next_frame(*c).kind, frame_kind::connected);
    c->send(R"({"cmd":"subscribe","id":2,"channel":"cha"})");
    ASSERT_EQ(next_frame(*c).kind, frame_kind::subscribed);
  }
  std::string epoch_a, epoch_b;
  for (int i = 0; i < 3; ++i) {
    auto r = post("/api/publish", R"({"channel":"cha","data":1})");
    epoch_a = str(parse_body(r), "epoch");
  }
  epoch_b = str(parse_body(post("/api/publish", R"({"channel":"chb","data":1})")), "epoch");
  auto a_entry = channel_entry("cha"), b_entry = channel_entry("chb");
  ASSERT_FALSE(a_entry.is_null());
  ASSERT_FALSE(b_entry.is_null());
  EXPECT_EQ(str(a_entry, "epoch"), epoch_a);
  EXPECT_EQ(num(a_entry, "offset"), 3u);
  EXPECT_EQ(num(a_entry, "subscribers"), 2u);
  EXPECT_EQ(str(b_entry, "epoch"), epoch_b);
  EXPECT_EQ(num(b_entry, "offset"), 1u);
  EXPECT_EQ(num(b_entry, "subscribers"), 0u);
  EXPECT_TRUE(channel_entry("never").is_null());
  // A subscriber that leaves is no longer counted.
  b.close();
  EXPECT_TRUE(eventually([&] { return num(channel_entry("cha"), "subscribers") == 1; }));
}

TEST_F(Api, HistorySinceLimitAndEpoch) {
  std::string epoch;
  for (int i = 1; i <= 5; ++i)
    epoch = str(parse_body(post("/api/publish", R"({"channel":"h","data":)" + std::to_string(i) + "}")), "epoch");
  using offsets = std::vector<std::uint64_t>;
  auto h = history_of("channel=h&since=" + epoch + "-2");
  EXPECT_EQ(h.offsets, (offsets{3, 4, 5}));
  EXPECT_EQ(h.data, (std::vector<std::string>{"3", "4", "5"}));
  EXPECT_EQ(h.epoch, epoch);
  EXPECT_EQ(h.offset, 5u);
  EXPECT_EQ(history_of("channel=h&since=" + epoch + "-2&limit=2").offsets, (offsets{3, 4}));
  EXPECT_EQ(history_of("channel=h&since=" + epoch + "-0").offsets, (offsets{1, 2, 3, 4, 5}));
  EXPECT_TRUE(history_of("channel=h&since=" + epoch + "-5").offsets.empty());
  // A position in another epoch is another run of history: nothing of this one is "after" it.
  std::string other = epoch == "zzzz" ? "yyyy" : "zzzz";
  h = history_of("channel=h&since=" + other + "-2");
  EXPECT_TRUE(h.offsets.empty());
  EXPECT_EQ(h.epoch, epoch);
  EXPECT_EQ(h.offset, 5u);
  // Without since, limit keeps the newest.
  EXPECT_EQ(history_of("channel=h&limit=2").offsets, (offsets{4, 5}));
  EXPECT_EQ(history_of("channel=h").offsets, (offsets{1, 2, 3, 4, 5}));
  for (std::string bad : {std::string("garbage"), epoch + "-1." + epoch + "-2"}) {
    auto r = get("/api/history?channel=h&since=" + bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(error_code_of(r), 4014u) << bad << ": " << r.body;
  }
}

}  // namespace
