// One connection to Redis over the server's own Asio socket, speaking RESP through hiredis's reply
// reader and command formatter (sans-I/O: hiredis never touches the socket). Commands are
// pipelined: each is written as soon as the socket takes it and its reply is matched in order.
// Bounded: at most `max_in_flight` commands wait or are in flight; more are refused at once.
// A lost connection fails every command not yet answered with an error reply and reconnects with
// backoff and jitter; between attempts commands fail at once ("redis unavailable"); AUTH and
// SELECT go first on every (re)connect. In Pub/Sub use, `on_push` receives the
// messages Redis pushes (["message", channel, payload]) and `on_connected` is where a subscriber
// subscribes again after a reconnect.
//
// Threading: every call on the connection's io_context thread (post to it from elsewhere).
// Lifecycle (link): connecting -> ready -> (lost) backing_off -> connecting ... ; stopped is final.
#pragma once
#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "server/redis/redis_reply.hpp"

struct redisReader;

namespace pushwire::server {

class redis_connection : public std::enable_shared_from_this<redis_connection> {
 public:
  struct options {
    std::size_t max_in_flight = 10000;       // bounds memory when Redis stalls
    std::uint64_t connect_timeout_ms = 2000;
    std::uint64_t command_timeout_ms = 5000;   // a reply later than this: the connection is lost
    std::uint64_t backoff_min_ms = 50;       // reconnect delays grow to the max, with full jitter
    std::uint64_t backoff_max_ms = 2000;
  };
  using done_fn = std::function<void(redis_reply)>;

  redis_connection(boost::asio::io_context& ioc, redis_endpoint ep, options opts);
  ~redis_connection();

  void start();
  void stop();
  // Sends a command (argv form: no quoting issues); `done` gets its reply, or an error reply when
  // refused (over the bound, stopped) or when the connection is lost first.
  void command(const std::vector<std::string>& args, done_fn done);
  bool ready() const { return link_ == link::ready; }

  std::function<void(const redis_reply&)> on_push;   // Pub/Sub messages
  std::function<void()> on_connected;                // after AUTH/SELECT, on every (re)connect

 private:
  enum class link : std::uint8_t { idle, connecting, ready, backing_off, stopped };
  struct pending {
    std::string wire;   // the formatted command
    done_fn done;
    bool internal = false;   // AUTH / SELECT on connect
    std::chrono::steady_clock::time_point sent_at{};
  };
  void do_connect();
  void on_connect(boost::system::error_code ec);
  void lost(const std::string& why);
  void write_more();
  void do_read();
  void on_replies();
  void enqueue(const std::vector<std::string>& args, done_fn done, bool internal);
  void arm_watchdog();   // while replies are awaited: the oldest may not wait past the timeout
  std::uint64_t next_backoff_ms();

  boost::asio::io_context& ioc_;
  redis_endpoint ep_;
  options opts_;
  link link_ = link::idle;
  boost::asio::generic::stream_protocol::socket sock_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer watchdog_;
  bool watching_ = false;
  redisReader* reader_ = nullptr;
  std::deque<pending> waiting_;    // not written yet
  std::deque<pending> sent_;       // written, reply not yet read (in order)
  std::string out_;                // the write in flight
  std::size_t out_count_ = 0;      // commands in out_
  bool writing_ = false;
  std::vector<char> in_;
  unsigned attempt_ = 0;
  std::minstd_rand rng_;
};

}  // namespace pushwire::server
