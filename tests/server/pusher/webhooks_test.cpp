// The Pusher webhook sender (server/pusher/webhooks.hpp): its queue bound, its event filter and its
// bounded retries. Delivery, batching and the signature are checked against the `pusher` SDK's own
// webhook checker in tests/pusher/webhooks.test.mjs.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <thread>

#include "server/ops/metrics.hpp"
#include "server/pusher/webhooks.hpp"

namespace {

namespace ps = pushwire::server;
namespace net = boost::asio;

ps::pusher_app app_with(std::string url, std::vector<std::string> events = {}) {
  ps::pusher_app a;
  a.id = "1";
  a.key = "key";
  a.secret = "secret";
  a.webhooks.push_back(ps::pusher_webhook{std::move(url), std::move(events)});
  return a;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds within = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return f();
}

TEST(PusherWebhooks, QueueIsBoundedAndDropsTheNewest) {
  ps::metrics m;
  std::vector<ps::pusher_app> apps{app_with("http://127.0.0.1:9/")};
  ps::webhook_options o;
  o.max_queue = 3;
  ps::pusher_webhooks w(apps, o, m);   // not started: nothing leaves the queue
  for (int i = 0; i < 5; ++i) { std::string ch = "ch"; ch += std::to_string(i); w.occupied(apps[0], ch); }
  EXPECT_EQ(w.queued(), 3u);
  EXPECT_EQ(m.pusher_webhook_events_dropped.load(), 2u);
  w.stop(std::chrono::milliseconds(0));   // what is left at stop is dropped and counted too
  EXPECT_EQ(m.pusher_webhook_events_dropped.load(), 5u);
  w.vacated(apps[0], "late");
  EXPECT_EQ(m.pusher_webhook_events_dropped.load(), 6u);
}

TEST(PusherWebhooks, OnlyTheKindsAWebhookAsksFor) {
  ps::metrics m;
  std::vector<ps::pusher_app> apps{app_with("http://127.0.0.1:9/", {"channel_vacated", "member_added"})};
  ps::pusher_webhooks w(apps, {}, m);
  w.occupied(apps[0], "a");
  w.member_removed(apps[0], "presence-a", "u");
  w.client_event(apps[0], "private-a", "client-x", "{}", "1.2", "");
  EXPECT_EQ(w.queued(), 0u);
  w.vacated(apps[0], "a");
  w.member_added(apps[0], "presence-a", "u");
  EXPECT_EQ(w.queued(), 2u);
  // Another app (by id) has no webhooks here.
  auto other = apps[0];
  other.id = "2";
  w.vacated(other, "a");
  EXPECT_EQ(w.queued(), 2u);
}

TEST(PusherWebhooks, HubOccupancyGoesToTheOwningApp) {
  ps::metrics m;
  auto a = app_with("http://127.0.0.1:9/");
  a.ns = "shop";
  std::vector<ps::pusher_app> apps{a};
  ps::pusher_webhooks w(apps, {}, m);
  w.hub_occupancy("news", true);        // the default namespace: not this app's
  w.hub_occupancy("other:x", true);
  EXPECT_EQ(w.queued(), 0u);
  w.hub_occupancy("shop:orders", true);
  w.hub_occupancy("shop:orders", false);
  EXPECT_EQ(w.queued(), 2u);
}

// A receiver that accepts and closes at once (or, `hold`, keeps the socket and never answers):
// every attempt fails; it counts them.
struct refusing_receiver {
  bool hold = false;
  std::vector<net::ip::tcp::socket> held;
  net::io_context ioc;
  net::ip::tcp::acceptor acceptor{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  std::atomic<int> accepted{0};
  std::thread thread;
  explicit refusing_receiver(bool h = false) : hold(h) {
    do_accept();
    thread = std::thread([this] { ioc.run(); });
  }
  ~refusing_receiver() {
    ioc.stop();
    thread.join();
    held.clear();   // the sockets belong to ioc, which is destroyed before this member otherwise
  }
  void do_accept() {
    acceptor.async_accept([this](boost::system::error_code ec, net::ip::tcp::socket s) {
      if (ec) return;
      ++accepted;
      if (hold) held.push_back(std::move(s));
      else s.close();
      do_accept();
    });
  }
  std::string url() {
    std::string u = "http://127.0.0.1:";
    u += std::to_string(acceptor.local_endpoint().port());
    u += "/hook";
    return u;
  }
};

TEST(PusherWebhooks, RetriesABoundedNumberOfTimesThenGivesUp) {
  refusing_receiver r;
  ps::metrics m;
  std::vector<ps::pusher_app> apps{app_with(r.url())};
  ps::webhook_options o;
  o.batch_ms = 0;
  o.attempts = 3;
  o.backoff_ms = 1;
  o.timeout_ms = 2000;
  ps::pusher_webhooks w(apps, o, m);
  w.start();
  w.occupied(apps[0], "a");
  w.vacated(apps[0], "a");   // (may share the first request or come in a second one)
  ASSERT_TRUE(eventually([&] { return m.pusher_webhook_events_failed.load() == 2; }));
  // Give a (wrong) fourth attempt the time to show up.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(r.accepted == 3 || r.accepted == 6) << r.accepted;
  EXPECT_EQ(m.pusher_webhook_events_sent.load(), 0u);
  w.stop(std::chrono::milliseconds(100));
}

TEST(PusherWebhooks, AReceiverThatNeverAnswersTimesOut) {
  refusing_receiver r(true);
  ps::metrics m;
  std::vector<ps::pusher_app> apps{app_with(r.url())};
  ps::webhook_options o;
  o.batch_ms = 0;
  o.attempts = 1;
  o.timeout_ms = 100;
  ps::pusher_webhooks w(apps, o, m);
  w.start();
  auto t0 = std::chrono::steady_clock::now();
  w.occupied(apps[0], "a");
  ASSERT_TRUE(eventually([&] { return m.pusher_webhook_events_failed.load() == 1; }, std::chrono::milliseconds(3000)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  EXPECT_EQ(r.accepted, 1);
  w.stop(std::chrono::milliseconds(100));
}

}  // namespace
