// Several nodes on one Redis, at the hub level: each "node" is a hub over its own redis_stores (its
// own connections, Pub/Sub and thread), all against a real redis-server of the test's own. What a
// multi-node deployment relies on: cross-node delivery in offset order, exact resume on any node,
// the epoch kept in Redis, presence across nodes and a dead node's members lapsing, Redis faults.
// The same over real server processes, nginx and the JS client: tests/cluster/.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "server/hub/hub.hpp"
#include "server/ops/config.hpp"
#include "server/redis/redis_scripts.hpp"
#include "server/redis/redis_stores.hpp"
#include "tests/server/hub/recording_sink.hpp"
#include "tests/server/redis/redis_process.hpp"

using namespace pushwire::server;
using pushwire::protocol::code;
using pushwire::protocol::position;
using test::redis_process;

namespace {

using test::recording_sink;

config node_config(std::vector<unsigned short> ports, std::string id) {
  config c;
  c.engine = "redis";
  for (auto p : ports) c.redis.push_back("redis://127.0.0.1:" + std::to_string(p) + "/0");
  c.node_id = std::move(id);
  c.presence_lease_ms = 400;
  c.node_heartbeat_ms = 100;
  c.redis_timeout_ms = 500;
  c.history_size = 50;
  return c;
}

// One node: its stores and hub.
struct node_under_test {
  node_under_test(const config& c, const pushwire::server::clock& clk) : stores(redis_stores(c, clk)) {
    h = std::make_unique<hub>(hub_stores{*stores.history, *stores.brk, *stores.presence}, clk, 1);
    h->set_sinks({&sink});
    // The housekeeping tick a server runs (lease renewals, expiry of lapsed members).
    housekeeping = std::jthread([this](std::stop_token st) {
      while (!st.stop_requested()) {
        h->sweep();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~node_under_test() {
    housekeeping.request_stop();
    housekeeping.join();
    stores.history->drain();   // completions stop before the hub goes
  }

  template <class R, class Call>
  R await(Call&& call) {
    auto st = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
    auto out = std::make_shared<std::optional<R>>();
    call([st, out](R r) {
      std::lock_guard lk(st->first);
      *out = std::move(r);
      st->second.notify_all();
    });
    std::unique_lock lk(st->first);
    EXPECT_TRUE(st->second.wait_for(lk, std::chrono::seconds(5), [&] { return out->has_value(); }));
    return out->value_or(R{});
  }
  publish_result publish(std::string_view ch, std::string data = "1", std::string_view key = {}) {
    return await<publish_result>([&](auto done) { h->publish(ch, std::move(data), key, done); });
  }
  resume_result subscribe(std::string_view ch, std::optional<position> since = {}) {
    return await<resume_result>([&](auto done) { h->subscribe(ch, 0, since, done); });
  }
  std::vector<member> members(std::string_view ch) {
    return await<std::vector<member>>([&](auto done) { h->presence(ch, done); });
  }
  code join(std::string_view ch, std::string client) {
    return await<code>([&](auto done) { h->presence_join(ch, member{"u-" + client, client}, 0, done); });
  }

  store_set stores;
  std::unique_ptr<hub> h;
  recording_sink sink;
  std::jthread housekeeping;
};

std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

class RedisNodes : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis.ready()) << "redis-server did not start (scripts/setup.sh installs it)"; }
  std::unique_ptr<node_under_test> start(std::string id) {
    return std::make_unique<node_under_test>(node_config({redis.port()}, std::move(id)), clk);
  }
  redis_process redis{0, true};
  steady_clock_source clk;
};

}  // namespace

TEST_F(RedisNodes, PublishOnOneNodeReachesSubscribersOfEveryNodeInOffsetOrder) {
  auto a = start("a"), b = start("b");
  auto ra = a->subscribe("scores"), rb = b->subscribe("scores");
  ASSERT_EQ(ra.error, code::ok) << ra.reason;
  EXPECT_EQ(ra.top.epoch, rb.top.epoch);   // one epoch per channel, whichever node asks
  for (int i = 0; i < 200; ++i) ASSERT_EQ((i % 2 ? a : b)->publish("scores").error, code::ok);
  ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("scores").size() == 200 && b->sink.offsets("scores").size() == 200; }));
  EXPECT_EQ(a->sink.offsets("scores"), one_to(200));
  EXPECT_EQ(b->sink.offsets("scores"), one_to(200));
}

TEST_F(RedisNodes, ResumeOnAnotherNodeIsExactAndTheEpochOutlivesNodes) {
  auto a = start("a");
  for (int i = 0; i < 10; ++i) a->publish("news", std::to_string(i));
  auto top = a->subscribe("news").top;
  a.reset();   // the node that published is gone
  auto b = start("b");
  auto r = b->subscribe("news", position{top.epoch, 4});
  ASSERT_EQ(r.recovered, true);
  std::vector<std::uint64_t> got;
  for (auto& p : r.missed) got.push_back(p->pos.offset);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(r.missed.front()->data, "4");
  EXPECT_EQ(b->subscribe("news", position{"other", 4}).recovered, false);   // another epoch
  EXPECT_EQ(b->subscribe("news", position{top.epoch, 11}).recovered, false);   // the future
  for (int i = 0; i < 60; ++i) b->publish("news");   // history keeps 50: offset 5 is gone
  EXPECT_EQ(b->subscribe("news", position{top.epoch, 4}).recovered, false);
  EXPECT_EQ(b->subscribe("news", position{top.epoch, 30}).recovered, true);
}

TEST_F(RedisNodes, PresenceIsSharedAndADeadNodesMembersLapseWithinALease) {
  auto a = start("a"), b = start("b");
  b->subscribe("room");
  ASSERT_EQ(a->join("room", "c1"), code::ok);
  ASSERT_EQ(b->join("room", "c2"), code::ok);
  EXPECT_EQ(a->members("room").size(), 2u);
  ASSERT_TRUE(test::eventually([&] { return b->sink.count_events(channel_event::kind::join, "c1") == 1; }));
  // Node a stops without a word (no leave): its member lapses after one lease (400 ms), and node b,
  // which listens to the channel, announces the leave once.
  auto start_ms = clk.now_ms();
  a.reset();
  ASSERT_TRUE(test::eventually([&] { return b->sink.count_events(channel_event::kind::leave, "c1") == 1; },
                               std::chrono::seconds(3)));
  EXPECT_LT(clk.now_ms() - start_ms, 1500u);
  auto left = b->members("room");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].client, "c2");
  // b keeps renewing its own member past several leases.
  auto c3 = start("c");
  c3->subscribe("room");
  ASSERT_FALSE(test::eventually([&] { return c3->sink.count_events(channel_event::kind::leave, "c2") > 0; },
                                std::chrono::milliseconds(1200)));
  EXPECT_EQ(b->members("room").size(), 1u);
  EXPECT_EQ(b->sink.count_events(channel_event::kind::leave, "c2"), 0u);
}

TEST_F(RedisNodes, WhileRedisIsDownPublishesFailFastAndSubscribersCatchUpAfter) {
  auto a = start("a"), b = start("b");
  a->subscribe("feed");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(b->publish("feed").error, code::ok);
  ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("feed").size() == 5; }));
  redis.stop();
  auto t0 = clk.now_ms();
  // Refused (4022) once the node knows Redis is gone; a publish written before it noticed is
  // "outcome unknown" (4024) — never a hang.
  auto r = b->publish("feed");
  EXPECT_TRUE(r.error == code::storage_unavailable || r.error == code::outcome_unknown) << r.reason;
  EXPECT_EQ(b->publish("feed").error, code::storage_unavailable);
  EXPECT_LT(clk.now_ms() - t0, 1000u);   // within the command timeout (500 ms here), not a hang
  redis.start();   // the append-only file brings every acknowledged publish back
  ASSERT_TRUE(redis.ready());
  ASSERT_TRUE(test::eventually([&] { return b->publish("feed").error == code::ok; }));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(b->publish("feed").error, code::ok);
  auto top = b->await<history_result>([&](auto done) { b->h->history("feed", std::nullopt, 1, done); }).top;
  // (a's Pub/Sub connection comes back within its backoff, at most 2 s, then fills in.)
  ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("feed").size() == top.offset; }, std::chrono::seconds(10)))
      << a->sink.offsets("feed").size() << " of " << top.offset;
  EXPECT_EQ(a->sink.offsets("feed"), one_to(top.offset));   // nothing lost, nothing twice, in order
}

TEST_F(RedisNodes, ALostPubSubConnectionMissesNothing) {
  auto c = node_config({redis.port()}, "a");
  c.history_size = 1000;   // every publication stays in history: the fill can always cover
  auto a = std::make_unique<node_under_test>(c, clk);
  c.node_id = "b";
  auto b = std::make_unique<node_under_test>(c, clk);
  a->subscribe("ticker");
  std::atomic<bool> done{false};
  std::jthread publisher([&] {
    for (int i = 0; i < 300; ++i) b->publish("ticker");
    done = true;
  });
  // Cut every Pub/Sub connection a few times while the stream runs.
  for (int i = 0; i < 3 && !done; ++i) {
    ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("ticker").size() > static_cast<std::size_t>(50 * (i + 1)) || done; }));
    redis.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  }
  publisher.join();
  ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("ticker").size() >= 300; }));
  EXPECT_EQ(a->sink.offsets("ticker"), one_to(300));
}

TEST_F(RedisNodes, ARedisThatLostItsDataStartsANewEpochThatResumesAreToldOf) {
  auto a = start("a");
  for (int i = 0; i < 3; ++i) a->publish("board");
  auto old = a->subscribe("board").top;
  a->h->unsubscribe("board", 0);
  redis.command({"FLUSHALL"});
  auto r = a->publish("board");
  ASSERT_EQ(r.error, code::ok);
  EXPECT_NE(r.pos.epoch, old.epoch);
  EXPECT_EQ(r.pos.offset, 1u);
  EXPECT_EQ(a->subscribe("board", old).recovered, false);
}

TEST_F(RedisNodes, TwoShardsSplitTheChannelsAndStillServeEveryNode) {
  redis_process second{0, false};
  ASSERT_TRUE(second.ready());
  auto a = std::make_unique<node_under_test>(node_config({redis.port(), second.port()}, "a"), clk);
  auto b = std::make_unique<node_under_test>(node_config({redis.port(), second.port()}, "b"), clk);
  for (int c = 0; c < 16; ++c) a->subscribe("ch" + std::to_string(c));
  for (int c = 0; c < 16; ++c)
    for (int i = 0; i < 3; ++i) ASSERT_EQ(b->publish("ch" + std::to_string(c)).error, code::ok);
  for (int c = 0; c < 16; ++c) {
    auto ch = "ch" + std::to_string(c);
    ASSERT_TRUE(test::eventually([&] { return a->sink.offsets(ch).size() == 3; })) << ch;
    EXPECT_EQ(a->sink.offsets(ch), one_to(3));
  }
  EXPECT_GT(redis.command({"DBSIZE"}).integer, 0);
  EXPECT_GT(second.command({"DBSIZE"}).integer, 0);
}

TEST_F(RedisNodes, AGapTheHistoryCannotFillIsReported) {
  auto c = node_config({redis.port()}, "a");
  c.redis_reconnect_min_ms = 1000;   // a's Pub/Sub connection stays away 0.5-1 s after a cut
  auto a = std::make_unique<node_under_test>(c, clk);
  auto b = start("b");   // history keeps 50
  a->subscribe("fast");
  b->publish("fast");
  ASSERT_TRUE(test::eventually([&] { return a->sink.offsets("fast").size() == 1; }));
  // a's Pub/Sub connection is cut; while it reconnects (0.5 s at the least) b publishes more than
  // the history keeps. (Retried should a very slow machine let the reconnect win the race.)
  for (int attempt = 0; attempt < 5 && a->sink.gaps("fast").empty(); ++attempt) {
    redis.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    for (int i = 0; i < 80; ++i) b->publish("fast");
    auto last = b->publish("fast").pos.offset;
    ASSERT_TRUE(test::eventually([&] {
      auto got = a->sink.offsets("fast");
      return !got.empty() && got.back() == last;
    }));
  }
  auto gaps = a->sink.gaps("fast");
  ASSERT_FALSE(gaps.empty()) << "the reconnect never lost the race";
  // Every offset either arrived or lies in a reported gap; the ones that arrived are in order.
  auto got = a->sink.offsets("fast");
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
  EXPECT_GT(gaps.front().offset, 1u);
}

TEST_F(RedisNodes, AnIdempotentPublishRetriedOnAnotherNodePublishesOnce) {
  auto a = start("a"), b = start("b");
  auto first = a->publish("orders", "{\"id\":1}", "key-1");
  ASSERT_EQ(first.error, code::ok);
  auto retry = b->publish("orders", "{\"id\":1}", "key-1");   // the backend retried through node b
  EXPECT_EQ(retry.error, code::ok);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.pos, first.pos);
  EXPECT_EQ(b->publish("orders", "{\"id\":2}", "key-1").error, code::idempotency_conflict);   // other data
  auto elsewhere = b->publish("invoices", "{\"id\":1}", "key-1");                           // another channel
  EXPECT_EQ(elsewhere.error, code::ok);
  EXPECT_FALSE(elsewhere.duplicate);
  // Racing retries on both nodes: one publication per key.
  std::vector<std::jthread> racers;
  for (int t = 0; t < 4; ++t)
    racers.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k) (t % 2 ? a : b)->publish("race", "1", "k" + std::to_string(k));
    });
  racers.clear();
  auto h = a->await<history_result>([&](auto done) { a->h->history("race", std::nullopt, 0, done); });
  EXPECT_EQ(h.top.offset, 20u);
}

TEST_F(RedisNodes, AServerDisconnectReachesEveryNode) {
  std::mutex mu;                    // (before the nodes: their threads call the listeners until they go)
  std::vector<std::string> got;
  auto a = start("a"), b = start("b");
  for (auto* n : {a.get(), b.get()})
    n->h->set_disconnect_listener([&, id = n == a.get() ? "a" : "b"](const disconnect_order& d) {
      std::lock_guard lk(mu);
      got.push_back(std::string(id) + ":" + d.user + ":" + std::to_string(d.after_ms));
    });
  // The order goes out once Pub/Sub listens on pushwire:control (at connect): retried until then.
  ASSERT_TRUE(test::eventually([&] {
    disconnect_order d;
    d.user = "alice";
    d.after_ms = 1500;
    a->h->disconnect(d);
    std::lock_guard lk(mu);
    return std::find(got.begin(), got.end(), "b:alice:1500") != got.end() &&
           std::find(got.begin(), got.end(), "a:alice:1500") != got.end();
  }));
}

TEST_F(RedisNodes, AQuietChannelWithSubscribersKeepsItsEpoch) {
  auto c = node_config({redis.port()}, "a");
  c.history_ttl_ms = 200;
  c.channel_idle_ms = 200;   // the epoch would expire 1.2 s after the last use without a keep-alive
  auto a = std::make_unique<node_under_test>(c, clk);
  auto first = a->subscribe("quiet");
  ASSERT_EQ(first.error, code::ok);
  // Wait past the epoch's expiry (the keep-alive runs every idle/3 from the housekeeping tick).
  auto key = pushwire::server::redis_keys::meta("quiet");
  ASSERT_FALSE(test::eventually([&] { return redis.command({"EXISTS", key}).integer == 0; }, std::chrono::milliseconds(2500)));
  auto r = a->publish("quiet");
  EXPECT_EQ(r.pos.epoch, first.top.epoch);
}

TEST_F(RedisNodes, APublishRedisTookButDidNotConfirmIsOutcomeUnknownNotRefused) {
  auto c = node_config({redis.port()}, "a");
  c.redis_timeout_ms = 200;
  auto a = std::make_unique<node_under_test>(c, clk);
  ASSERT_EQ(a->publish("stall").error, code::ok);
  redis.pause();   // SIGSTOP: Redis reads nothing, answers nothing
  auto r = a->publish("stall", "2");
  redis.resume();  // SIGCONT: it runs what it had read — the publish may well have happened
  EXPECT_EQ(r.error, code::outcome_unknown) << r.reason;
  // The backend retries with an idempotency key: exactly once either way.
  ASSERT_TRUE(test::eventually([&] { return a->publish("stall", "3", "retry-key").error == code::ok; }));
  auto again = a->publish("stall", "3", "retry-key");
  EXPECT_TRUE(again.duplicate);
}
