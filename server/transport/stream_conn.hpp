// The connection template WebSocket and SSE share: a shell (protocol session + stream machine) over
// a socket, with the write path that makes fan-out cheap. The transport (`Derived`) adds only its
// framing and its own lifecycle steps:
//   std::size_t wire_size(const outgoing&) const      bytes an item takes in its format
//   void build_write(std::vector<queued>& items, std::vector<net::const_buffer>& bufs)
//                                                     the buffers of one write (shared item buffers
//                                                     plus the transport's own small ones)
//   void close_transport()                            after the queue drained in `closing`
//   void on_probe()                                   a dead-peer probe (WebSocket ping)
// and optionally
//   SslStream* tls()                                  the connection's TLS stream, null when plain
//   bool take_control(bufs) / bool data_allowed()     the transport's own frames (WebSocket pongs,
//                                                     pings, the close frame), first in the next
//                                                     write; whether data may still follow them
//   void release_control_buffers()                    idle: give back what a burst grew
//
// Write path: items are shared, immutable buffers (server/wire/outgoing.hpp). While a write is in
// flight new items wait in the pending queue; when it completes, everything pending (up to the buffer
// limit) goes out in ONE gather write, a non-blocking sendmsg of the shared buffers
// (gather_send.hpp). Only what the kernel does not take at once waits for writability. A TLS
// connection keeps the same batching: the write's buffers are copied into one per-connection
// staging buffer and go out as one SSL write (one TLS record per 16 KB; Asio's SSL stream would
// otherwise call SSL_write once per 8 KB linearised slice of a buffer sequence). Every
// decision about the queue (its byte bound, the slow-consumer notice, the grace before the cut,
// heartbeats, the dead peer) is the stream machine's (protocol/server_stream.hpp).
//
// Lifecycle (conn_state): starting (handshake / response header in flight: items queue, nothing is
// written) -> open -> closing (the queue drains, then the transport closes) -> closed. A close asked
// for while starting waits in starting_closing until the transport is ready, then drains like
// closing. `cut` from the stream machine goes straight to closed.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "server/ops/log.hpp"
#include "server/transport/client_address.hpp"
#include "server/transport/gather_send.hpp"
#include "server/transport/shell.hpp"
#include "server/transport/worker.hpp"

namespace pushwire::server {

enum class conn_state : std::uint8_t { starting, starting_closing, open, closing, closed };

struct queued {
  outgoing item;
  std::size_t size = 0;   // as counted by the stream machine
  bool replay = false;
};

template <class Derived>
class stream_conn : public shell, public conn_base, public flushable, public std::enable_shared_from_this<Derived> {
 public:
  stream_conn(node& n, worker& w, bool reads)
      : shell(n, w.subscribers, w.index, n.new_client_id(), n.stream_policy(reads), !reads), w_(w) {}

  void tick(std::uint64_t now) override {
    if (state_ == conn_state::closed) return;
    // Memory per idle connection: the buffers a burst grew go back once the connection is idle.
    if (!writing() && wr_ && wr_->pending.empty()) {
      wr_.reset();
      derived().release_write_buffers();
    }
    if constexpr (requires(Derived& d) { d.release_control_buffers(); })
      if (!writing()) derived().release_control_buffers();
    stream_.handle_timeout(now);
    session_tick(now);
    drain(now);
  }
  void server_disconnect(const disconnect_order& d, std::uint64_t after_ms) override {
    session_.disconnect(d.code, d.reason, d.reconnect, after_ms);
    drain(node_.clk.now_ms());
  }
  const std::string& client_id() const override { return session_.client(); }
  const std::string& user_id() const override { return session_.user(); }
  conn_state state() const { return state_; }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }
  std::shared_ptr<Derived> self() { return this->shared_from_this(); }

  std::size_t wire_size(const outgoing& o) const override { return static_cast<const Derived&>(*this).item_size(o); }

  void push(outgoing o, std::size_t size, bool replay) override {
    if (state_ == conn_state::closed) return;
    wr().pending.push_back(queued{std::move(o), size, replay});
    if (!writing() && can_write()) w_.write_soon(self(), flush_scheduled_);
  }

  void later(std::function<void()> fn) override { net::post(w_.ioc, std::move(fn)); }
  std::weak_ptr<void> lifetime() override { return this->weak_from_this(); }

  void close_requested(protocol::code c, const std::string& reason) override {
    if (state_ != conn_state::starting && state_ != conn_state::open) return;
    if (c == protocol::code::unauthorized || c == protocol::code::token_expired)
      log::warn("auth refused", {{"transport", transport()}, {"remote", remote_}, {"client", session_.client()},
                                 {"code", std::to_string(static_cast<unsigned>(c))}, {"reason", reason}});
    close_code_ = c;
    close_reason_ = reason.empty() ? nullptr : std::make_unique<std::string>(reason);
    if (state_ == conn_state::starting) {
      state_ = conn_state::starting_closing;   // opened() drains and closes
      return;
    }
    state_ = conn_state::closing;
    if (!writing()) do_write();
  }

  void on_stream_action(protocol::stream_action a) override {
    switch (a) {
      case protocol::stream_action::cut:
        return derived().cut();
      case protocol::stream_action::probe:
        return derived().on_probe();
      case protocol::stream_action::send_notice:
        // What waits is dropped at once, so memory stays within the bound; the notice goes next.
        drop_pending();
        return shell::on_stream_action(a);
      case protocol::stream_action::send_ping:
        return shell::on_stream_action(a);
    }
  }

  // The connection's two log lines: "connection opened" once the transport is up, "connection
  // closed" with how long it lived and its close code (the WebSocket code; for SSE the server's code,
  // or 0 when the peer went away).
  // The client address of the log lines, from the opening request (client_address.hpp); taken
  // while the request is at hand, before the upgrade or the stream's header.
  void note_remote(const request& req) { remote_ = client_address(node_.cfg, derived().socket(), req); }
  // `transport`: a string literal (kept as a pointer).
  void log_open(const char* name) {
    transport_ = name;
    opened_ms_ = node_.clk.now_ms();
    log::info("connection opened", {{"transport", transport()}, {"remote", remote_}, {"client", client_id()}});
  }
  void log_close(unsigned code, std::string_view reason) {
    if (!transport_) return;
    node_.met.disconnects.add(code);
    if (log::enabled(log::level::info))
      log::info("connection closed",
                {{"transport", transport()}, {"remote", remote_}, {"client", client_id()}, {"user", user_id()},
                 {"duration_ms", std::to_string(node_.clk.now_ms() - opened_ms_)}, {"code", std::to_string(code)},
                 {"reason", reason}});
    transport_ = nullptr;
  }

  // The transport is ready to write (handshake done / header out).
  void opened() {
    if (state_ == conn_state::starting) state_ = conn_state::open;
    else if (state_ == conn_state::starting_closing) state_ = conn_state::closing;
    do_write();
  }

  void flush() override {
    flush_scheduled_ = false;
    if (!writing() && can_write()) do_write();
  }

  bool writing() const { return stream_.writing(); }
  bool can_write() const { return state_ == conn_state::open || state_ == conn_state::closing; }

  // The items queued and not yet written are dropped (their bytes leave the stream's count).
  void drop_pending() {
    if (!wr_) return;
    for (auto& q : wr_->pending) stream_.dropped(q.size, q.replay);
    wr_->pending.clear();
  }

  void do_write() {
    if (!can_write()) return;
    auto& w = wr();
    w.bufs.clear();
    bool control = false;
    if constexpr (requires(Derived& d, std::vector<net::const_buffer>& b) { d.take_control(b); }) {
      control = derived().take_control(w.bufs);
      if (!derived().data_allowed()) drop_pending();
    }
    if (w.pending.empty() && !control) {
      if (state_ == conn_state::closing) derived().close_transport();
      return;
    }
    w.inflight.clear();
    std::size_t take = std::min(w.pending.size(), Derived::max_items_per_write);
    std::move(w.pending.begin(), w.pending.begin() + static_cast<std::ptrdiff_t>(take), std::back_inserter(w.inflight));
    w.pending.erase(w.pending.begin(), w.pending.begin() + static_cast<std::ptrdiff_t>(take));
    if (!w.inflight.empty()) derived().build_write(w.inflight, w.bufs);
    w.written = 0;
    stream_.write_started(node_.clk.now_ms());
    send_some();
  }

  // Writes what is left of the write in flight; waits for writability when the kernel takes only
  // part.
  void send_some() {
    if (state_ == conn_state::closed) return end_write(net::error::operation_aborted);
    if constexpr (requires(Derived& d) { d.tls(); }) {
      if (auto* t = derived().tls()) return tls_send(*t);
    }
    auto& w = *wr_;
    // A flush pass's first send of this write goes in the pass's batch (send_batch.hpp); the result
    // comes back in batch_sent() before the pass goes on.
    if (w_.batching && w.written == 0) {
      w.iov.resize(std::min(w.bufs.size(), max_gather_buffers));
      w.mh = msghdr{};
      w.mh.msg_iov = w.iov.data();
      w.mh.msg_iovlen = remaining_iovecs(w.bufs, 0, w.iov.data(), w.total);
      if (w_.sends.add(derived().socket().native_handle(), &w.mh, self())) {
        node_.met.sends_batched.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    beast::error_code ec;
    if (gather_send(derived().socket().native_handle(), w.bufs, w.written, ec)) return end_write({});
    if (ec) return end_write(ec);
    wait_writable();
  }

  void wait_writable() {
    derived().socket().async_wait(tcp::socket::wait_write, [s = self()](beast::error_code ec) {
      if (ec) return s->end_write(ec);
      s->send_some();
    });
  }

  // The batched send's result (bytes, or -errno): the connection goes on as after its own sendmsg.
  void batch_sent(long r) override {
    if (state_ == conn_state::closed) return end_write(net::error::operation_aborted);
    auto& w = *wr_;
    if (r >= 0) {
      w.written += static_cast<std::size_t>(r);
      if (w.written == w.total) return end_write({});
      return send_some();   // the rest: its own sendmsg, or a wait for writability
    }
    if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR) return wait_writable();
    end_write(beast::error_code(static_cast<int>(-r), beast::system_category()));
  }

  template <class SslStream>
  void tls_send(SslStream& t) {
    auto& w = *wr_;
    w.tls_staging.clear();
    for (auto& b : w.bufs) w.tls_staging.append(static_cast<const char*>(b.data()), b.size());
    net::async_write(t, net::buffer(w.tls_staging), [s = self()](beast::error_code ec, std::size_t n) {
      s->wr_->written = n;
      s->end_write(ec);
    });
  }

  void end_write(beast::error_code ec) {
    auto& w = *wr_;
    node_.met.bytes_sent.fetch_add(w.written, std::memory_order_relaxed);
    // One publish->write observation per write, for its oldest publication: the histogram shows
    // how long the longest-waiting item of each write waited, without a shared atomic per item.
    std::size_t bytes = 0, replay_bytes = 0;
    std::uint64_t oldest = 0;
    bool publications = false;
    for (auto& q : w.inflight) {
      (q.replay ? replay_bytes : bytes) += q.size;
      auto* p = as_publication(q.item);
      publications |= p != nullptr;
      if (p && p->published_ns && (!oldest || p->published_ns < oldest)) oldest = p->published_ns;
    }
    auto now = node_.clk.now_ms();
    if (oldest) node_.met.publish_to_write.observe((node_.clk.now_ns() - oldest) / 1000);
    if (replay_bytes) stream_.dropped(replay_bytes, true);
    stream_.write_done(bytes, false, now);
    w.inflight.clear();
    if (ec) return derived().finish();
    drain(now);   // a slow-consumer notice decided while the write was stuck goes out now
    do_write();
    // A write of replies only (the handshake's, a heartbeat) gives the write path back at once when
    // nothing waits: a connection that gets only those holds none between them, and a connect storm
    // leaves no freed write paths strewn between the connections' objects. One that carries
    // publications keeps it until the housekeeping tick finds it idle: fan-out never allocates.
    if (!publications && wr_ && !writing() && wr_->pending.empty()) {
      wr_.reset();
      derived().release_write_buffers();
    }
  }

  // The write path, on the heap only while there is something to write: the housekeeping tick (or
  // the end of a write of replies only, end_write) gives it back once the connection is idle (its
  // vectors in the connection object were ~110 bytes of every idle one). Nothing on the hot path
  // allocates: its vectors keep their capacity meanwhile.
  struct write_state {
    std::vector<queued> pending, inflight;
    std::vector<net::const_buffer> bufs;   // the write in flight
    std::size_t written = 0;               // bytes of it sent
    std::string tls_staging;               // TLS: the write in flight, contiguous
    // A batched send's message (valid until the batch runs): the write's buffers as iovecs.
    msghdr mh{};
    std::vector<iovec> iov;
    std::size_t total = 0;                 // bytes of the write in flight
  };
  write_state& wr() {
    if (!wr_) wr_ = std::make_unique<write_state>();
    return *wr_;
  }

  // (Members ordered so the small ones share one word: every idle connection holds them.)
  worker& w_;
  std::unique_ptr<write_state> wr_;
  const char* transport_ = nullptr;   // for the log lines; null until log_open and after log_close
  std::string_view transport() const { return transport_ ? transport_ : ""; }
  std::string remote_;
  std::uint64_t opened_ms_ = 0;
  std::unique_ptr<std::string> close_reason_;   // rare: on the heap when there is one
  const std::string& close_reason() const {
    static const std::string none;
    return close_reason_ ? *close_reason_ : none;
  }
  conn_state state_ = conn_state::starting;
  bool flush_scheduled_ = false;   // in the worker's to_flush list
  protocol::code close_code_ = protocol::code::ok;
};

}  // namespace pushwire::server
