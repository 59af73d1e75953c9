#include "server/http/static_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/http/query.hpp"
#include "server/ops/version.hpp"

namespace pushwire::server {

namespace {

std::string_view mime_type(std::string_view path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view{} : path.substr(dot);
  if (ext == ".js" || ext == ".mjs") return "text/javascript";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".css") return "text/css";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".d.ts" || ext == ".ts") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool safe_relative(std::string_view p) {
  if (p.find('\0') != std::string_view::npos || p.find('\\') != std::string_view::npos) return false;
  std::size_t i = 0;
  while (i <= p.size()) {
    auto j = p.find('/', i);
    auto seg = p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (seg == ".." || seg == ".") return false;
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return true;
}

// Reads a regular file (not a directory) and its modification time in seconds.
bool read_regular_file(const std::string& path, std::string& out, std::time_t& mtime) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return false;
  out = ss.str();
  mtime = st.st_mtime;
  return true;
}

// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Names spelled out: strftime's
// depend on the locale.
std::string http_date(std::time_t t) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// Parses an IMF-fixdate; false for anything else (an unparseable If-Modified-Since is ignored).
bool parse_http_date(std::string_view s, std::time_t& out) {
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int day, year, h, m, sec;
  char mon[4] = {};
  std::string text(s);
  if (std::sscanf(text.c_str(), "%*3s, %2d %3s %4d %2d:%2d:%2d GMT", &day, mon, &year, &h, &m, &sec) != 6) return false;
  auto mi = months.find(std::string_view(mon, 3));
  if (mi == std::string_view::npos || mi % 3) return false;
  std::tm tm{};
  tm.tm_mday = day;
  tm.tm_mon = static_cast<int>(mi / 3);
  tm.tm_year = year - 1900;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  out = timegm(&tm);
  return true;
}

// A strong validator from the content: FNV-1a 64 and the length (not cryptographic; it only has to
// change when the file does).
std::string etag_of(std::string_view body) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) h = (h ^ c) * 1099511628211ull;
  char buf[48];
  std::snprintf(buf, sizeof buf, "\"%016llx-%zx\"", static_cast<unsigned long long>(h), body.size());
  return buf;
}

// Whether an If-None-Match list names `etag` (or is "*").
bool etag_matches(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool accepts_encoding(std::string_view header, std::string_view coding) {
  bool listed = false, listed_ok = false, star_ok = false;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    auto semi = item.find(';');
    auto name = item.substr(0, semi);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    // q=0 (or 0.0, 0.00, 0.000) refuses; any other weight accepts.
    bool ok = true;
    if (semi != std::string_view::npos) {
      auto params = item.substr(semi + 1);
      auto q = params.find("q=");
      if (q == std::string_view::npos) q = params.find("Q=");
      if (q != std::string_view::npos) {
        auto v = params.substr(q + 2);
        ok = false;
        for (char c : v) {
          if (c >= '1' && c <= '9') { ok = true; break; }
          if (c != '0' && c != '.') break;
        }
      }
    }
    bool same = name.size() == coding.size();
    for (std::size_t i = 0; same && i < name.size(); ++i)
      same = std::tolower(static_cast<unsigned char>(name[i])) == coding[i];
    if (same) {
      listed = true;
      listed_ok = ok;
    } else if (name == "*") {
      star_ok = ok;
    }
  }
  return listed ? listed_ok : star_ok;
}

http_reply serve_static(const config& cfg, const static_request& req) {
  http_reply r;
  std::string rel = percent_decode(req.path);
  std::vector<std::string> candidates;
  if (rel.starts_with("/pushwire/")) {
    std::string f = rel.substr(10);
    if (!cfg.client_root.empty() && !f.empty() && safe_relative(f)) {
      candidates.push_back(cfg.client_root + "/dist/" + f);
      candidates.push_back(cfg.client_root + "/src/" + f);
    }
  } else if (!cfg.web_root.empty() && rel.starts_with('/') && safe_relative(rel.substr(1))) {
    // (Beast accepts a target without the leading '/', e.g. "GET ?x": substr(1) of "" threw.)
    if (rel.ends_with("/")) rel += "index.html";
    candidates.push_back(cfg.web_root + rel);
    candidates.push_back(cfg.web_root + rel + "/index.html");
  }
  for (auto& c : candidates) {
    std::time_t mtime = 0;
    if (!read_regular_file(c, r.body, mtime)) continue;
    r.content_type = std::string(mime_type(c));
    auto etag = etag_of(r.body);
    // The representation: a precompressed sibling when the client takes it and it is not older
    // than the file (its own ETag: a strong validator names exact bytes).
    for (std::string_view coding : {"br", "gzip"}) {
      if (!accepts_encoding(req.accept_encoding, coding)) continue;
      std::string packed;
      std::time_t packed_mtime = 0;
      if (!read_regular_file(c + (coding == "br" ? ".br" : ".gz"), packed, packed_mtime) || packed_mtime < mtime)
        continue;
      r.body = std::move(packed);
      r.headers.emplace_back("Content-Encoding", std::string(coding));
      etag.insert(etag.size() - 1, coding == "br" ? "-br" : "-gz");
      break;
    }
    r.headers.emplace_back("Vary", "Accept-Encoding");
    bool versioned = !req.version.empty() && req.version == version;
    r.headers.emplace_back("Cache-Control", versioned ? "public, max-age=31536000, immutable" : "no-cache");
    std::time_t since = 0;
    bool not_modified = !req.if_none_match.empty()
                            ? etag_matches(req.if_none_match, etag)
                            : parse_http_date(req.if_modified_since, since) && mtime <= since;
    if (not_modified) {
      r.status = 304;
      r.body.clear();
    }
    r.headers.emplace_back("ETag", std::move(etag));
    r.headers.emplace_back("Last-Modified", http_date(mtime));
    return r;
  }
  r.status = 404;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "not found\n";
  return r;
}

}  // namespace pushwire::server
