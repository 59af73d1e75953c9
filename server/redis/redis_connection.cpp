#include "server/redis/redis_connection.hpp"

#include <hiredis/hiredis.h>

namespace pushwire::server {

namespace net = boost::asio;
using generic_endpoint = net::generic::stream_protocol::endpoint;

namespace {

redis_reply copy_reply(const redisReply* r) {
  redis_reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = redis_reply::kind::string; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = redis_reply::kind::status; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = redis_reply::kind::error; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = redis_reply::kind::integer; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default: out.type = redis_reply::kind::nil; break;
  }
  return out;
}

bool is_push(const redis_reply& r) {
  return r.type == redis_reply::kind::array && !r.elements.empty() &&
         (r.elements[0].str == "message" || r.elements[0].str == "pmessage");
}

}  // namespace

redis_connection::redis_connection(net::io_context& ioc, redis_endpoint ep, options opts)
    : ioc_(ioc), ep_(std::move(ep)), opts_(opts), sock_(ioc), timer_(ioc), watchdog_(ioc), rng_(std::random_device{}()) {}

redis_connection::~redis_connection() {
  if (reader_) redisReaderFree(reader_);
}

void redis_connection::start() {
  if (link_ != link::idle) return;
  do_connect();
}

void redis_connection::stop() {
  if (link_ == link::stopped) return;
  link_ = link::stopped;
  boost::system::error_code ec;
  timer_.cancel();
  watchdog_.cancel();
  sock_.close(ec);
  auto fail = [](std::deque<pending>& q) {
    while (!q.empty()) {
      auto p = std::move(q.front());
      q.pop_front();
      if (p.done) p.done(redis_reply::failure("stopped"));
    }
  };
  fail(sent_);
  fail(waiting_);
}

std::uint64_t redis_connection::next_backoff_ms() {
  std::uint64_t ceiling = opts_.backoff_min_ms << std::min(attempt_, 16u);
  ceiling = std::min(ceiling, opts_.backoff_max_ms);
  ++attempt_;
  return std::uniform_int_distribution<std::uint64_t>(opts_.backoff_min_ms / 2, std::max(ceiling, opts_.backoff_min_ms))(rng_);
}

void redis_connection::do_connect() {
  link_ = link::connecting;
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  boost::system::error_code ec;
  generic_endpoint target;
  if (!ep_.unix_path.empty()) {
    target = net::local::stream_protocol::endpoint(ep_.unix_path);
  } else {
    auto addr = net::ip::make_address(ep_.host == "localhost" ? "127.0.0.1" : ep_.host, ec);
    if (ec) {
      net::ip::tcp::resolver res(ioc_);
      auto found = res.resolve(ep_.host, std::to_string(ep_.port), ec);
      if (ec || found.empty()) return lost("cannot resolve " + ep_.host);
      target = found.begin()->endpoint();
    } else {
      target = net::ip::tcp::endpoint(addr, ep_.port);
    }
  }
  sock_ = net::generic::stream_protocol::socket(ioc_);
  timer_.expires_after(std::chrono::milliseconds(opts_.connect_timeout_ms));
  timer_.async_wait([w = weak_from_this()](boost::system::error_code e) {
    auto self = w.lock();
    if (!e && self && self->link_ == link::connecting) {
      boost::system::error_code ig;
      self->sock_.close(ig);   // the connect completes with an error
    }
  });
  sock_.async_connect(target, [w = weak_from_this()](boost::system::error_code e) {
    if (auto self = w.lock()) self->on_connect(e);
  });
}

void redis_connection::on_connect(boost::system::error_code ec) {
  if (link_ == link::stopped) return;
  timer_.cancel();
  if (ec) return lost("connect: " + ec.message());
  if (ep_.unix_path.empty()) {
    boost::system::error_code ig;
    sock_.set_option(net::ip::tcp::no_delay(true), ig);
  }
  link_ = link::ready;
  attempt_ = 0;
  // AUTH and SELECT before anything else on this connection (at the front, in this order).
  std::vector<pending> first;
  auto add = [&](std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
    first.push_back(pending{std::string(cmd, static_cast<std::size_t>(n)), nullptr, true});
    redisFreeCommand(cmd);
  };
  if (!ep_.password.empty()) add({"AUTH", ep_.password});
  if (ep_.db) add({"SELECT", std::to_string(ep_.db)});
  for (auto it = first.rbegin(); it != first.rend(); ++it) waiting_.push_front(std::move(*it));
  in_.resize(16 * 1024);
  do_read();
  write_more();
  if (on_connected) on_connected();
}

void redis_connection::lost(const std::string& why) {
  if (link_ == link::stopped) return;
  boost::system::error_code ig;
  sock_.close(ig);
  watchdog_.cancel();
  writing_ = false;
  out_.clear();
  out_count_ = 0;
  // What was written may or may not have run, what waits was never sent: every caller is told it
  // failed now (a publish is refused rather than held for an outage of unknown length).
  for (auto* q : {&sent_, &waiting_}) {
    while (!q->empty()) {
      auto p = std::move(q->front());
      q->pop_front();
      auto r = redis_reply::failure("connection lost: " + why);
      r.outcome_unknown = q == &sent_;
      if (p.done) p.done(std::move(r));
    }
  }
  link_ = link::backing_off;
  timer_.expires_after(std::chrono::milliseconds(next_backoff_ms()));
  timer_.async_wait([w = weak_from_this()](boost::system::error_code e) {
    auto self = w.lock();
    if (!e && self && self->link_ == link::backing_off) self->do_connect();
  });
}

void redis_connection::command(const std::vector<std::string>& args, done_fn done) {
  if (link_ == link::stopped) return done(redis_reply::failure("stopped"));
  // Between attempts Redis is known to be away: fail at once. While connecting, wait (bounded by
  // the connect timeout).
  if (link_ == link::backing_off || link_ == link::idle) return done(redis_reply::failure("redis unavailable"));
  if (waiting_.size() + sent_.size() >= opts_.max_in_flight)
    return done(redis_reply::failure("too many commands in flight"));
  enqueue(args, std::move(done), false);
  write_more();
}

void redis_connection::enqueue(const std::vector<std::string>& args, done_fn done, bool internal) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n < 0 || !cmd) return done(redis_reply::failure("cannot format command"));
  waiting_.push_back(pending{std::string(cmd, static_cast<std::size_t>(n)), std::move(done), internal});
  redisFreeCommand(cmd);
}

// Everything waiting goes out in one write (pipelining); the next write starts when it completes.
void redis_connection::write_more() {
  if (link_ != link::ready || writing_ || waiting_.empty()) return;
  writing_ = true;
  out_.clear();
  out_count_ = 0;
  auto now = std::chrono::steady_clock::now();
  while (!waiting_.empty()) {
    out_ += waiting_.front().wire;
    waiting_.front().sent_at = now;
    sent_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    ++out_count_;
  }
  arm_watchdog();
  net::async_write(sock_, net::buffer(out_), [w = weak_from_this()](boost::system::error_code ec, std::size_t) {
    auto self = w.lock();
    if (!self || self->link_ != link::ready) return;
    self->writing_ = false;
    if (ec) return self->lost("write: " + ec.message());
    self->write_more();
  });
}

void redis_connection::arm_watchdog() {
  if (watching_ || sent_.empty()) return;
  watching_ = true;
  watchdog_.expires_at(sent_.front().sent_at + std::chrono::milliseconds(opts_.command_timeout_ms));
  watchdog_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->watching_ = false;
    if (ec || self->link_ != link::ready || self->sent_.empty()) return;
    auto late = std::chrono::steady_clock::now() - self->sent_.front().sent_at;
    if (late >= std::chrono::milliseconds(self->opts_.command_timeout_ms)) return self->lost("reply timeout");
    self->arm_watchdog();   // the front was answered meanwhile: watch the new front
  });
}

void redis_connection::do_read() {
  sock_.async_read_some(net::buffer(in_), [w = weak_from_this()](boost::system::error_code ec, std::size_t n) {
    auto self = w.lock();
    if (!self || self->link_ != link::ready) return;
    if (ec) return self->lost("read: " + ec.message());
    if (redisReaderFeed(self->reader_, self->in_.data(), n) != REDIS_OK) return self->lost("bad reply stream");
    self->on_replies();
    if (self->link_ == link::ready) self->do_read();
  });
}

void redis_connection::on_replies() {
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return lost("protocol error");
    if (!raw) return;
    auto reply = copy_reply(static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    if (is_push(reply) && on_push) {
      on_push(reply);
      continue;
    }
    if (sent_.empty()) return lost("a reply nobody asked for");
    auto p = std::move(sent_.front());
    sent_.pop_front();
    if (p.internal && reply.is_error()) return lost("AUTH/SELECT refused: " + reply.str);
    if (p.done) p.done(std::move(reply));
    if (link_ != link::ready) return;
  }
}

}  // namespace pushwire::server
