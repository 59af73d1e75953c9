#include "server/http/static_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/http/query.hpp"

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

bool read_regular_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  // Reject directories: an ifstream opens them on Linux but reading fails.
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return false;
  out = ss.str();
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) { ::close(fd); return false; }
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

http_reply serve_static(const config& cfg, std::string_view path, std::string_view if_none_match) {
  http_reply r;
  std::string rel = percent_decode(path);
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
    if (read_regular_file(c, r.body)) {
      r.content_type = std::string(mime_type(c));
      r.headers.emplace_back("Cache-Control", "no-cache");
      auto etag = etag_of(r.body);
      if (!if_none_match.empty() && etag_matches(if_none_match, etag)) {
        r.status = 304;
        r.body.clear();
      }
      r.headers.emplace_back("ETag", std::move(etag));
      return r;
    }
  }
  r.status = 404;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "not found\n";
  return r;
}

}  // namespace pushwire::server
