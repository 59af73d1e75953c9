// The listening socket: accepts connections, spreads them over the I/O threads, and refuses them
// cleanly at the limits — the connection limit, draining, and the descriptor cap (DECISIONS §11: a
// spare descriptor lets it accept, answer 503 and close on EMFILE; it never spins on a failing
// accept()).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "server/app/tls_context.hpp"
#include "server/transport/worker.hpp"

namespace pushwire::server {

class listener {
 public:
  // `tls`: the context source of a TLS listener (each accepted connection takes the current
  // context), or null for plain HTTP.
  // `admin`: the --admin-port listener (plain HTTP; /metrics, /api/*, /healthz, /readyz only).
  listener(node& n, std::vector<std::unique_ptr<worker>>& workers, const tls_context_source* tls = nullptr,
           bool admin = false);
  ~listener();
  bool listen(const std::string& address, int port, std::string& error);
  unsigned short port() const { return port_; }
  void start();   // accepting on the first worker's thread
  void stop();    // from any thread

 private:
  void do_accept();
  void accept_later(unsigned ms);
  void take(tcp_socket sock, worker& target);
  void log_refused(std::string_view reason);
  void refuse(tcp_socket& sock) const;

  static constexpr int max_accepts_per_wakeup = 64;
  node& n_;
  std::vector<std::unique_ptr<worker>>& workers_;
  const tls_context_source* tls_;
  bool admin_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> backoff_;   // accept retry after a failing accept()
  unsigned short port_ = 0;
  unsigned next_worker_ = 0;
  int spare_fd_ = -1;
  std::uint64_t last_refused_log_ms_ = 0, refused_unlogged_ = 0;   // acceptor thread only
};

}  // namespace pushwire::server
