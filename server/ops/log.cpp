#include "server/ops/log.hpp"

#include "protocol/json_scan.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace pushwire::server::log {
namespace {

std::atomic<level> g_level{level::info};
std::mutex g_write_mutex;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Valid UTF-8 as it is; every byte that does not start a valid sequence becomes U+FFFD.
std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    // The lead byte fixes the length of a sequence, so at most one n in 1..4 can be valid.
    std::size_t n = 0;
    for (std::size_t k = 1; k <= 4 && i + k <= s.size(); ++k) {
      if (protocol::valid_utf8(s.substr(i, k))) {
        n = k;
        break;
      }
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void append_string(std::string& out, std::string_view s) {
  if (protocol::valid_utf8(s))
    protocol::append_json_string(out, s);
  else
    protocol::append_json_string(out, sanitize_utf8(s));
}

void append_timestamp(std::string& out) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {  // before 1970: keep the fraction positive
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  out += '.';
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + millis / 10 % 10);
  out += static_cast<char>('0' + millis % 10);
  out += 'Z';
}

}  // namespace

void set_level(level l) { g_level.store(l, std::memory_order_relaxed); }
level current_level() { return g_level.load(std::memory_order_relaxed); }

bool enabled(level l) {
  level cur = current_level();
  return l != level::off && cur != level::off && static_cast<int>(l) >= static_cast<int>(cur);
}

bool parse_level(std::string_view text, level& out) {
  if (iequals(text, "debug")) out = level::debug;
  else if (iequals(text, "info")) out = level::info;
  else if (iequals(text, "warn") || iequals(text, "warning")) out = level::warn;
  else if (iequals(text, "error")) out = level::error;
  else if (iequals(text, "off")) out = level::off;
  else return false;
  return true;
}

std::string_view level_name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
  }
  return "unknown";
}

std::string format_line(level l, std::string_view msg, field_list fields) {
  std::string line;
  line.reserve(64 + msg.size() + fields.size() * 32);
  line += "{\"ts\":\"";
  append_timestamp(line);
  line += "\",\"level\":\"";
  line += level_name(l);
  line += "\",\"msg\":";
  append_string(line, msg);
  for (const field& f : fields) {
    line += ',';
    append_string(line, f.first);
    line += ':';
    append_string(line, f.second);
  }
  line += "}\n";
  return line;
}

void write(level l, std::string_view msg, field_list fields) {
  if (!enabled(l)) return;
  std::string line = format_line(l, msg, fields);
  std::lock_guard<std::mutex> lock(g_write_mutex);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(2, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace pushwire::server::log
