// The Pushwire server: construct from a config, start() binds and runs the I/O threads, shutdown()
// drains gracefully (disconnect frames with reconnect advice, then stop), wait() joins.
// (server.cpp: lifecycle, housekeeping, disconnect fan-out; listener.cpp: accepting.)
// No networking header here: tests and main include it cheaply.
#pragma once
#include <memory>
#include <string>

#include "server/hub/clock.hpp"
#include "server/hub/stores.hpp"
#include "server/ops/config.hpp"
#include "server/ops/metrics.hpp"

namespace pushwire::server {

class server {
 public:
  // `clk` (tests: a manual clock) must outlive the server; null = the steady clock. `stores` makes
  // the hub's stores; null = the memory stores.
  explicit server(config cfg, const clock* clk = nullptr, store_maker stores = nullptr);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds, prints the "listening" line, writes the port file, starts the threads.
  bool start(std::string& error);
  unsigned short port() const;
  std::string api_key() const;   // the key in force now (a reload may replace it)
  pushwire::server::metrics& stats();
  // SIGHUP, with the configuration parsed again (`fresh`). Applies what can change at run time: the
  // API key and token secret (flags, environment, config file or the key file re-read), the log
  // level, the limits checked when a connection or request arrives (max-connections,
  // max-connections-per-ip, demo-rate-per-s: the next one sees the new value), and the TLS certificate and key (re-read; new handshakes use them, open connections keep
  // theirs; a file that fails to load is logged and the previous certificate stays). Logs the names
  // of what changed (never a value of a secret) and, at warn, each other setting that differs from
  // the running one: those need a restart and are ignored. Any thread; one reload at a time.
  void reload(const config& fresh);
  // Graceful: stop accepting, send every client `disconnect` 4009 with jittered `after`, drain until
  // every connection closed or the shutdown timeout passed, then stop the threads. Idempotent.
  void shutdown();
  // Blocks until the threads ended (after shutdown()).
  void wait();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pushwire::server
