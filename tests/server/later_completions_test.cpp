// The shells with stores that complete later, on another thread — as a store behind the network
// will: a broker that confirms each channel subscription from its own thread after a delay. Every
// transport must still subscribe, replay and deliver exactly once (this found a long-poll that was
// dropped while it waited, and subscribe completions that were lost on the wrong thread).
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "server/app/server.hpp"
#include "server/hub/memory/memory_broker.hpp"
#include "server/node/node.hpp"
#include "tests/server/test_client.hpp"

namespace ps = pushwire::server;
using namespace test;

namespace {

// A memory broker whose subscribe() confirms from a thread of its own, 2 ms later.
class deferred_broker final : public ps::broker {
 public:
  deferred_broker() : thread_([this] { run(); }) {}
  ~deferred_broker() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void set_listener(ps::broker_listener* l) override { inner_.set_listener(l); }
  void publish(const ps::publication_ptr& p) override { inner_.publish(p); }
  void publish_event(const ps::channel_event_ptr& e) override { inner_.publish_event(e); }
  void publish_disconnect(const ps::disconnect_order& d) override { inner_.publish_disconnect(d); }
  void subscribe(std::string_view, std::function<void()> done) override {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(done));
    ++confirmed_later;
    cv_.notify_all();
  }
  void unsubscribe(std::string_view) override {}
  static inline std::atomic<int> confirmed_later{0};

 private:
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      auto done = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));   // the "network round trip"
      done();
      lk.lock();
    }
  }
  ps::memory_broker inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class LaterCompletions : public ::testing::Test {
 protected:
  void SetUp() override {
    ps::config c;
    c.port = 0;
    c.api_key = "key";
    c.threads = 2;
    c.log_level = "warn";
    c.poll_hold_ms = 3000;
    ps::store_maker make = [](const ps::config& cfg, const ps::clock& clk) {
      auto s = ps::node::memory_stores(cfg, clk);
      s.brk = std::make_unique<deferred_broker>();
      return s;
    };
    srv_ = std::make_unique<ps::server>(c, nullptr, make);
    std::string err;
    ASSERT_TRUE(srv_->start(err)) << err;
    port_ = srv_->port();
  }
  void TearDown() override { srv_->shutdown(); }
  std::string publish(const std::string& ch, int n) {
    auto r = http_call(port_, http::verb::post, "/api/publish", R"({"channel":")" + ch + R"(","data":)" + std::to_string(n) + "}",
                       {{"Authorization", "Bearer key"}});
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.body;
  }
  std::unique_ptr<ps::server> srv_;
  unsigned short port_ = 0;
};

}  // namespace

TEST_F(LaterCompletions, WebSocketSubscribeReplayAndLive) {
  auto before = deferred_broker::confirmed_later.load();
  publish("w", 1);
  publish("w", 2);
  auto body = publish("w", 3);
  auto epoch = body.substr(body.find("\"epoch\":\"") + 9, 8);
  ws_client c(port_);
  c.connect();
  c.send(R"({"cmd":"subscribe","id":2,"channel":"w","since":{"epoch":")" + epoch + R"(","offset":1}})");
  auto s = c.next_non_ping();
  ASSERT_EQ(s.kind, pp::frame_kind::subscribed) << s.reason;
  EXPECT_EQ(s.recovered, true);
  publish("w", 4);
  for (std::uint64_t want = 2; want <= 4; ++want) {
    auto f = c.next_non_ping();
    ASSERT_EQ(f.kind, pp::frame_kind::message) << f.reason;
    EXPECT_EQ(f.pos.offset, want);
  }
  EXPECT_GT(deferred_broker::confirmed_later.load(), before);   // the late path really ran
}

TEST_F(LaterCompletions, SseSubscribeAndLive) {
  sse_client s(port_, "/sse?channels=s");
  ASSERT_EQ(s.status, 200u);
  EXPECT_EQ(s.next_non_ping().event, "control");   // connected
  EXPECT_NE(s.next_non_ping().data.find("\"subscribed\""), std::string::npos);
  publish("s", 1);
  auto e = s.next_non_ping();
  EXPECT_NE(e.data.find("\"offset\":1"), std::string::npos) << e.data;
}

// Many polls on two threads subscribing to one channel at once, while it is published to: every
// poll is answered (none is dropped while its subscribe waits) and no message is lost.
TEST_F(LaterCompletions, ConcurrentLongPollsAllAnsweredNothingLost) {
  constexpr int pollers = 8, messages = 20;
  std::vector<std::thread> threads;
  std::atomic<int> complete{0}, opened{0};
  for (int i = 0; i < pollers; ++i) {
    threads.emplace_back([&] {
      auto first = http_call(port_, http::verb::get, "/poll?channels=p&open=1");
      ++opened;
      std::string cursor = first.headers["Pushwire-Cursor"];
      std::string client = first.body.substr(first.body.find("\"client\":\"") + 10);
      client = client.substr(0, client.find('"'));
      int seen = 0;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (seen < messages && std::chrono::steady_clock::now() < deadline) {
        auto r = http_call(port_, http::verb::get, "/poll?channels=p&client=" + client + "&cursor=" + cursor, {}, {}, 5000);
        if (r.status != 200) return;
        cursor = r.headers["Pushwire-Cursor"];
        for (auto& l : lines(r.body))
          if (parse(l).kind == pp::frame_kind::message) ++seen;
      }
      if (seen == messages) ++complete;
    });
  }
  // Publish once every poller has its starting cursor (their next polls subscribe concurrently).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (opened.load() < pollers && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  for (int n = 1; n <= messages; ++n) publish("p", n);
  for (auto& t : threads) t.join();
  EXPECT_EQ(complete.load(), pollers);
}

TEST_F(LaterCompletions, CmdAnswersOnceItsSubscribeCompleted) {
  auto r = http_call(port_, http::verb::post, "/cmd",
                     "{\"cmd\":\"connect\",\"id\":1}\n{\"cmd\":\"subscribe\",\"id\":2,\"channel\":\"c\"}\n");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("\"subscribed\""), std::string::npos) << r.body;
}
