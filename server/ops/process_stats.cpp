#include "server/ops/process_stats.hpp"

#include "server/ops/prometheus_text.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>

namespace pushwire::server {

namespace {

void append_u64(std::string& out, std::uint64_t v) { protocol::append_uint(out, v); }

// HELP and TYPE, then the sample's name: each process family has one sample.
void family_sample(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  family(out, name, type, help);
  out += name;
  out += ' ';
}


std::string read_all(const char* path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The boot time in seconds since the epoch ("btime" in /proc/stat); 0 when unknown.
std::uint64_t boot_time_s() {
  std::istringstream in(read_all("/proc/stat"));
  std::string key;
  std::uint64_t v;
  while (in >> key) {
    if (key == "btime" && in >> v) return v;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

bool read_process_stats(process_stats& out) {
  const auto ticks = static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
  bool ok = ticks > 0;
  // /proc/self/stat: "pid (comm) state ..."; comm may hold spaces and parentheses, so the fields
  // are counted from the last ')'. After it: field 3 (state) ... 14 utime, 15 stime, 22 starttime.
  std::string stat = read_all("/proc/self/stat");
  auto close = stat.rfind(')');
  if (ok && close != std::string::npos) {
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    std::uint64_t utime = 0, stime = 0, start = 0;
    for (int i = 3; i <= 22 && in >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
      if (i == 22) start = std::stoull(field);
    }
    out.cpu_us = (utime + stime) * 1'000'000 / ticks;
    if (auto boot = boot_time_s()) out.start_time_us = boot * 1'000'000 + start * 1'000'000 / ticks;
    else ok = false;
  } else {
    ok = false;
  }
  std::istringstream statm(read_all("/proc/self/statm"));
  std::uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) out.rss_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  else ok = false;
  std::error_code ec;
  std::uint64_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  // The iterator's own descriptor was open while counting.
  if (!ec && fds) out.open_fds = fds - 1;
  else ok = false;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) out.max_fds = rl.rlim_cur;
  return ok;
}

void render_process_stats(std::string& out, const process_stats& s) {
  family_sample(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  append_seconds(out, s.cpu_us);
  out += '\n';
  family_sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  append_u64(out, s.rss_bytes);
  out += '\n';
  family_sample(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  append_u64(out, s.open_fds);
  out += '\n';
  if (s.max_fds) {
    family_sample(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    append_u64(out, s.max_fds);
    out += '\n';
  }
  family_sample(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
  append_seconds(out, s.start_time_us);
  out += '\n';
}

}  // namespace pushwire::server
