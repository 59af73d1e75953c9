// Leveled structured logging: one JSON object per line on stderr,
//   {"ts":"2026-11-22T10:04:05.123Z","level":"info","msg":"listening","port":"8080"}
// Each line is built in memory and written with one write(2) under a mutex, so lines from different
// threads never interleave. Keys and values are JSON-escaped; bytes that are not valid UTF-8 become
// U+FFFD, so a hostile header or URL can neither break the JSON nor forge a second line.
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pushwire::server::log {

enum class level { debug, info, warn, error, off };

using field = std::pair<std::string_view, std::string_view>;
using field_list = std::initializer_list<field>;

// Lines below this level are dropped; `off` drops everything. Default: info. Thread-safe.
void set_level(level l);
level current_level();
// Whether write(l, ...) would print; lets callers skip building expensive fields.
bool enabled(level l);

// Accepts "debug", "info", "warn" (or "warning"), "error", "off", in any letter case.
// Leaves `out` untouched and returns false for anything else.
bool parse_level(std::string_view text, level& out);
std::string_view level_name(level l);

// The line write() would print (without checking the level, with the trailing '\n'); for tests.
std::string format_line(level l, std::string_view msg, field_list fields = {});

void write(level l, std::string_view msg, field_list fields = {});
inline void debug(std::string_view msg, field_list fields = {}) { write(level::debug, msg, fields); }
inline void info(std::string_view msg, field_list fields = {}) { write(level::info, msg, fields); }
inline void warn(std::string_view msg, field_list fields = {}) { write(level::warn, msg, fields); }
inline void error(std::string_view msg, field_list fields = {}) { write(level::error, msg, fields); }

}  // namespace pushwire::server::log
