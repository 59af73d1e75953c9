// The server binary as a child process, for tests that need it apart from the test process: its
// own descriptor table (counted through /proc/<pid>/fd) and its own RLIMIT_NOFILE. The port comes
// from --port-file; every wait has a deadline. Killed (SIGKILL) and reaped on destruction.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace test {

class spawned_server {
 public:
  // `nofile` > 0: the child's RLIMIT_NOFILE (soft and hard).
  explicit spawned_server(std::vector<std::string> flags, rlim_t nofile = 0) {
    static int runs = 0;
    auto base = std::string(::testing::TempDir()) + "/pw_spawned_" + std::to_string(getpid()) + "_" + std::to_string(++runs);
    std::string port_file = base + ".port";
    log_path_ = base + ".log";
    std::remove(port_file.c_str());
    std::vector<std::string> args = {PUSHWIRE_SERVER_BINARY, "--port", "0", "--port-file", port_file};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid = fork();
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log_fd >= 0) ::dup2(log_fd, 2);
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);   // inherit nothing but stdio
      if (nofile) {
        rlimit rl{nofile, nofile};
        ::setrlimit(RLIMIT_NOFILE, &rl);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (port == 0 && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file);
      int p = 0;
      if (in >> p && p > 0) port = static_cast<unsigned short>(p);
      else std::this_thread::yield();
    }
    std::remove(port_file.c_str());
  }
  ~spawned_server() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    std::remove(log_path_.c_str());
  }
  spawned_server(const spawned_server&) = delete;
  spawned_server& operator=(const spawned_server&) = delete;

  // Whether the child is still running (not exited, not killed by a signal).
  bool alive() const {
    int status = 0;
    return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
  }
  // Open descriptors of the child, or -1 when /proc cannot tell.
  int open_fds() const {
    DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    int n = 0;
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
  }
  std::string log() const {
    std::ifstream in(log_path_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  pid_t pid = -1;
  unsigned short port = 0;

 private:
  std::string log_path_;
};

}  // namespace test
