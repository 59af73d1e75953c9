#include "server/redis/redis_engine.hpp"

#include <boost/asio/post.hpp>

namespace pushwire::server {

namespace {

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

redis_engine::redis_engine(redis_engine_options o) : work_(boost::asio::make_work_guard(ioc_)) {
  for (auto& ep : o.shards) {
    shard s;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, o.pool_size); ++i)
      s.pool.push_back(std::make_shared<redis_connection>(ioc_, ep, o.conn));
    s.pubsub = std::make_shared<redis_connection>(ioc_, ep, o.conn);
    shards_.push_back(std::move(s));
  }
  thread_ = std::thread([this] { ioc_.run(); });
}

redis_engine::~redis_engine() { shutdown(); }

void redis_engine::start() {
  post([this] {
    for (auto& s : shards_) {
      for (auto& c : s.pool) c->start();
      s.pubsub->start();
    }
  });
}

void redis_engine::shutdown() {
  if (!thread_.joinable()) return;
  if (on_engine_thread()) return;   // (never: the engine is not destroyed from its own thread)
  boost::asio::post(ioc_, [this] {
    stopped_ = true;
    for (auto& s : shards_) {
      for (auto& c : s.pool) c->stop();
      s.pubsub->stop();
    }
    work_.reset();
    ioc_.stop();
  });
  thread_.join();
}

std::size_t redis_engine::shard_of(std::string_view channel) const {
  return shards_.size() <= 1 ? 0 : static_cast<std::size_t>(fnv1a64(channel) % shards_.size());
}

void redis_engine::post(std::function<void()> f) { boost::asio::post(ioc_, std::move(f)); }

redis_connection& redis_engine::conn_for(std::string_view channel) {
  auto h = fnv1a64(channel);
  auto& s = shards_[shards_.size() <= 1 ? 0 : h % shards_.size()];
  // Another bit range of the hash picks the connection, so it is independent of the shard choice.
  return *s.pool[(h >> 32) % s.pool.size()];
}

void redis_engine::command(std::string_view channel, std::vector<std::string> args, done_fn done) {
  if (stopped_) return done(redis_reply::failure("stopped"));
  conn_for(channel).command(std::move(args), std::move(done));
}

void redis_engine::command_on(std::size_t shard, std::vector<std::string> args, done_fn done) {
  if (stopped_) return done(redis_reply::failure("stopped"));
  shards_[shard].pool.front()->command(std::move(args), std::move(done));
}

void redis_engine::script(const lua_script& s, std::string_view channel, std::vector<std::string> keys,
                          std::vector<std::string> args, done_fn done) {
  if (stopped_) return done(redis_reply::failure("stopped"));
  run_script(conn_for(channel), s, std::move(keys), std::move(args), std::move(done));
}

void redis_engine::script_on(std::size_t shard, const lua_script& s, std::vector<std::string> keys,
                             std::vector<std::string> args, done_fn done) {
  if (stopped_) return done(redis_reply::failure("stopped"));
  run_script(*shards_[shard].pool.front(), s, std::move(keys), std::move(args), std::move(done));
}

void redis_engine::run_script(redis_connection& c, const lua_script& s, std::vector<std::string> keys,
                              std::vector<std::string> args, done_fn done) {
  // Kept (not copied) until the reply, for the rare full resend.
  auto cmd = std::make_shared<std::vector<std::string>>();
  cmd->reserve(3 + keys.size() + args.size());
  cmd->push_back("EVALSHA");
  cmd->push_back(s.sha1);
  cmd->push_back(std::to_string(keys.size()));
  for (auto& k : keys) cmd->push_back(std::move(k));
  for (auto& a : args) cmd->push_back(std::move(a));
  c.command(*cmd, [conn = c.shared_from_this(), &s, cmd, done = std::move(done)](redis_reply r) mutable {
    if (!r.is_error() || !r.str.starts_with("NOSCRIPT")) return done(std::move(r));
    (*cmd)[0] = "EVAL";
    (*cmd)[1] = s.source;
    conn->command(*cmd, std::move(done));
  });
}

}  // namespace pushwire::server
