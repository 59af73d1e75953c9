// A redis-server process of a test's own (Debian's, installed by scripts/setup.sh), on a free port
// of 127.0.0.1 in a temp dir, no persistence unless asked; stopped (SIGKILL) and removed with the
// object. No system-wide instance is ever used (DECISIONS §23).
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "server/redis/redis_connection.hpp"
#include "tests/server/test_client.hpp"

extern char** environ;

namespace test {

// A redis-server process of the test's own, on 127.0.0.1:port, no persistence, in a temp dir.
class redis_process {
 public:
  // `persistent`: an append-only file fsynced on every write, so a restart keeps every write.
  explicit redis_process(unsigned short port = 0, bool persistent = false)
      : port_(port ? port : free_port()), persistent_(persistent) {
    dir_ = std::filesystem::temp_directory_path() / ("pushwire-redis-" + std::to_string(getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    start();
  }
  ~redis_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void start() {
    std::string port = std::to_string(port_), dir = dir_.string();
    std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", persistent_ ? "yes" : "no", "--appendfsync", "always", "--dir", dir, "--loglevel", "warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its log goes to a file in its directory, not into the test output.
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = dir + "/redis.log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawnp(&pid_, "redis-server", &fa, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
    // Ready when it answers on its port.
    ready_ = test::eventually([&] {
      boost::asio::io_context ioc;
      boost::asio::ip::tcp::socket s(ioc);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
      return !ec;
    }, std::chrono::seconds(10));
  }
  void stop() {
    if (!pid_) return;
    kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = 0;
  }
  bool ready() const { return pid_ && ready_; }
  void pause() { if (pid_) kill(pid_, SIGSTOP); }    // a stalled Redis: reads and answers nothing
  void resume() { if (pid_) kill(pid_, SIGCONT); }
  // One command over a connection of its own (e.g. FLUSHALL, CLIENT KILL, DBSIZE), waited for.
  pushwire::server::redis_reply command(std::vector<std::string> args) {
    boost::asio::io_context ioc;
    pushwire::server::redis_endpoint ep;
    ep.port = port_;
    auto c = std::make_shared<pushwire::server::redis_connection>(ioc, ep, pushwire::server::redis_connection::options{});
    std::optional<pushwire::server::redis_reply> out;
    c->start();
    c->command(std::move(args), [&](pushwire::server::redis_reply r) { out = std::move(r); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!out && std::chrono::steady_clock::now() < deadline) ioc.run_for(std::chrono::milliseconds(5));
    c->stop();
    return out.value_or(pushwire::server::redis_reply::failure("no reply"));
  }
  unsigned short port() const { return port_; }

 private:
  static unsigned short free_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }
  unsigned short port_;
  bool persistent_ = false;
  std::filesystem::path dir_;
  pid_t pid_ = 0;
  bool ready_ = false;
};

}  // namespace test
