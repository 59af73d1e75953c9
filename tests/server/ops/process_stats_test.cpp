// process_stats.hpp: the figures move when the process does (CPU burnt, a descriptor opened, memory
// touched), and the start time is this process's.
#include "server/ops/process_stats.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

namespace pushwire::server {
namespace {

process_stats now_stats() {
  process_stats s;
  EXPECT_TRUE(read_process_stats(s));
  return s;
}

TEST(ProcessStats, OpenDescriptorsCountExactly) {
  auto before = now_stats();
  int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(now_stats().open_fds, before.open_fds + 2);
  ::close(a);
  ::close(b);
  EXPECT_EQ(now_stats().open_fds, before.open_fds);
  EXPECT_GT(before.max_fds, before.open_fds);
}

TEST(ProcessStats, CpuTimeGrowsWithWork) {
  auto before = now_stats();
  // Burn CPU until the counter moves (it ticks at 1/CLK_TCK); bounded by a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  volatile std::uint64_t x = 0;
  process_stats after;
  do {
    for (int i = 0; i < 1'000'000; ++i) x = x + static_cast<std::uint64_t>(i);
    after = now_stats();
  } while (after.cpu_us <= before.cpu_us && std::chrono::steady_clock::now() < deadline);
  EXPECT_GT(after.cpu_us, before.cpu_us);
}

TEST(ProcessStats, ResidentMemoryFollowsTouchedPages) {
  auto before = now_stats();
  constexpr std::size_t size = 64u << 20;
  std::unique_ptr<char[]> block(new char[size]);
  std::memset(block.get(), 1, size);
  auto after = now_stats();
  EXPECT_GE(after.rss_bytes, before.rss_bytes + size / 2);
  EXPECT_NE(block[size - 1], 0);
}

TEST(ProcessStats, StartTimeIsThisProcessStart) {
  auto s = now_stats();
  auto now_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LE(s.start_time_us, now_us);
  EXPECT_GT(s.start_time_us + 10ull * 60 * 1'000'000, now_us);   // this test binary started minutes ago at most
}

TEST(ProcessStats, RendersThePrometheusFamilies) {
  process_stats s{.cpu_us = 1'250'000, .rss_bytes = 4096, .open_fds = 7, .max_fds = 1024, .start_time_us = 1'700'000'000'500'000};
  std::string out;
  render_process_stats(out, s);
  EXPECT_NE(out.find("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nprocess_resident_memory_bytes 4096\n"), std::string::npos);
  EXPECT_NE(out.find("\nprocess_open_fds 7\n"), std::string::npos);
  EXPECT_NE(out.find("\nprocess_max_fds 1024\n"), std::string::npos);
  EXPECT_NE(out.find("\nprocess_start_time_seconds 1700000000.5\n"), std::string::npos);
}

}  // namespace
}  // namespace pushwire::server
