// The process figures every Prometheus client library exports under the same names
// (process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from /proc at scrape time: nothing is kept between scrapes.
#pragma once
#include <cstdint>
#include <string>

namespace pushwire::server {

struct process_stats {
  std::uint64_t cpu_us = 0;          // user + system CPU time
  std::uint64_t rss_bytes = 0;       // resident set
  std::uint64_t open_fds = 0;        // entries in /proc/self/fd
  std::uint64_t max_fds = 0;         // RLIMIT_NOFILE soft limit (0: unlimited)
  std::uint64_t start_time_us = 0;   // process start, microseconds since the Unix epoch
};

// False when /proc is not mounted or unreadable (the figures it could not read stay 0).
bool read_process_stats(process_stats& out);

// The five families in Prometheus text format (appended to `out`).
void render_process_stats(std::string& out, const process_stats& s);

}  // namespace pushwire::server
