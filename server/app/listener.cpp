#include "server/app/listener.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "server/http/http_session.hpp"
#include "server/http/http_types.hpp"
#include "server/ops/log.hpp"

namespace pushwire::server {

using protocol::code;

listener::listener(node& n, std::vector<std::unique_ptr<worker>>& workers, const tls_context_source* tls, bool admin)
    : n_(n), workers_(workers), tls_(tls), admin_(admin) {}

listener::~listener() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

bool listener::listen(const std::string& address, int port, std::string& error) {
  beast::error_code ec;
  auto addr = net::ip::make_address(address, ec);
  if (ec) { error = "bad address " + address; return false; }
  acceptor_ = std::make_unique<tcp::acceptor>(workers_[0]->ioc);
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) { error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message(); return false; }
  port_ = acceptor_->local_endpoint().port();
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  backoff_ = std::make_unique<net::steady_timer>(workers_[0]->ioc);
  return true;
}

void listener::start() { do_accept(); }

void listener::stop() {
  net::post(workers_[0]->ioc, [this] {
    beast::error_code ec;
    if (acceptor_) acceptor_->close(ec);
    if (backoff_) backoff_->cancel();
  });
}

// A refused connection: what already arrived of its request is read (so closing does not reset
// the connection and lose the answer), then 503 with error 4015, then close. Never blocks. A TLS
// listener only closes: a plain-text answer would be garbage to a TLS client, and a handshake
// costs what the refusal is there to save.
void listener::refuse(tcp_socket& sock) const {
  static const std::string msg = [] {
    std::string body = error_json(code::too_many_connections, "too many connections");
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  beast::error_code ec;
  sock.non_blocking(true, ec);
  char sink[4096];
  sock.read_some(net::buffer(sink), ec);
  if (!tls_) sock.write_some(net::buffer(msg), ec);
  sock.shutdown(tcp_socket::shutdown_both, ec);
  sock.close(ec);
}

// One log line per second at most while connections are refused at accept (a flood must not
// flood the log too); `refused` counts those since the last line.
void listener::log_refused(std::string_view reason) {
  n_.met.connections_refused.fetch_add(1, std::memory_order_relaxed);
  ++refused_unlogged_;
  auto now = n_.clk.now_ms();
  if (last_refused_log_ms_ != 0 && now < last_refused_log_ms_ + 1000) return;
  last_refused_log_ms_ = now;
  log::warn("connection refused", {{"reason", std::string(reason)}, {"refused", std::to_string(refused_unlogged_)},
                                   {"connections", std::to_string(n_.connections.load())},
                                   {"max_connections", std::to_string(n_.max_connections.load())}});
  refused_unlogged_ = 0;
}

// Accepts again after `ms` (a failing accept() is never retried in a busy loop).
void listener::accept_later(unsigned ms) {
  backoff_->expires_after(std::chrono::milliseconds(ms));
  backoff_->async_wait([this](beast::error_code ec) {
    if (ec || !acceptor_->is_open()) return;
    do_accept();
  });
}

void listener::do_accept() {
  auto& target = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  acceptor_->async_accept(target.ioc, [this, &target](beast::error_code ec, tcp_socket sock) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec == net::error::no_descriptors || ec.value() == EMFILE || ec.value() == ENFILE) {
      // At the descriptor cap (DECISIONS §11): free the spare, accept the waiting connection and
      // refuse it, then take the spare back. The peer learns at once, and the pending connection
      // is consumed, so the loop does not spin on a listening socket that stays readable.
      if (spare_fd_ >= 0) { ::close(spare_fd_); spare_fd_ = -1; }
      beast::error_code ec2;
      acceptor_->non_blocking(true, ec2);
      tcp_socket extra(target.ioc);
      acceptor_->accept(extra, ec2);
      bool took = !ec2;
      if (took) refuse(extra);
      acceptor_->non_blocking(false, ec2);
      spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      // Counted only when a connection was refused: accept() also fails with EMFILE when none is
      // pending, and that failure refused nobody (counting it over-counted, issue 18).
      if (took) log_refused(ec.value() == ENFILE ? "system descriptor cap (ENFILE)" : "descriptor cap (EMFILE)");
      // accept() fails with EMFILE even when no connection is pending (the descriptor comes
      // first): then wait until one is, instead of spinning. Without a spare (another thread
      // took the descriptor), wait a little.
      if (spare_fd_ < 0) return accept_later(50);
      if (!took) {
        return acceptor_->async_wait(tcp::acceptor::wait_read, [this](beast::error_code ec3) {
          if (ec3 || !acceptor_->is_open()) return;
          do_accept();
        });
      }
      return do_accept();
    }
    if (ec) {
      // A connection aborted before accept is routine; anything else (ENOBUFS, ENOMEM, ...) may
      // persist: back off.
      if (ec == net::error::connection_aborted) return do_accept();
      log::warn("accept failed", {{"error", ec.message()}});
      return accept_later(50);
    }
    if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    take(std::move(sock), target);
    // A reconnect storm fills the listen backlog faster than one accept per handler drains it
    // (the overflow turns into SYN retransmits, seconds late): take what else is already
    // waiting, without blocking, up to a bound that keeps this thread's other work going.
    beast::error_code ec2;
    acceptor_->non_blocking(true, ec2);
    for (int i = 0; i < max_accepts_per_wakeup && !ec2; ++i) {
      auto& w = *workers_[next_worker_];
      tcp_socket more(w.ioc);
      acceptor_->accept(more, ec2);
      if (ec2) break;   // would_block (nothing waiting) or an error the async path handles
      next_worker_ = (next_worker_ + 1) % workers_.size();
      take(std::move(more), w);
    }
    acceptor_->non_blocking(false, ec2);
    do_accept();
  });
}


// An accepted socket: refused at the limits, else handed to its worker's HTTP reader.
void listener::take(tcp_socket sock, worker& target) {
  // Draining still accepts: /readyz must answer 503 until the listener closes at the end of the
  // drain; the transports themselves refuse new streams with 4009 meanwhile.
  if (n_.connections.load() >= n_.max_connections.load()) {
    refuse(sock);
    log_refused("max connections");
    return;
  }
  n_.connections.fetch_add(1);
  n_.met.connections_total.fetch_add(1, std::memory_order_relaxed);
  net::post(target.ioc, [this, &target, s = std::move(sock)]() mutable {
    beast::error_code ec3;
    s.set_option(tcp::no_delay(true), ec3);
    if (auto b = n_.cfg.socket_send_buffer_bytes)
      s.set_option(net::socket_base::send_buffer_size(static_cast<int>(std::min<std::size_t>(b, 1u << 30))), ec3);
    // The connection-limit slot: given back when the last owner of the connection lets go.
    std::shared_ptr<void> slot(static_cast<void*>(&n_), [](void* p) { static_cast<node*>(p)->connections.fetch_sub(1); });
    start_http(n_, target, std::move(s), std::move(slot), tls_ ? tls_->current() : nullptr, admin_);
  });
}

}  // namespace pushwire::server
