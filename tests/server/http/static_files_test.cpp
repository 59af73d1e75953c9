// serve_static on targets Beast's parser accepts but no browser sends (found by tests/fuzz/http_fuzz).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/http/static_files.hpp"

namespace ps = pushwire::server;

namespace {

// A web root with one index.html, in a fresh temporary folder.
ps::config web_config() {
  auto dir = std::filesystem::temp_directory_path() / ("pushwire-static-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "index.html") << "<!doctype html>\n";
  ps::config c;
  c.web_root = dir.string();
  return c;
}

}  // namespace

// "GET ?x HTTP/1.1" has an empty path: it used to throw std::out_of_range in the I/O thread.
TEST(StaticFiles, TargetWithoutLeadingSlashIsNotFound) {
  auto c = web_config();
  for (std::string_view path : {"", "index.html", "%2e%2e/etc/passwd", "?x"}) {
    ps::http_reply r;
    EXPECT_NO_THROW(r = ps::serve_static(c, path, "")) << path;
    EXPECT_EQ(r.status, 404u) << path;
  }
  EXPECT_EQ(ps::serve_static(c, "/", "").status, 200u);
  EXPECT_EQ(ps::serve_static(c, "/../etc/passwd", "").status, 404u);
  std::filesystem::remove_all(c.web_root);
}
