// The configuration: server/ops/config.* (docs/fuzzing.md) — the JSON config file, and flags.
//
// Input: optional flag lines, then the config file. When the input contains a line "--\n", the
// lines before it are command-line arguments (one per line, e.g. "--max-batch=3" or "--demo") and
// the rest is the file; otherwise all of it is the file. The file is written to an in-memory file
// and named with --config, so parse_config reads it the way the server does.
// Checked beyond "no crash": a refusal has a message; an accepted configuration has a port in range,
// a `demo` namespace under --demo, and derives its history settings (history_cfg) without trouble.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "server/ops/config.hpp"

using namespace pushwire;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "config_fuzz: %s on: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

// The config file lives in memory (memfd): a file on disk per input costs milliseconds.
int file_fd() {
  static const int fd = memfd_create("pushwire-config-fuzz", 0);
  if (fd < 0) std::abort();
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args{"pushwire-server"};
  std::string_view file = input;
  if (auto sep = input.find("--\n"); sep != std::string_view::npos && (sep == 0 || input[sep - 1] == '\n')) {
    std::string_view flags = input.substr(0, sep);
    file = input.substr(sep + 3);
    while (!flags.empty() && args.size() < 64) {
      auto nl = flags.find('\n');
      args.emplace_back(flags.substr(0, nl));
      if (nl == std::string_view::npos) break;
      flags.remove_prefix(nl + 1);
    }
  }
  if (ftruncate(file_fd(), 0) != 0 || pwrite(file_fd(), file.data(), file.size(), 0) != static_cast<ssize_t>(file.size()))
    std::abort();
  args.push_back("--config");
  args.push_back("/proc/self/fd/" + std::to_string(file_fd()));
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  // Environment variables take the same setters as flags; one fixed entry keeps that path covered.
  std::map<std::string, std::string> env{{"PUSHWIRE_LOG_LEVEL", "warn"}};
  auto r = server::parse_config(static_cast<int>(argv.size()), argv.data(), env);
  if (r.help || r.version) return 0;
  if (!r.ok) {
    if (r.error.empty()) fail("refused without a message", input);
    return 0;
  }
  if (r.cfg.port < 0 || r.cfg.port > 65535) fail("port out of range accepted", input);
  if (r.cfg.demo && !r.cfg.namespaces.contains("demo")) fail("--demo without a demo namespace", input);
  auto h = r.cfg.history_cfg();
  if (h.namespaces.size() != r.cfg.namespaces.size() + (r.cfg.namespaces.contains("") ? 0 : 1))
    fail("history namespaces differ from the configured ones", input);
  (void)r.cfg.effective_dead_peer_ms();
  (void)r.cfg.effective_lease_ms();
  return 0;
}
