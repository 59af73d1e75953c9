// pushwire-server: parse the configuration, start, wait for SIGTERM/SIGINT, drain, exit; SIGHUP
// parses the configuration again (same flags, the environment and the files as they are now) and
// reloads (server::reload). systemd hears of each step (server/ops/service_notify.hpp).
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "server/ops/log.hpp"
#include "server/ops/service_notify.hpp"
#include "server/app/server.hpp"
#include "server/ops/version.hpp"

extern char** environ;

namespace {
std::map<std::string, std::string> pushwire_env() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && kv.starts_with("PUSHWIRE_"))
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace pushwire::server;
  auto r = parse_config(argc, argv, pushwire_env());
  if (r.help) {
    std::cout << help_text();
    return 0;
  }
  if (r.version) {
    std::cout << "pushwire-server " << version << " (" << build_commit << ")\n";
    return 0;
  }
  if (!r.ok) {
    log::error("bad configuration", {{"error", r.error}});
    std::cerr << help_text();
    return 2;
  }
  // Block the signals in every thread; this one waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server srv(std::move(r.cfg));
  std::string error;
  if (!srv.start(error)) {
    log::error("cannot start", {{"error", error}});
    return 1;
  }
  service_notify::ready();
  int sig = 0;
  for (;;) {
    sigwait(&set, &sig);
    if (sig != SIGHUP) break;
    log::info("reload requested", {{"signal", "SIGHUP"}});
    service_notify::reloading();
    auto fresh = parse_config(argc, argv, pushwire_env());
    if (fresh.ok)
      srv.reload(fresh.cfg);
    else
      log::error("reload: bad configuration, nothing changed", {{"error", fresh.error}});
    service_notify::ready();
  }
  service_notify::stopping();
  log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  srv.shutdown();
  srv.wait();
  log::info("stopped");
  return 0;
}
