// The Redis engine's shared part (issue 13): its own thread with its own io_context, and for each
// shard (one Redis instance; channels are spread over shards by a stable hash of their name) a
// small pool of command connections plus one Pub/Sub connection. The stores built on it (history,
// broker, presence, node registry) run every command through here, so a slow Redis never blocks an
// I/O thread: callers post, and completions run on the engine's thread.
//
// Order: every command about one channel goes over the same connection of its shard, so replies,
// and the completions fed from them, come back in the order the commands were sent.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "server/redis/redis_connection.hpp"
#include "server/redis/redis_scripts.hpp"

namespace pushwire::server {

struct redis_engine_options {
  std::vector<redis_endpoint> shards;        // at least one
  std::size_t pool_size = 2;                 // command connections per shard: Redis is single-threaded,
                                             // two keep one busy while the other's replies are read
  redis_connection::options conn;
};

class redis_engine {
 public:
  using done_fn = redis_connection::done_fn;
  explicit redis_engine(redis_engine_options o);
  ~redis_engine();
  redis_engine(const redis_engine&) = delete;
  redis_engine& operator=(const redis_engine&) = delete;

  // Stops every connection (their pending commands fail) and joins the thread; idempotent.
  void shutdown();

  std::size_t shards() const { return shards_.size(); }
  // Stable across processes and versions (FNV-1a 64 of the name, modulo the shard count): every
  // node sends a channel to the same Redis. docs/scaling.md; resharding is out of scope.
  std::size_t shard_of(std::string_view channel) const;

  // Runs `f` on the engine's thread (from any thread).
  void post(std::function<void()> f);
  bool on_engine_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // On the engine's thread only:
  // a command about `channel`, on that channel's connection of its shard;
  void command(std::string_view channel, std::vector<std::string> args, done_fn done);
  // a command on a given shard (not about one channel), on its first connection;
  void command_on(std::size_t shard, std::vector<std::string> args, done_fn done);
  // a Lua script by its SHA1 (EVALSHA); when Redis does not know it (a restarted or flushed Redis
  // forgets scripts) it is sent once more in full (EVAL), which also loads it.
  void script(const lua_script& s, std::string_view channel, std::vector<std::string> keys,
              std::vector<std::string> args, done_fn done);
  void script_on(std::size_t shard, const lua_script& s, std::vector<std::string> keys,
                 std::vector<std::string> args, done_fn done);
  // The shard's Pub/Sub connection (the broker sets its on_push / on_connected before start()).
  redis_connection& pubsub(std::size_t shard) { return *shards_[shard].pubsub; }
  boost::asio::io_context& io() { return ioc_; }
  // Starts every connection (after the stores have set their hooks).
  void start();

 private:
  struct shard {
    std::vector<std::shared_ptr<redis_connection>> pool;
    std::shared_ptr<redis_connection> pubsub;
  };
  redis_connection& conn_for(std::string_view channel);
  void run_script(redis_connection& c, const lua_script& s, std::vector<std::string> keys,
                  std::vector<std::string> args, done_fn done);

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<shard> shards_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace pushwire::server
