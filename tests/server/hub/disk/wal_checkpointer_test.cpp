// The checkpointer syncs the WAL after commits and copies a big one into the database file, on its
// own connection; the writer's own checkpoint keeps the WAL bounded when no pass gets to it
// (disk_history's max_wal_frames).
#include "server/hub/disk/wal_checkpointer.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "server/hub/disk/disk_history.hpp"

using namespace pushwire::server;
namespace fs = std::filesystem;

namespace {

class WalCheckpointer : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pushwire-ckpt-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(root_); }

  template <class Cond>
  static bool eventually(Cond cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // The writer's side: a database in WAL mode that only the checkpointer checkpoints, one table.
  static void open_wal_writer(const std::string& path, sqlite3*& w) {
    ASSERT_EQ(sqlite3_open(path.c_str(), &w), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(w, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(b BLOB);", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
  }

  std::string root_;
};

TEST_F(WalCheckpointer, SyncsAfterCommitsAndCheckpointsOnlyABigWal) {
  auto path = (fs::path(root_) / "t.db").string();
  sqlite3* w = nullptr;
  ASSERT_NO_FATAL_FAILURE(open_wal_writer(path, w));
  wal_checkpointer ck({.path = path, .period = std::chrono::milliseconds(5), .sync_wal = true, .checkpoint_frames = 40});
  auto before = fs::file_size(path);
  // A small commit: synced, not copied into the database file.
  ASSERT_EQ(sqlite3_exec(w, "INSERT INTO t VALUES(zeroblob(10000));", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(ck.syncs(), 0u);   // nothing was reported committed yet: no pass
  ck.committed(4);
  ASSERT_TRUE(eventually([&] { return ck.syncs() >= 1; }));
  EXPECT_EQ(ck.checkpoints(), 0u);
  EXPECT_EQ(fs::file_size(path), before);
  // A WAL past checkpoint_frames is copied into the database file.
  ASSERT_EQ(sqlite3_exec(w, "INSERT INTO t VALUES(zeroblob(200000));", nullptr, nullptr, nullptr), SQLITE_OK);
  ck.committed(60);
  ASSERT_TRUE(eventually([&] { return ck.checkpoints() >= 1; }));
  EXPECT_GT(fs::file_size(path), before + 200000);
  // The writer commits on while the checkpointer holds its connection (a passive checkpoint locks no writer).
  ASSERT_EQ(sqlite3_exec(w, "INSERT INTO t VALUES(zeroblob(10));", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(w);
}

// The writer does not wait for the checkpointer's thread to get going: a commit reported before it
// first runs (here, at once after construction) is synced all the same.
TEST_F(WalCheckpointer, ACommitBeforeItsThreadRunsIsSynced) {
  auto path = (fs::path(root_) / "t.db").string();
  sqlite3* w = nullptr;
  ASSERT_NO_FATAL_FAILURE(open_wal_writer(path, w));
  for (int round = 0; round < 10; ++round) {
    wal_checkpointer ck({.path = path, .period = std::chrono::milliseconds(1), .sync_wal = true, .checkpoint_frames = 1 << 20});
    ck.committed(1);
    EXPECT_TRUE(eventually([&] { return ck.syncs() >= 1; }, std::chrono::seconds(2))) << "round " << round;
  }
  sqlite3_close(w);
}

TEST_F(WalCheckpointer, TheWriterBoundsTheWalWhenNoPassComes) {
  disk_history_config c;
  c.mem.namespaces[""] = history_policy{10, 60000};
  c.dir = root_;
  c.policy = durability::interval;
  c.fsync_interval_ms = 3'600'000;   // the checkpointer never runs within the test
  c.boot_id = "b";
  c.max_wal_frames = 64;
  disk_history h(c);
  std::string data(3000, 'x');   // a page or so per publication
  for (int i = 0; i < 400; ++i) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    h.append("a", data, {}, 0, 1000, [&](append_result r) {
      EXPECT_EQ(r.error, pushwire::protocol::code::ok);
      std::lock_guard lk(mu);
      done = true;
      cv.notify_all();
    });
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(5), [&] { return done; }));
  }
  // 400 commits of a few frames each, and a WAL rewound near 64 frames (+ one commit's worth).
  auto wal = fs::file_size(fs::path(root_) / "history.db-wal");
  EXPECT_LT(wal, 80u * 4120u) << wal;
}

}  // namespace
