// The durable history store (--data-dir): the memory store's channels, epochs, offsets and kept
// publications, written to SQLite in WAL mode (`history.db`) so that a restart keeps them.
//
// How it works. The in-memory channels are also the read cache: resume, read, channels and stats
// never touch the disk. An append assigns the position under the channel's lock (as memory does)
// and queues a write; trims, new epochs and forgotten channels queue theirs. One writer thread
// takes everything queued while its last commit ran and commits it as one transaction (group
// commit), then — in queue order, so per channel in offset order — makes each appended
// publication visible to resume/read and runs its completion (the acknowledgement and the fan-out).
// An append writes one row (`pubs`: channel, offset, time, data), which is one page of the table:
// the channel's top and last activity are its newest row's, read back at open; the `channels` row
// holds the epoch and is updated only by epochs, trims (which may delete the newest rows) and
// channels that keep no history. Rows past the window by count leave in batches of an eighth of the
// window (at most 64), not one per append; they are never served.
// So nothing is acknowledged or delivered before its commit:
//   fsync     every commit is fsynced (SQLite synchronous=FULL): nothing acknowledged is ever lost;
//   interval  commits reach the OS; a checkpoint fsyncs every fsync_interval_ms;
//   os        commits reach the OS, which writes them back when it likes.
// Checkpoints (and with them every fsync but fsync's own per commit) run on another thread and
// connection (wal_checkpointer.hpp), so a slow disk does not hold up commits.
// A killed process loses nothing acknowledged under any policy (the OS holds the commits); a
// machine crash may lose the tail under interval/os. The store notes the boot id and whether it
// shut down cleanly; on opening after an unclean run under interval/os on another boot, every
// channel starts a new epoch (clients see recovered:false, never a gap or a reused offset).
//
// Faults. A data dir that cannot be opened or written leaves the store refusing appends with
// storage_unavailable (reads serve what is in memory); a read-only one still serves the history it
// holds (opened read-only, loaded, closed). A commit that fails (disk full, I/O error)
// fails the appends it held: they were never visible; their channels start a new epoch at their
// next append, because their offsets were handed out. A database that fails its integrity check
// at open is renamed aside (history.db.damaged-<ms>) and a new one started: every channel is in a
// new epoch, and the log says so.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/hub/memory/memory_history.hpp"

struct sqlite3;

namespace pushwire::server {
class wal_checkpointer;
}

namespace pushwire::server {

enum class durability { fsync, interval, os };
bool parse_durability(std::string_view s, durability& out);
std::string_view durability_name(durability d);

struct disk_history_config {
  memory_history_config mem;            // per-namespace policies, caps, epoch seed
  std::string dir;                      // created if missing
  durability policy = durability::fsync;
  std::uint64_t fsync_interval_ms = 1000;
  // Added to the clock's now_ms to make the time stored on disk (wall-clock ms), so history ages
  // keep counting across a restart of a monotonic clock.
  std::int64_t time_base_ms = 0;
  std::string boot_id;                  // this boot (/proc/sys/kernel/random/boot_id); tests pass their own
  // Past this many WAL frames the writer rewinds the WAL with a checkpoint of its own, which waits
  // for the disk (the checkpointer's passive ones cannot rewind it while commits keep coming).
  // 16,384 frames: 64 MiB of 4 KiB pages, a few seconds of sustained fan-out publishing.
  int max_wal_frames = 16384;
};

class disk_history final : public history_store {
 public:
  explicit disk_history(disk_history_config cfg);
  ~disk_history() override;   // drains the queue, fsyncs, marks a clean shutdown

  // Completions run later, on the writer thread, one at a time, in queue order.
  // A duplicate idempotency key whose first publication is not committed yet completes after it.
  void append(std::string_view channel, std::string data, std::string_view idempotency_key, std::uint64_t published_ns,
              std::uint64_t now_ms, std::function<void(append_result)> done) override;
  void resume(std::string_view channel, const std::optional<protocol::position>& since, std::uint64_t now_ms,
              std::function<void(resume_result)> done) override;
  void read(std::string_view channel, const std::optional<protocol::position>& since, std::size_t limit,
            std::uint64_t now_ms, std::function<void(history_result)> done) override;
  std::vector<channel_info> channels() override;
  history_stats stats() override;
  void sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) override;

  // Idempotency keys live in the same database (table `idem`): each is written in the commit of
  // its publication, read back at open, expired and bounded there by sweep() about once a second.

  // Empty while the store can write; else why it cannot (tests and /healthz-like checks).
  std::string failure();
  // Waits until everything queued before the call is committed and its completions ran.
  void drain() override;

 private:
  struct entry {
    std::uint64_t at_ms;
    publication_ptr pub;
    history_budget::ticket ticket;   // its share of --history-total-bytes (history_budget.hpp)
  };
  struct waiter {   // a duplicate key's request, waiting for its first publication's commit
    std::string epoch;
    std::uint64_t offset;
    std::function<void(append_result)> done;
  };
  struct channel {
    std::mutex mu;
    std::string name;
    std::string epoch;
    std::uint64_t offset = 0;    // the last offset handed out
    std::uint64_t visible = 0;   // the last committed one: what resume and read show
    std::uint64_t disk_first = 1;   // rows below this offset are deleted on disk (or queued to be)
    history_policy policy;
    std::deque<entry> kept;
    std::uint64_t last_active_ms = 0;
    bool dead = false;     // forgotten by sweep(): whoever holds it looks it up again
    bool broken = false;   // a commit of it failed: its next append starts a new epoch
    std::vector<waiter> waiters;
  };
  enum class op_kind { append, trim, epoch, forget, key_sweep };
  struct op {
    op_kind kind;
    std::shared_ptr<channel> ch;
    std::string name, epoch;
    std::uint64_t offset = 0;    // append: its offset; trim: the first offset kept; key_sweep: max keys
    std::int64_t at_wall = 0;
    publication_ptr pub;
    std::function<void(append_result)> done;
    std::string key;                  // append: its idempotency key (empty: none), data hash, expiry
    std::uint64_t hash = 0;
    std::int64_t key_expires_wall = 0;
  };

  // The channel, locked; created only when `create` (appends: reads and subscribes make no entry).
  std::pair<std::shared_ptr<channel>, std::unique_lock<std::mutex>> open(std::string_view name, std::uint64_t now_ms,
                                                                         bool create);
  std::shared_ptr<channel> make_channel(const std::string& name, std::uint64_t now_ms);
  void new_epoch(channel& c, std::string epoch = {});   // caller holds c.mu; empty: a fresh epoch
  void trim(channel& c, std::uint64_t now_ms);     // caller holds c.mu
  void trim_on_disk(channel& c, std::uint64_t first);   // caller holds c.mu
  void keep(channel& c, std::uint64_t now_ms, const publication_ptr& pub);   // caller holds c.mu
  void admit_loaded();                             // tickets for what load() read, oldest first
  std::string empty_epoch();
  void enqueue(op o);
  std::vector<std::shared_ptr<channel>> snapshot();

  bool open_db(std::string& err);
  bool open_read_only(const std::string& path, std::string& err);
  bool load(std::string& err, bool writable = true);
  void writer_loop();
  bool commit(std::vector<op>& batch, std::string& err);
  bool exec(const char* sql, std::string& err);
  void close_db();

  disk_history_config cfg_;
  std::mutex map_mu_;
  std::unordered_map<std::string, std::shared_ptr<channel>> channels_;
  std::atomic<std::uint64_t> epoch_counter_;
  history_budget budget_;
  std::string empty_epoch_;   // guarded by map_mu_ (history_window.hpp, "the empty-channel rule")

  sqlite3* db_ = nullptr;
  int wal_frames_ = 0;   // in the WAL after the last commit (SQLite's WAL hook); writer thread only
  std::unique_ptr<wal_checkpointer> checkpointer_;   // null while the store cannot write
  struct statements;
  std::unique_ptr<statements> st_;
  std::mutex q_mu_;
  std::condition_variable q_cv_, flushed_cv_;
  std::vector<op> queue_;
  std::uint64_t queued_ = 0, committed_ = 0;   // batches: flush() waits for committed_ >= queued_
  bool stop_ = false;
  idempotency_keys keys_;
  std::atomic<std::uint64_t> last_key_sweep_ms_{0};
  std::string failure_;                         // set when the store cannot write at all
  std::thread writer_;
};

}  // namespace pushwire::server
