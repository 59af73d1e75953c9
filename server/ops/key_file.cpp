#include "server/ops/key_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pushwire::server {
namespace {

// Sets `error` (it names the path, never a key) and fails.
bool fail(std::string& error, std::string text) {
  error = std::move(text);
  return false;
}

// The parent folder of `path` ("." for a bare name), to fsync the new directory entry.
std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool read_all(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 65536) { errno = EFBIG; return false; }   // a key file is a few hundred bytes
  }
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    auto n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool parse_keys(const std::string& text, const std::string& path, key_set& out, std::string& error) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  auto* obj = ec ? nullptr : v.if_object();
  if (!obj) return fail(error, "key file " + path + " is not a JSON object");
  key_set k;
  for (auto& [name, value] : *obj) {
    auto* s = value.if_string();
    std::string* field = name == "api_key" ? &k.api_key : name == "token_secret" ? &k.token_secret : nullptr;
    if (!field) return fail(error, "key file " + path + ": unknown field " + std::string(name));
    if (!s || s->empty()) return fail(error, "key file " + path + ": " + std::string(name) + " must be a non-empty string");
    *field = std::string(*s);
  }
  if (k.api_key.empty() || k.token_secret.empty())
    return fail(error, "key file " + path + " needs both api_key and token_secret");
  out = std::move(k);
  return true;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    auto n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("getrandom failed");
    got += static_cast<std::size_t>(n);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool load_or_create_key_file(const std::string& path, key_set& out, bool& created, std::string& error) {
  created = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string text;
      bool ok = read_all(fd, text);
      int read_errno = errno;
      ::close(fd);
      if (!ok) return fail(error, "cannot read key file " + path + ": " + std::strerror(read_errno));
      return parse_keys(text, path, out, error);
    }
    if (errno != ENOENT) return fail(error, "cannot read key file " + path + ": " + std::strerror(errno));
    // Missing: write a new one beside it, then link() it into place. link fails with EEXIST when
    // another process got there first; then that file is read (the loop's second round).
    key_set k{random_hex(32), random_hex(32)};
    boost::json::object o;
    o["api_key"] = k.api_key;
    o["token_secret"] = k.token_secret;
    std::string text = boost::json::serialize(o);
    text += '\n';
    std::string tmp = path;
    tmp += ".tmp.";
    tmp += std::to_string(::getpid());
    int wfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (wfd < 0) return fail(error, "cannot create key file " + path + ": " + std::strerror(errno));
    // The mode is exactly 0600 whatever the umask (which can only take bits away, but be explicit).
    bool ok = ::fchmod(wfd, 0600) == 0 && write_all(wfd, text) && ::fsync(wfd) == 0;
    int write_errno = errno;
    ::close(wfd);
    if (ok && ::link(tmp.c_str(), path.c_str()) != 0) {
      write_errno = errno;
      ok = false;
    }
    ::unlink(tmp.c_str());
    if (!ok) {
      if (write_errno == EEXIST) continue;   // created meanwhile by someone else: read theirs
      return fail(error, "cannot create key file " + path + ": " + std::strerror(write_errno));
    }
    if (int dfd = ::open(parent_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
      ::fsync(dfd);   // the new name survives a machine crash
      ::close(dfd);
    }
    created = true;
    out = std::move(k);
    return true;
  }
  return fail(error, "cannot create key file " + path);
}

}  // namespace pushwire::server
