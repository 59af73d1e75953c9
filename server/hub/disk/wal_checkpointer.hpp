// The durable history's fsyncs and checkpoints, off the commit path. On the writer's connection a
// checkpoint (copy the WAL into the database file, fsync both) stopped every commit — so every
// acknowledgement and fan-out — for as long as the disk took: tens of ms under load, every fsync
// interval. This thread does that work instead, on its own connection and file descriptor:
//  - `sync_wal`: every period with commits since the last pass, fdatasync the WAL. That is the
//    interval policy's promise (everything acknowledged before it survives a power loss): a
//    committed frame in a synced WAL is recovered at the next open.
//  - once the WAL holds `checkpoint_frames`, a PASSIVE checkpoint (it takes no writer lock, so
//    commits go on meanwhile; it syncs the WAL and the database itself).
// Checkpoints are kept rare on purpose: after one that caught up, the next commit rewinds the WAL
// and SQLite syncs the new WAL header on the writer's thread (which a power loss needs), so each
// one still costs the writer one fsync. A PASSIVE checkpoint cannot rewind a WAL that never stops
// being written; disk_history bounds it with a checkpoint of the writer's own (max_wal_frames).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace pushwire::server {

struct wal_checkpointer_config {
  std::string path;                      // the database the writer has open in WAL mode
  std::chrono::milliseconds period{1000};
  bool sync_wal = false;                 // fdatasync the WAL every period (interval policy)
  int checkpoint_frames = 4096;          // 16 MiB of 4 KiB pages: a checkpoint every few seconds of full load
  bool full_sync = false;                // synchronous=FULL for the checkpoints (fsync policy)
};

class wal_checkpointer {
 public:
  explicit wal_checkpointer(wal_checkpointer_config cfg);
  ~wal_checkpointer();   // stop(), then closes its connection and descriptor
  // Ends the passes (after the one in progress); committed() stays safe to call. Idempotent.
  void stop();
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

  // The writer, after each commit: the WAL's frames now (SQLite's WAL hook).
  void committed(int wal_frames) {
    frames_.store(wal_frames, std::memory_order_relaxed);
    commits_.fetch_add(1, std::memory_order_release);
  }
  // Passes that synced the WAL, and checkpoints that completed (tests).
  std::uint64_t syncs() const { return syncs_.load(std::memory_order_acquire); }
  std::uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_acquire); }

 private:
  void loop();
  void sync_wal();
  void checkpoint();

  wal_checkpointer_config cfg_;
  sqlite3* db_ = nullptr;
  int wal_fd_ = -1;
  bool warned_ = false;
  std::atomic<int> frames_{0};
  std::atomic<std::uint64_t> commits_{0}, syncs_{0}, checkpoints_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace pushwire::server
