#include "server/hub/disk/wal_checkpointer.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/ops/log.hpp"

namespace pushwire::server {

wal_checkpointer::wal_checkpointer(wal_checkpointer_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.period.count() <= 0) cfg_.period = std::chrono::milliseconds(1);
  thread_ = std::thread([this] { loop(); });
}

void wal_checkpointer::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

wal_checkpointer::~wal_checkpointer() {
  stop();
  if (db_) sqlite3_close_v2(db_);
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

void wal_checkpointer::loop() {
  // From 0, not from the count when this thread first runs: a commit made before it got going (the
  // writer does not wait for it) must still be synced.
  std::uint64_t seen = 0;
  std::unique_lock lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, cfg_.period, [&] { return stop_; });
    if (stop_) break;
    auto now = commits_.load(std::memory_order_acquire);
    if (now == seen) continue;
    seen = now;
    lk.unlock();
    if (cfg_.sync_wal) sync_wal();
    if (frames_.load(std::memory_order_relaxed) >= cfg_.checkpoint_frames) checkpoint();
    lk.lock();
  }
}

void wal_checkpointer::sync_wal() {
  // Any descriptor of the file will do: fdatasync writes back the file's pages, whoever wrote them.
  // The WAL stays the same file while the writer's connection is open (a rewind reuses it).
  if (wal_fd_ < 0) wal_fd_ = ::open((cfg_.path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
  if (wal_fd_ >= 0 && ::fdatasync(wal_fd_) == 0) {
    syncs_.fetch_add(1, std::memory_order_release);
    return;
  }
  if (!warned_) log::warn("history WAL sync failed", {{"error", std::strerror(errno)}});
  warned_ = true;
}

void wal_checkpointer::checkpoint() {
  if (!db_) {
    if (sqlite3_open_v2(cfg_.path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      if (!warned_) log::warn("history checkpointer cannot open the database", {{"error", sqlite3_errmsg(db_)}});
      warned_ = true;
      sqlite3_close_v2(db_);
      db_ = nullptr;
      return;
    }
    // The checkpoint's own syncs (WAL before copying, database after) follow this setting.
    sqlite3_exec(db_, cfg_.full_sync ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;", nullptr, nullptr,
                 nullptr);
  }
  // BUSY: the writer is rewinding the WAL with its own checkpoint right now; the next pass retries.
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    checkpoints_.fetch_add(1, std::memory_order_release);
  } else if (rc != SQLITE_BUSY && !warned_) {
    warned_ = true;
    log::warn("history checkpoint failed", {{"error", sqlite3_errmsg(db_)}});
  }
}

}  // namespace pushwire::server
