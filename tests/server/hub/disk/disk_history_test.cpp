// What the durable history adds to the hub contract (hub_contract_test.cpp runs that against it):
// a second store on the same data dir finds every channel's epoch, offsets and kept history, with
// trims and ages as they were; after a machine crash under a policy that acknowledges before fsync
// (a copy of the files taken while the store runs, opened under another boot id) every channel
// starts a new epoch, and only then.
#include "server/hub/disk/disk_history.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <sqlite3.h>

using namespace pushwire::server;
using pushwire::protocol::code;
using pushwire::protocol::position;
namespace fs = std::filesystem;

namespace {

class DiskHistory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pushwire-disk-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<disk_history> open(const std::string& sub, durability policy = durability::fsync,
                                     std::string boot = "boot-1", std::int64_t time_base = 0,
                                     std::size_t size = 3, std::uint64_t ttl = 60000) {
    disk_history_config c;
    c.mem.namespaces[""] = history_policy{size, ttl};
    c.mem.epoch_seed = seed_++;
    c.dir = (fs::path(root_) / sub).string();
    c.policy = policy;
    c.boot_id = std::move(boot);
    c.time_base_ms = time_base;
    return std::make_unique<disk_history>(c);
  }
  template <class R, class Call>
  static R await(Call&& call) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<R> out;
    call([&](R r) {
      std::lock_guard lk(mu);
      out = std::move(r);
      cv.notify_all();
    });
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return out.has_value(); }));
    return out.value_or(R{});
  }
  static append_result append(history_store& h, std::string_view ch, std::uint64_t now, std::string data = "1") {
    return await<append_result>([&](auto done) { h.append(ch, std::move(data), {}, 0, now, done); });
  }
  static history_result read(history_store& h, std::string_view ch, std::uint64_t now) {
    return await<history_result>([&](auto done) { h.read(ch, std::nullopt, 0, now, done); });
  }
  static std::vector<std::uint64_t> offsets(const history_result& r) {
    std::vector<std::uint64_t> out;
    for (auto& p : r.publications) out.push_back(p->pos.offset);
    return out;
  }
  // The files as a crash would leave them: copied while the store still runs.
  void crash_copy(const std::string& from, const std::string& to) {
    fs::create_directories(fs::path(root_) / to);
    for (auto* f : {"history.db", "history.db-wal"})
      if (fs::exists(fs::path(root_) / from / f)) fs::copy_file(fs::path(root_) / from / f, fs::path(root_) / to / f);
  }

  std::string root_;
  std::uint64_t seed_ = 11;
  const std::uint64_t now_ = 1'000'000;
};

TEST_F(DiskHistory, ReopenKeepsEpochOffsetsTrimmedHistoryAndAges) {
  position top;
  {
    auto h = open("d");
    for (int i = 1; i <= 5; ++i) top = append(*h, "a", now_, std::to_string(i)).pub->pos;
    append(*h, "b", now_ + 500);
  }
  auto h = open("d");
  auto r = read(*h, "a", now_);
  EXPECT_EQ(r.top, top);
  EXPECT_EQ(offsets(r), (std::vector<std::uint64_t>{3, 4, 5}));   // trimmed by count, on disk too
  EXPECT_EQ(r.publications.back()->data, "5");
  auto next = append(*h, "a", now_);
  EXPECT_EQ(next.pub->pos, (position{top.epoch, 6}));
  h.reset();
  // Ages count across a restart: 59.8 s of wall time passed for the next run.
  h = open("d", durability::fsync, "boot-1", 59'800);
  EXPECT_TRUE(read(*h, "a", now_ + 200).publications.empty());                   // 60 s old: gone
  EXPECT_EQ(read(*h, "a", now_ + 200).top.offset, 6u);                           // the position stays
  EXPECT_EQ(read(*h, "b", now_ + 200).publications.size(), 1u);                  // 59.5 s old: kept
}

// Rows past the window by count leave the file in batches (an eighth of the window), not one per
// append: the file holds at most a batch more than the window, and a restart serves the window only.
TEST_F(DiskHistory, CountTrimsOnDiskAreBatchedAndBounded) {
  constexpr std::size_t window = 64, batch = window / 8;
  auto rows_on_disk = [&] {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((fs::path(root_) / "d" / "history.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM pubs;", -1, &q, nullptr);
    sqlite3_step(q);
    auto n = static_cast<std::size_t>(sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
  };
  position top;
  {
    auto h = open("d", durability::fsync, "boot-1", 0, window);
    for (int i = 1; i <= 203; ++i) top = append(*h, "a", now_, std::to_string(i)).pub->pos;
  }
  std::size_t rows = rows_on_disk();   // 203 = 1 + 8 * 25 + 2: two rows wait for the next batch
  EXPECT_GE(rows, window);
  EXPECT_LE(rows, window + batch);
  auto h = open("d", durability::fsync, "boot-1", 0, window);
  auto r = read(*h, "a", now_);
  EXPECT_EQ(r.top, top);
  ASSERT_EQ(r.publications.size(), window);   // the rows still waiting for their batch are not served
  EXPECT_EQ(r.publications.front()->pos.offset, 203 - window + 1);
  EXPECT_EQ(r.publications.back()->data, "203");
  EXPECT_EQ(append(*h, "a", now_).pub->pos, (position{top.epoch, 204}));
  for (int i = 0; i < 100; ++i) append(*h, "a", now_);
  h.reset();
  EXPECT_LE(rows_on_disk(), window + batch);   // after a restart the batches go on from where they were
}

TEST_F(DiskHistory, MachineCrashUnderWeakPoliciesStartsNewEpochsOnlyThen) {
  for (auto policy : {durability::os, durability::interval, durability::fsync}) {
    SCOPED_TRACE(std::string(durability_name(policy)));
    fs::remove_all(fs::path(root_));
    fs::create_directories(root_);
    auto h = open("live", policy);
    auto pos = append(*h, "a", now_).pub->pos;
    append(*h, "a", now_);
    crash_copy("live", "same-boot");
    crash_copy("live", "rebooted");
    {   // a killed process: the OS kept every commit; same epoch, same offsets
      auto s = open("same-boot", policy, "boot-1");
      EXPECT_EQ(read(*s, "a", now_).top, (position{pos.epoch, 2}));
    }
    {   // the machine restarted: under os/interval the tail may be gone, so a new epoch
      auto s = open("rebooted", policy, "boot-2");
      auto top = read(*s, "a", now_).top;
      if (policy == durability::fsync) {
        EXPECT_EQ(top, (position{pos.epoch, 2}));
      } else {
        EXPECT_NE(top.epoch, pos.epoch);
        EXPECT_EQ(top.offset, 0u);
      }
    }
    h.reset();
    auto clean = open("live", policy, "boot-2");   // a clean shutdown keeps epochs across a reboot
    EXPECT_EQ(read(*clean, "a", now_).top, (position{pos.epoch, 2}));
  }
}

TEST_F(DiskHistory, IdleChannelsAreForgottenOnDiskToo) {
  std::string epoch;
  {
    auto h = open("d", durability::fsync, "boot-1", 0, 3, 100);
    epoch = append(*h, "a", now_).pub->pos.epoch;
    h->sweep(now_ + 1000, [](std::string_view) { return false; });
    EXPECT_TRUE(h->channels().empty());
  }
  auto h = open("d", durability::fsync, "boot-1", 0, 3, 100);
  EXPECT_TRUE(h->channels().empty());
  auto again = append(*h, "a", now_ + 2000).pub->pos;
  EXPECT_NE(again.epoch, epoch);
  EXPECT_EQ(again.offset, 1u);
}

}  // namespace
