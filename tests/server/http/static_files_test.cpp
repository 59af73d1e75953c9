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
    EXPECT_NO_THROW(r = ps::serve_static(c, {.path = path})) << path;
    EXPECT_EQ(r.status, 404u) << path;
  }
  EXPECT_EQ(ps::serve_static(c, {.path = "/"}).status, 200u);
  EXPECT_EQ(ps::serve_static(c, {.path = "/../etc/passwd"}).status, 404u);
  std::filesystem::remove_all(c.web_root);
}

TEST(StaticFiles, AcceptEncodingWeights) {
  EXPECT_TRUE(ps::accepts_encoding("gzip, deflate, br", "br"));
  EXPECT_TRUE(ps::accepts_encoding("gzip, deflate, br", "gzip"));
  EXPECT_TRUE(ps::accepts_encoding("GZIP;q=0.5", "gzip"));
  EXPECT_FALSE(ps::accepts_encoding("gzip;q=0, br", "gzip"));
  EXPECT_FALSE(ps::accepts_encoding("gzip;q=0.000", "gzip"));
  EXPECT_TRUE(ps::accepts_encoding("gzip;q=0.001", "gzip"));
  EXPECT_FALSE(ps::accepts_encoding("", "gzip"));
  EXPECT_FALSE(ps::accepts_encoding("identity", "br"));
  EXPECT_TRUE(ps::accepts_encoding("*", "br"));
  EXPECT_FALSE(ps::accepts_encoding("*, br;q=0", "br"));
  EXPECT_FALSE(ps::accepts_encoding("*;q=0", "gzip"));
  EXPECT_FALSE(ps::accepts_encoding("brotli", "br"));
}
