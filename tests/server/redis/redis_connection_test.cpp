// The Redis connection against a real redis-server (Debian's, started on a free port in a temp dir
// by the test): pipelining in order, error replies, Lua, Pub/Sub pushes, the in-flight bound, and
// losing the server and getting it back. scripts/setup.sh installs redis-server; no system-wide
// instance is used.
#include "server/redis/redis_connection.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/server/redis/redis_process.hpp"
#include "tests/server/test_client.hpp"

namespace ps = pushwire::server;
namespace net = boost::asio;
extern char** environ;

namespace {

using test::redis_process;

// Runs the io_context until `done` holds (with a deadline).
template <class F>
bool run_until(net::io_context& ioc, F done, std::chrono::milliseconds d = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + d;
  ioc.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    ioc.run_for(std::chrono::milliseconds(5));
    ioc.restart();
  }
  return true;
}

ps::redis_endpoint local(unsigned short port) {
  ps::redis_endpoint e;
  e.port = port;
  return e;
}

}  // namespace

TEST(RedisUrl, ParsesWhatItShouldAndRefusesTheRest) {
  ps::redis_endpoint e;
  std::string err;
  ASSERT_TRUE(ps::parse_redis_url("redis://:s3cret@10.1.2.3:6380/2", e, err)) << err;
  EXPECT_EQ(e.host, "10.1.2.3");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.password, "s3cret");
  EXPECT_EQ(e.db, 2u);
  ASSERT_TRUE(ps::parse_redis_url("redis://cache", e, err));
  EXPECT_EQ(e.port, 6379);
  ASSERT_TRUE(ps::parse_redis_url("unix:/run/redis.sock?db=3", e, err));
  EXPECT_EQ(e.unix_path, "/run/redis.sock");
  EXPECT_EQ(e.db, 3u);
  for (auto bad : {"http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h/16", "unix:relative", "unix:/s?db=x"})
    EXPECT_FALSE(ps::parse_redis_url(bad, e, err)) << bad;
}

TEST(RedisConnection, PipelinedRepliesInOrderErrorsAndLua) {
  redis_process redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not start (scripts/setup.sh installs it)";
  net::io_context ioc;
  auto c = std::make_shared<ps::redis_connection>(ioc, local(redis.port()), ps::redis_connection::options{});
  c->start();
  std::vector<long long> got;
  for (int i = 0; i < 1000; ++i)
    c->command({"INCR", "counter"}, [&](ps::redis_reply r) { got.push_back(r.integer); });
  ps::redis_reply wrong, lua;
  c->command({"LPUSH", "counter", "x"}, [&](ps::redis_reply r) { wrong = std::move(r); });
  c->command({"EVAL", "return {KEYS[1], tonumber(ARGV[1]) + 1}", "1", "k\n\r\0y", "41"},
             [&](ps::redis_reply r) { lua = std::move(r); });
  ASSERT_TRUE(run_until(ioc, [&] { return lua.type != ps::redis_reply::kind::nil; }));
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i], i + 1);
  EXPECT_TRUE(wrong.is_error());
  EXPECT_NE(wrong.str.find("WRONGTYPE"), std::string::npos);
  ASSERT_EQ(lua.type, ps::redis_reply::kind::array);
  EXPECT_EQ(lua.elements[1].integer, 42);
  c->stop();
}

TEST(RedisConnection, PubSubPushesReachOnPush) {
  redis_process redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not start (scripts/setup.sh installs it)";
  net::io_context ioc;
  auto sub = std::make_shared<ps::redis_connection>(ioc, local(redis.port()), ps::redis_connection::options{});
  auto pub = std::make_shared<ps::redis_connection>(ioc, local(redis.port()), ps::redis_connection::options{});
  std::vector<std::string> messages;
  sub->on_push = [&](const ps::redis_reply& r) { messages.push_back(r.elements[2].str); };
  bool subscribed = false;
  sub->start();
  pub->start();
  sub->command({"SUBSCRIBE", "pushwire:{news}"}, [&](ps::redis_reply r) { subscribed = !r.is_error(); });
  ASSERT_TRUE(run_until(ioc, [&] { return subscribed; }));
  for (auto m : {"one", "two", "three"}) pub->command({"PUBLISH", "pushwire:{news}", m}, [](ps::redis_reply) {});
  ASSERT_TRUE(run_until(ioc, [&] { return messages.size() == 3; }));
  EXPECT_EQ(messages, (std::vector<std::string>{"one", "two", "three"}));
  sub->stop();
  pub->stop();
}

TEST(RedisConnection, InFlightBoundRefusesAtOnce) {
  net::io_context ioc;
  ps::redis_connection::options o;
  o.max_in_flight = 3;
  // Nobody listens on port 1: the commands wait while the first connect is in flight.
  auto c = std::make_shared<ps::redis_connection>(ioc, local(1), o);
  c->start();
  int refused = 0;
  for (int i = 0; i < 5; ++i)
    c->command({"PING"}, [&](ps::redis_reply r) {
      if (r.is_error() && r.str == "too many commands in flight") ++refused;
    });
  EXPECT_EQ(refused, 2);   // the 4th and 5th, at once
  c->stop();
}

TEST(RedisConnection, ReconnectsAfterTheServerComesBack) {
  auto redis = std::make_unique<redis_process>();
  ASSERT_TRUE(redis->ready()) << "redis-server did not start (scripts/setup.sh installs it)";
  auto port = redis->port();
  net::io_context ioc;
  ps::redis_connection::options o;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 50;
  auto c = std::make_shared<ps::redis_connection>(ioc, local(port), o);
  int connects = 0;
  c->on_connected = [&] { ++connects; };
  c->start();
  ASSERT_TRUE(run_until(ioc, [&] { return c->ready(); }));
  redis->stop();
  ps::redis_reply lost;
  c->command({"PING"}, [&](ps::redis_reply r) { lost = std::move(r); });
  ASSERT_TRUE(run_until(ioc, [&] { return lost.is_error(); }));   // failed, not hung
  redis = std::make_unique<redis_process>(port);
  ASSERT_TRUE(redis->ready());
  ps::redis_reply back;
  ASSERT_TRUE(run_until(ioc, [&] { return c->ready() && connects == 2; }, std::chrono::seconds(10)));
  c->command({"PING"}, [&](ps::redis_reply r) { back = std::move(r); });
  ASSERT_TRUE(run_until(ioc, [&] { return back.type != ps::redis_reply::kind::nil; }));
  EXPECT_EQ(back.str, "PONG");
  c->stop();
}

TEST(RedisConnection, AReplyThatNeverComesTimesOut) {
  // A "Redis" that accepts and never answers.
  net::io_context ioc;
  net::ip::tcp::acceptor silent(ioc, {net::ip::make_address("127.0.0.1"), 0});
  net::ip::tcp::socket held(ioc);
  silent.async_accept(held, [](boost::system::error_code) {});
  ps::redis_connection::options o;
  o.command_timeout_ms = 100;
  o.backoff_min_ms = 10;
  auto c = std::make_shared<ps::redis_connection>(ioc, local(silent.local_endpoint().port()), o);
  c->start();
  ASSERT_TRUE(run_until(ioc, [&] { return c->ready(); }));
  ps::redis_reply r;
  auto sent = std::chrono::steady_clock::now();
  c->command({"PING"}, [&](ps::redis_reply x) { r = std::move(x); });
  ASSERT_TRUE(run_until(ioc, [&] { return r.is_error(); }));
  EXPECT_NE(r.str.find("timeout"), std::string::npos) << r.str;
  EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(100));
  c->stop();
}
