#include "server/ops/log.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace plog = pushwire::server::log;

namespace {

// Restores the process-wide level after each test.
class Log : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = plog::current_level(); }
  void TearDown() override { plog::set_level(saved_); }
  plog::level saved_{};
};

std::vector<std::string> capture_lines(const std::function<void()>& body) {
  ::testing::internal::CaptureStderr();
  body();
  std::string text = ::testing::internal::GetCapturedStderr();
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

boost::json::object parse_line(const std::string& line) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << line;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

}  // namespace

TEST_F(Log, ParsesLevelNames) {
  plog::level l = plog::level::off;
  EXPECT_TRUE(plog::parse_level("debug", l));
  EXPECT_EQ(l, plog::level::debug);
  EXPECT_TRUE(plog::parse_level("INFO", l));
  EXPECT_EQ(l, plog::level::info);
  EXPECT_TRUE(plog::parse_level("warn", l));
  EXPECT_EQ(l, plog::level::warn);
  EXPECT_TRUE(plog::parse_level("Warning", l));
  EXPECT_EQ(l, plog::level::warn);
  EXPECT_TRUE(plog::parse_level("error", l));
  EXPECT_EQ(l, plog::level::error);
  EXPECT_TRUE(plog::parse_level("off", l));
  EXPECT_EQ(l, plog::level::off);
  l = plog::level::info;
  EXPECT_FALSE(plog::parse_level("", l));
  EXPECT_FALSE(plog::parse_level("verbose", l));
  EXPECT_FALSE(plog::parse_level("info ", l));
  EXPECT_FALSE(plog::parse_level("err", l));
  EXPECT_EQ(l, plog::level::info);  // untouched on failure
}

TEST_F(Log, FiltersByLevel) {
  plog::set_level(plog::level::warn);
  auto lines = capture_lines([] {
    plog::debug("d");
    plog::info("i");
    plog::warn("w");
    plog::error("e");
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(parse_line(lines[0]).at("msg"), "w");
  EXPECT_EQ(parse_line(lines[0]).at("level"), "warn");
  EXPECT_EQ(parse_line(lines[1]).at("msg"), "e");
  EXPECT_EQ(parse_line(lines[1]).at("level"), "error");

  plog::set_level(plog::level::debug);
  lines = capture_lines([] {
    plog::debug("d");
    plog::info("i");
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(parse_line(lines[0]).at("level"), "debug");

  plog::set_level(plog::level::off);
  lines = capture_lines([] {
    plog::error("e");
    plog::write(plog::level::off, "never");
  });
  EXPECT_TRUE(lines.empty());

  plog::set_level(plog::level::debug);
  EXPECT_TRUE(capture_lines([] { plog::write(plog::level::off, "never"); }).empty());
  EXPECT_TRUE(plog::enabled(plog::level::debug));
  plog::set_level(plog::level::error);
  EXPECT_FALSE(plog::enabled(plog::level::warn));
  EXPECT_TRUE(plog::enabled(plog::level::error));
}

TEST_F(Log, LineHasTimestampLevelMessageAndFields) {
  plog::set_level(plog::level::info);
  auto lines = capture_lines([] { plog::info("listening", {{"port", "8080"}, {"address", "127.0.0.1"}}); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("{\"ts\":\"", 0), 0u);
  boost::json::object o = parse_line(lines[0]);
  EXPECT_EQ(o.size(), 5u);
  EXPECT_EQ(o.at("level"), "info");
  EXPECT_EQ(o.at("msg"), "listening");
  EXPECT_EQ(o.at("port"), "8080");
  EXPECT_EQ(o.at("address"), "127.0.0.1");
  std::string ts(o.at("ts").as_string());
  EXPECT_TRUE(std::regex_match(ts, std::regex(R"(^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3}Z$)")))
      << ts;
}

TEST_F(Log, EscapesOddInput) {
  std::string nasty = "quote\" backslash\\ newline\n cr\r tab\t nul";
  nasty += '\0';
  nasty += " bell\x07 del\x7f";
  std::string bad_utf8 = "caf\xe9 \xc3\xa9 \xff\xfe \xed\xa0\x80 \xe2\x82";  // latin-1, valid é, junk, surrogate, cut
  std::string line = plog::format_line(plog::level::warn, nasty, {{"ua", bad_utf8}, {"k\"ey\n", "v"}});
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one physical line: no forged second entry
  boost::json::object o = parse_line(line);
  EXPECT_EQ(o.at("msg").as_string(), boost::json::string_view(nasty));
  EXPECT_EQ(o.at("ua").as_string(),
            "caf\xef\xbf\xbd \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(o.at("k\"ey\n"), "v");
  // Valid multi-byte text passes through untouched.
  std::string emoji = "\xf0\x9f\x98\x80 \xe2\x82\xac";
  EXPECT_EQ(parse_line(plog::format_line(plog::level::info, emoji)).at("msg").as_string(),
            boost::json::string_view(emoji));
}

TEST_F(Log, ConcurrentLinesNeverInterleave) {
  plog::set_level(plog::level::info);
  constexpr int threads = 4, per_thread = 200;
  auto lines = capture_lines([] {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([t] {
        std::string big(3000, static_cast<char>('a' + t));
        for (int i = 0; i < per_thread; ++i) plog::info("line", {{"payload", big}});
      });
    for (auto& th : pool) th.join();
  });
  ASSERT_EQ(lines.size(), std::size_t{threads * per_thread});
  for (const std::string& line : lines) {
    boost::json::object o = parse_line(line);
    ASSERT_TRUE(o.contains("payload"));
    const boost::json::string& p = o.at("payload").as_string();
    ASSERT_EQ(p.size(), 3000u);
    EXPECT_EQ(p.find_first_not_of(p[0]), boost::json::string::npos);
  }
}

