#include "server/hub/disk/disk_history.hpp"

#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <algorithm>
#include <map>

#include "protocol/channel_name.hpp"
#include "server/hub/data_hash.hpp"
#include "server/hub/disk/wal_checkpointer.hpp"
#include "server/hub/history_window.hpp"
#include "server/ops/log.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::position;

bool parse_durability(std::string_view s, durability& out) {
  if (s == "fsync") out = durability::fsync;
  else if (s == "interval") out = durability::interval;
  else if (s == "os") out = durability::os;
  else return false;
  return true;
}

std::string_view durability_name(durability d) {
  switch (d) {
    case durability::fsync: return "fsync";
    case durability::interval: return "interval";
    case durability::os: return "os";
  }
  return "fsync";
}

namespace {

constexpr const char* schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS channels(name TEXT PRIMARY KEY, epoch TEXT NOT NULL, top INTEGER NOT NULL,"
    " active INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pubs(name TEXT NOT NULL, off INTEGER NOT NULL, at INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(name, off)) WITHOUT ROWID;"
    // Idempotency keys per channel, with the hash of the data they published (data_hash.hpp). The
    // global `keys` table of earlier versions cannot be scoped to a channel: it is dropped.
    "DROP TABLE IF EXISTS keys;"
    "CREATE TABLE IF NOT EXISTS idem(name TEXT NOT NULL, key BLOB NOT NULL, epoch TEXT NOT NULL,"
    " off INTEGER NOT NULL, hash INTEGER NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY(name, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idem_expires ON idem(expires);";

// A prepared statement that resets itself after each use.
struct stmt {
  sqlite3_stmt* s = nullptr;
  stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~stmt() { sqlite3_finalize(s); }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;
  explicit operator bool() const { return s != nullptr; }
  stmt& text(int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  stmt& blob(int i, std::string_view v) {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  stmt& num(int i, std::int64_t v) {
    sqlite3_bind_int64(s, i, v);
    return *this;
  }
  int run() {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
  }
};

}  // namespace

// The writer's statements, prepared on first use and finalized before the database closes.
struct disk_history::statements {
  stmt ins, up, keep_top, del_before, del_all, del_ch, key, key_expire, key_bound;
  explicit statements(sqlite3* db)
      : ins(db, "INSERT OR REPLACE INTO pubs(name, off, at, data) VALUES(?, ?, ?, ?);"),
        up(db,
           "INSERT INTO channels(name, epoch, top, active) VALUES(?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
           "epoch = excluded.epoch, top = excluded.top, active = excluded.active;"),
        keep_top(db, "UPDATE channels SET top = max(top, ?), active = max(active, ?) WHERE name = ?;"),
        del_before(db, "DELETE FROM pubs WHERE name = ? AND off < ?;"),
        del_all(db, "DELETE FROM pubs WHERE name = ?;"),
        del_ch(db, "DELETE FROM channels WHERE name = ?;"),
        key(db, "INSERT OR REPLACE INTO idem(name, key, epoch, off, hash, expires) VALUES(?, ?, ?, ?, ?, ?);"),
        key_expire(db, "DELETE FROM idem WHERE expires <= ?;"),
        key_bound(db,
                  "DELETE FROM idem WHERE (name, key) IN (SELECT name, key FROM idem ORDER BY expires LIMIT max(0, "
                  "(SELECT count(*) FROM idem) - ?));") {}
};

namespace {

std::string col_text(sqlite3_stmt* s, int i) {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

bool damaged(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

disk_history::disk_history(disk_history_config cfg)
    : cfg_(std::move(cfg)), epoch_counter_(cfg_.mem.epoch_seed), budget_(cfg_.mem.total_bytes), keys_(cfg_.mem.keys) {
  // New in every run: a client that saw an empty channel before a restart is told it may have
  // missed something (conservative; the empty epoch is not persisted).
  empty_epoch_ = protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed));
  if (!cfg_.mem.namespaces.contains("")) cfg_.mem.namespaces.emplace("", history_policy{});
  // A file-size limit (RLIMIT_FSIZE) must fail the write with EFBIG, not kill the server.
  std::signal(SIGXFSZ, SIG_IGN);
  std::string err;
  if (!open_db(err)) {
    failure_ = err;
    close_db();
    log::error("history store cannot write: publishes are refused", {{"dir", cfg_.dir}, {"error", err}});
  } else {
    wal_checkpointer_config k;
    k.path = (std::filesystem::path(cfg_.dir) / "history.db").string();
    // interval: the promised fsync period; otherwise how often the WAL's size is looked at.
    k.period = std::chrono::milliseconds(cfg_.policy == durability::interval ? cfg_.fsync_interval_ms : 1000);
    k.sync_wal = cfg_.policy == durability::interval;
    k.full_sync = cfg_.policy == durability::fsync;
    checkpointer_ = std::make_unique<wal_checkpointer>(std::move(k));
  }
  writer_ = std::thread([this] { writer_loop(); });
}

disk_history::~disk_history() {
  // The writer's last checkpoint (TRUNCATE) must not meet one of the checkpointer's passes; the
  // object itself stays until the writer is gone (it still reports its commits to it).
  if (checkpointer_) checkpointer_->stop();
  {
    std::lock_guard lk(q_mu_);
    stop_ = true;
  }
  q_cv_.notify_all();
  writer_.join();
  checkpointer_.reset();
  close_db();
}

bool disk_history::exec(const char* sql, std::string& err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    err = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    if (damaged(rc)) err = "damaged: " + err;
    return false;
  }
  return true;
}

void disk_history::close_db() {
  st_.reset();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

bool disk_history::open_db(std::string& err) {
  std::error_code ec;
  std::filesystem::create_directories(cfg_.dir, ec);
  auto path = (std::filesystem::path(cfg_.dir) / "history.db").string();
  for (int attempt = 0; attempt < 2; ++attempt) {
    close_db();
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      err = std::string("cannot open ") + path + ": " + sqlite3_errstr(rc);
      return false;
    }
    sqlite3_busy_timeout(db_, 1000);
    // Replaces SQLite's auto-checkpoint (it would fsync on the commit path): checkpoints are the
    // wal_checkpointer's, and the writer's own once the WAL is past max_wal_frames.
    sqlite3_wal_hook(
        db_,
        [](void* self, sqlite3*, const char*, int frames) {
          static_cast<disk_history*>(self)->wal_frames_ = frames;
          return SQLITE_OK;
        },
        this);
    err.clear();
    bool ok = exec("PRAGMA journal_mode=WAL;", err) &&
              exec(cfg_.policy == durability::fsync ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;", err);
    if (ok) {   // the integrity check sees a truncated or overwritten file before anything is served
      stmt check(db_, "PRAGMA quick_check;");
      int rc2 = check ? sqlite3_step(check.s) : sqlite3_errcode(db_);
      if (rc2 != SQLITE_ROW || col_text(check.s, 0) != "ok") {
        ok = false;
        err = std::string("damaged: integrity check failed: ") +
              (rc2 == SQLITE_ROW ? col_text(check.s, 0) : std::string(sqlite3_errmsg(db_)));
      }
    }
    ok = ok && exec(schema, err) && load(err);
    if (ok) return true;
    if (attempt == 0 && err.starts_with("damaged")) {
      // Nothing in it can be trusted: set it aside for a person to look at, start anew. Every
      // channel starts a new epoch, so no client resumes into data we cannot vouch for.
      close_db();
      auto aside = path + ".damaged-" + std::to_string(wall_ms());
      std::filesystem::rename(path, aside, ec);
      for (auto* sfx : {"-wal", "-shm"}) std::filesystem::remove(path + sfx, ec);
      log::error("history database damaged: set aside, every channel starts a new epoch",
                 {{"file", aside}, {"error", err}});
      std::lock_guard lk(map_mu_);
      channels_.clear();
      keys_.clear();
      continue;
    }
    int code = db_ ? sqlite3_extended_errcode(db_) & 0xff : SQLITE_CANTOPEN;
    if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM) {
      std::string why = err;
      if (open_read_only(path, err)) {
        err = "read-only: " + why;
        log::warn("history data dir is read-only: serving the history it holds, publishes are refused",
                  {{"dir", cfg_.dir}, {"error", why}});
      } else {
        err = why;
      }
    }
    return false;
  }
  return false;
}

bool disk_history::open_read_only(const std::string& path, std::string& err) {
  // Whatever a failed load read is dropped: it is read again, whole, or not at all.
  auto forget_loaded = [this] {
    std::lock_guard lk(map_mu_);
    for (auto& [n, c] : channels_)
      for (auto& e : c->kept) budget_.release(e.ticket);
    channels_.clear();
    keys_.clear();
  };
  forget_loaded();
  close_db();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;
  // With commits still in the WAL, SQLite reads it through the -shm it finds (read-only); without
  // any, the file is read as it is, with no -shm to create.
  auto wal = std::filesystem::file_size(path + "-wal", ec);
  std::string uri = "file:";
  for (char c : path) {   // a URI: the characters that would end or escape the path are encoded
    if (c == '%') uri += "%25";
    else if (c == '?') uri += "%3f";
    else if (c == '#') uri += "%23";
    else uri += c;
  }
  uri += !ec && wal > 0 ? "?mode=ro" : "?immutable=1";
  if (sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    return err = sqlite3_errmsg(db_), close_db(), false;
  bool ok;
  {
    stmt check(db_, "PRAGMA quick_check;");
    ok = check && sqlite3_step(check.s) == SQLITE_ROW && col_text(check.s, 0) == "ok";
  }
  ok = ok && load(err, false);
  if (!ok) forget_loaded();   // damaged or unreadable: nothing is served, as without a data dir
  close_db();
  return ok;
}

bool disk_history::load(std::string& err, bool writable) {
  std::map<std::string, std::string> meta;
  {
    stmt q(db_, "SELECT key, value FROM meta;");
    if (!q) return err = sqlite3_errmsg(db_), false;
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) meta[col_text(q.s, 0)] = col_text(q.s, 1);
    if (rc != SQLITE_DONE) return err = (damaged(rc) ? "damaged: " : "") + std::string(sqlite3_errmsg(db_)), false;
  }
  // The tail may be lost only when the last run stopped without its clean-shutdown mark, under a
  // policy that acknowledged before fsync, and the machine restarted since (a killed process loses
  // nothing the OS had). Then no offset of any channel can be trusted to be new: new epochs.
  bool tail_lost = !meta.empty() && meta["clean"] != "1" && meta["policy"] != "fsync" && meta["boot"] != cfg_.boot_id;

  std::int64_t base = cfg_.time_base_ms;
  auto to_local = [&](std::int64_t wall) -> std::uint64_t {
    return wall > base ? static_cast<std::uint64_t>(wall - base) : 0;
  };
  {
    stmt q(db_, "SELECT name, epoch, top, active FROM channels;");
    if (!q) return err = sqlite3_errmsg(db_), false;
    int rc;
    std::lock_guard lk(map_mu_);
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
      auto c = std::make_shared<channel>();
      c->name = col_text(q.s, 0);
      c->epoch = col_text(q.s, 1);
      c->offset = c->visible = static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 2));
      c->last_active_ms = to_local(sqlite3_column_int64(q.s, 3));
      auto ns = cfg_.mem.namespaces.find(protocol::channel_namespace(c->name));
      c->policy = ns != cfg_.mem.namespaces.end() ? ns->second : history_policy{};
      if (!protocol::valid_epoch(c->epoch)) c->broken = true;
      channels_.emplace(c->name, c);
    }
    if (rc != SQLITE_DONE) return err = (damaged(rc) ? "damaged: " : "") + std::string(sqlite3_errmsg(db_)), false;
  }
  {
    stmt q(db_, "SELECT name, off, at, data FROM pubs ORDER BY name, off;");
    if (!q) return err = sqlite3_errmsg(db_), false;
    int rc;
    std::lock_guard lk(map_mu_);
    std::shared_ptr<channel> c;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
      auto name = col_text(q.s, 0);
      if (!c || c->name != name) {
        auto it = channels_.find(name);
        c = it == channels_.end() ? nullptr : it->second;
      }
      if (!c) continue;   // cannot be: a channel's row is written with its epoch, before its first row
      auto off = static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 1));
      auto at = to_local(sqlite3_column_int64(q.s, 2));
      // The newest row is the channel's top and last activity (appends write no channel row).
      if (c->kept.empty()) c->disk_first = off;
      c->offset = c->visible = std::max(c->offset, off);
      c->last_active_ms = std::max(c->last_active_ms, at);
      auto* d = static_cast<const char*>(sqlite3_column_blob(q.s, 3));
      std::string data(d ? d : "", static_cast<std::size_t>(sqlite3_column_bytes(q.s, 3)));
      auto pub = make_publication(name, position{c->epoch, off}, std::move(data), 0);
      c->kept.push_back(entry{at, std::move(pub), nullptr});
    }
    if (rc != SQLITE_DONE) return err = (damaged(rc) ? "damaged: " : "") + std::string(sqlite3_errmsg(db_)), false;
    // What is kept must be one unbroken run ending at the channel's top, or resume would claim a
    // recovery it cannot give: anything else starts the channel anew.
    for (auto& [n, ch] : channels_) {
      bool run = true;
      for (std::size_t i = 0; i < ch->kept.size(); ++i)
        if (ch->kept[i].pub->pos.offset != ch->offset - (ch->kept.size() - 1 - i)) run = false;
      if (!run) {
        log::warn("history of a channel is not contiguous on disk: new epoch", {{"channel", n}});
        ch->broken = true;
      }
      if (tail_lost) ch->broken = true;
      // Rows past the window by count may wait on disk for their batched trim (trim()): not kept.
      while (ch->kept.size() > ch->policy.size) ch->kept.pop_front();
    }
  }
  {
    stmt q(db_, "SELECT name, key, epoch, off, hash, expires FROM idem ORDER BY expires;");
    if (!q) return err = sqlite3_errmsg(db_), false;
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
      auto* k = static_cast<const char*>(sqlite3_column_blob(q.s, 1));
      idempotency_keys::stored s;
      s.channel = col_text(q.s, 0);
      s.key.assign(k ? k : "", static_cast<std::size_t>(sqlite3_column_bytes(q.s, 1)));
      s.pos = position{col_text(q.s, 2), static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 3))};
      s.hash = static_cast<std::uint64_t>(sqlite3_column_int64(q.s, 4));
      s.expires_ms = to_local(sqlite3_column_int64(q.s, 5));   // in this run's clock: it expires when it would have
      keys_.restore(s);
    }
    if (rc != SQLITE_DONE) return err = (damaged(rc) ? "damaged: " : "") + std::string(sqlite3_errmsg(db_)), false;
  }
  if (tail_lost)
    log::warn("the last run stopped uncleanly under a non-fsync durability and the machine restarted: every channel "
              "starts a new epoch",
              {{"policy", meta["policy"]}});
  if (writable) {
    // This run is unclean until the destructor says otherwise; made durable before any append.
    stmt m(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?);");
    if (!m) return err = sqlite3_errmsg(db_), false;
    if (m.text(1, "clean").text(2, "0").run() != SQLITE_DONE ||
        m.text(1, "boot").text(2, cfg_.boot_id).run() != SQLITE_DONE ||
        m.text(1, "policy").text(2, durability_name(cfg_.policy)).run() != SQLITE_DONE)
      return err = sqlite3_errmsg(db_), false;
    if (!exec("PRAGMA wal_checkpoint(FULL);", err)) return false;
  }
  std::lock_guard lk(map_mu_);
  admit_loaded();
  for (auto& [n, ch] : channels_)
    if (ch->broken) {
      std::lock_guard lk2(ch->mu);
      new_epoch(*ch);
    }
  return true;
}

void disk_history::admit_loaded() {
  // The byte budget takes the loaded publications in the order they were kept (oldest overall
  // first), so the bound holds and evicts across channels as it did while running.
  std::vector<std::pair<std::uint64_t, entry*>> all;
  for (auto& [n, ch] : channels_)
    for (auto& e : ch->kept) all.emplace_back(e.at_ms, &e);
  std::stable_sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [at, e] : all) e->ticket = budget_.admit(e->pub->accounted_bytes());
  for (auto& [n, ch] : channels_) {
    std::size_t cut = 0;   // everything up to the last entry without a ticket goes: history stays unbroken
    for (std::size_t i = 0; i < ch->kept.size(); ++i)
      if (history_budget::gone(ch->kept[i].ticket)) cut = i + 1;
    if (cut == 0) continue;
    for (std::size_t i = 0; i < cut; ++i) budget_.release(ch->kept[i].ticket);
    ch->kept.erase(ch->kept.begin(), ch->kept.begin() + static_cast<std::ptrdiff_t>(cut));
    std::lock_guard lk(ch->mu);
    trim_on_disk(*ch, ch->kept.empty() ? ch->offset + 1 : ch->kept.front().pub->pos.offset);
  }
}

std::string disk_history::empty_epoch() {
  std::lock_guard lk(map_mu_);
  return empty_epoch_;
}

std::shared_ptr<disk_history::channel> disk_history::make_channel(const std::string& name, std::uint64_t now_ms) {
  auto c = std::make_shared<channel>();
  c->name = name;
  auto ns = cfg_.mem.namespaces.find(protocol::channel_namespace(name));
  c->policy = ns != cfg_.mem.namespaces.end() ? ns->second : history_policy{};
  c->last_active_ms = now_ms;
  new_epoch(*c, empty_epoch_);   // {empty epoch, 0} continues here (history_window.hpp); caller holds map_mu_
  return c;
}

void disk_history::new_epoch(channel& c, std::string epoch) {
  for (auto& e : c.kept) budget_.release(e.ticket);
  c.kept.clear();
  c.epoch = epoch.empty() ? protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed)) : std::move(epoch);
  c.offset = c.visible = 0;
  c.disk_first = 1;
  c.broken = false;
  enqueue(op{op_kind::epoch, nullptr, c.name, c.epoch, 0, cfg_.time_base_ms + static_cast<std::int64_t>(c.last_active_ms),
             nullptr, nullptr});
}

std::pair<std::shared_ptr<disk_history::channel>, std::unique_lock<std::mutex>> disk_history::open(
    std::string_view name, std::uint64_t now_ms, bool create) {
  for (;;) {
    std::shared_ptr<channel> c;
    {
      std::lock_guard lk(map_mu_);
      auto key = std::string(name);
      auto it = channels_.find(key);
      if (it != channels_.end()) {
        c = it->second;
      } else {
        if (!create || channels_.size() >= cfg_.mem.max_channels) return {};
        c = make_channel(key, now_ms);
        channels_.emplace(std::move(key), c);
      }
    }
    std::unique_lock lk(c->mu);
    if (!c->dead) return {std::move(c), std::move(lk)};
  }
}

void disk_history::trim(channel& c, std::uint64_t now_ms) {
  std::size_t before = c.kept.size();
  // Entries the byte budget evicted (the oldest overall) are always a prefix of the kept list.
  while (!c.kept.empty() && history_budget::gone(c.kept.front().ticket)) c.kept.pop_front();
  bool by_bytes = c.kept.size() != before;
  auto drop_front = [&] {
    budget_.release(c.kept.front().ticket);
    c.kept.pop_front();
  };
  while (!c.kept.empty() && c.kept.size() > c.policy.size) drop_front();
  std::size_t after_count = c.kept.size();
  while (!c.kept.empty() && c.kept.front().at_ms + c.policy.ttl_ms <= now_ms) drop_front();
  if (c.kept.size() == before) return;
  std::uint64_t first = c.kept.empty() ? c.offset + 1 : c.kept.front().pub->pos.offset;
  // A window full by count drops one row per append. Deleting it in the append's own commit would
  // write a second page of the table every commit (the oldest rows' leaf besides the newest's):
  // rows past the count go in batches of up to 64 (an eighth of the window), so the file holds at
  // most that many rows more per channel, never served (memory is the read cache, and a restart
  // trims what it loads). Trims by age or by the byte budget go at once: they bound the disk too.
  std::uint64_t batch = std::clamp<std::uint64_t>(c.policy.size / 8, 1, 64);
  if (by_bytes || c.kept.size() != after_count || first >= c.disk_first + batch) trim_on_disk(c, first);
}

void disk_history::trim_on_disk(channel& c, std::uint64_t first) {
  c.disk_first = first;
  enqueue(op{op_kind::trim, nullptr, c.name, c.epoch, first, cfg_.time_base_ms + static_cast<std::int64_t>(c.last_active_ms),
             nullptr, nullptr});
}

void disk_history::keep(channel& c, std::uint64_t now_ms, const publication_ptr& pub) {
  if (c.policy.size == 0) return;
  auto ticket = budget_.admit(pub->accounted_bytes());
  if (!ticket) {
    // Larger than the whole bound: delivered live, not kept, and the older entries go with it so
    // the kept run stays unbroken. The trim removes its row too (queued after its insert).
    for (auto& e : c.kept) budget_.release(e.ticket);
    c.kept.clear();
    trim_on_disk(c, c.offset + 1);
    return;
  }
  c.kept.push_back(entry{now_ms, pub, std::move(ticket)});
  trim(c, now_ms);
}

void disk_history::enqueue(op o) {
  {
    std::lock_guard lk(q_mu_);
    queue_.push_back(std::move(o));
    ++queued_;
  }
  q_cv_.notify_one();
}

void disk_history::append(std::string_view name, std::string data, std::string_view key, std::uint64_t published_ns,
                          std::uint64_t now_ms, std::function<void(append_result)> done) {
  {
    std::lock_guard lk(q_mu_);
    if (!failure_.empty()) return done({code::storage_unavailable, "history storage unavailable: " + failure_});
  }
  auto [c, lk] = open(name, now_ms, true);
  if (!c) return done({code::too_many_channels, "the server's channel limit is reached"});
  std::uint64_t hash = key.empty() ? 0 : data_hash(data);
  if (!key.empty()) {
    if (auto seen = keys_.find(name, key, now_ms)) {   // under the channel's lock: one step with the append
      lk.unlock();
      if (seen->hash != hash)
        return done({code::idempotency_conflict, "idempotency_key was used on this channel with other data"});
      lk.lock();
      // Acknowledged only once the first publication is: until its commit, the duplicate waits
      // beside it (the writer completes both with the same outcome).
      if (!c->dead && seen->pos.epoch == c->epoch && seen->pos.offset > c->visible) {
        c->waiters.push_back(waiter{seen->pos.epoch, seen->pos.offset, std::move(done)});
        return;
      }
      lk.unlock();
      return done({.pos = seen->pos, .duplicate = true});
    }
  }
  if (c->broken) new_epoch(*c);
  auto pub = make_publication(name, position{c->epoch, ++c->offset}, std::move(data), published_ns);
  c->last_active_ms = now_ms;
  // The append is queued before its trim, and under the channel's lock: the queue holds each
  // channel's operations in the order they happened.
  op o{op_kind::append, c, c->name, c->epoch, pub->pos.offset, cfg_.time_base_ms + static_cast<std::int64_t>(now_ms),
       pub, std::move(done)};
  if (!key.empty()) {   // remembered now (so a concurrent retry sees it), written in the same commit
    o.key = std::string(key);
    o.hash = hash;
    o.key_expires_wall = cfg_.time_base_ms + static_cast<std::int64_t>(keys_.remember(name, key, pub->pos, hash, now_ms));
  }
  enqueue(std::move(o));
  keep(*c, now_ms, pub);
}

void disk_history::writer_loop() {
  // Channel -> epoch whose commit failed: later appends of that epoch would follow a hole, so
  // they fail too, until the channel's new epoch comes through.
  std::map<std::string, std::string> failed;
  bool failing = false;
  for (;;) {
    std::vector<op> batch;
    bool stopping;
    {
      std::unique_lock lk(q_mu_);
      q_cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      batch.swap(queue_);
      stopping = stop_;
    }
    std::string err;
    bool ok = true;
    if (!batch.empty()) {
      for (auto& o : batch)
        if (o.kind == op_kind::epoch) failed.erase(o.name);
      if (db_) {
        ok = commit(batch, err);
      } else {
        ok = false;
        err = failure_;
      }
      if (ok && checkpointer_) checkpointer_->committed(wal_frames_);
      if (!ok && !failing) log::error("history commit failed: publishes refused", {{"error", err}});
      if (ok && failing) log::info("history commits work again");
      failing = !ok;
      for (auto& o : batch) {
        if (o.kind != op_kind::append) continue;
        auto f = failed.find(o.name);
        bool good = ok && !(f != failed.end() && f->second == o.epoch);
        std::vector<waiter> dups;   // duplicate keys of this publication: they share its outcome
        {
          std::lock_guard lk(o.ch->mu);
          if (good) {
            good = o.ch->epoch == o.epoch;
            if (good && o.ch->visible < o.offset) o.ch->visible = o.offset;
          } else {
            failed[o.name] = o.epoch;
            if (o.ch->epoch == o.epoch) o.ch->broken = true;   // its offsets were handed out: new epoch next time
          }
          if (!good && !o.key.empty()) keys_.forget(o.name, o.key, o.pub->pos);   // a retry may publish it anew
          for (auto it = o.ch->waiters.begin(); it != o.ch->waiters.end();) {
            if (it->epoch == o.epoch && it->offset == o.offset) {
              dups.push_back(std::move(*it));
              it = o.ch->waiters.erase(it);
            } else {
              ++it;
            }
          }
        }
        append_result r;
        if (good) {
          r.pub = o.pub;
          r.pos = o.pub->pos;
        } else {
          r.error = code::storage_unavailable;
          r.reason = "history storage unavailable: " +
                     (err.empty() ? std::string("an earlier write of this channel failed") : err);
        }
        for (auto& d : dups) {
          append_result dr;
          if (good) dr = append_result{.pos = r.pos, .duplicate = true};
          else dr = append_result{r.error, r.reason};
          d.done(std::move(dr));
        }
        o.done(std::move(r));
      }
      {
        std::lock_guard lk(q_mu_);
        committed_ += batch.size();
      }
      flushed_cv_.notify_all();
    }
    if (db_ && wal_frames_ >= cfg_.max_wal_frames) {
      std::string e;   // BUSY (a checkpointer pass is on): tried again after the next commit
      if (exec("PRAGMA wal_checkpoint(RESTART);", e)) wal_frames_ = 0;
    }
    if (stopping) {
      std::lock_guard lk(q_mu_);
      if (queue_.empty()) break;
    }
  }
  if (db_) {
    std::string e;
    if (exec("INSERT OR REPLACE INTO meta(key, value) VALUES('clean', '1');", e) &&
        exec("PRAGMA wal_checkpoint(TRUNCATE);", e))
      return;
    log::warn("history store did not close cleanly", {{"error", e}});
  }
}

bool disk_history::commit(std::vector<op>& batch, std::string& err) {
  if (!exec("BEGIN IMMEDIATE;", err)) return false;
  if (!st_) st_ = std::make_unique<statements>(db_);   // prepared once: parsing them cost more than a small commit
  auto& [ins, up, keep_top, del_before, del_all, del_ch, key, key_expire, key_bound] = *st_;
  bool ok = ins && up && keep_top && del_before && del_all && del_ch && key && key_expire && key_bound;
  for (auto& o : batch) {
    if (!ok) break;
    switch (o.kind) {
      case op_kind::append:
        // One row, one page: the channel's top and last activity are the newest row's (load()
        // reads them back), so its `channels` row is written only where no row is kept.
        if (o.ch->policy.size > 0)
          ok = ins.text(1, o.name).num(2, static_cast<std::int64_t>(o.offset)).num(3, o.at_wall).blob(4, o.pub->data).run() ==
               SQLITE_DONE;
        else
          ok = up.text(1, o.name).text(2, o.epoch).num(3, static_cast<std::int64_t>(o.offset)).num(4, o.at_wall).run() ==
               SQLITE_DONE;
        if (ok && !o.key.empty())
          ok = key.text(1, o.name).blob(2, o.key).text(3, o.epoch).num(4, static_cast<std::int64_t>(o.offset))
                   .num(5, static_cast<std::int64_t>(o.hash)).num(6, o.key_expires_wall).run() == SQLITE_DONE;
        break;
      case op_kind::trim:   // the rows that told the top and last activity may go: the channel row keeps them
        ok = del_before.text(1, o.name).num(2, static_cast<std::int64_t>(o.offset)).run() == SQLITE_DONE &&
             keep_top.num(1, static_cast<std::int64_t>(o.offset) - 1).num(2, o.at_wall).text(3, o.name).run() ==
                 SQLITE_DONE;
        break;
      case op_kind::epoch:
        ok = del_all.text(1, o.name).run() == SQLITE_DONE &&
             up.text(1, o.name).text(2, o.epoch).num(3, 0).num(4, o.at_wall).run() == SQLITE_DONE;
        break;
      case op_kind::forget:
        ok = del_all.text(1, o.name).run() == SQLITE_DONE && del_ch.text(1, o.name).run() == SQLITE_DONE;
        break;
      case op_kind::key_sweep:
        ok = key_expire.num(1, o.at_wall).run() == SQLITE_DONE &&
             key_bound.num(1, static_cast<std::int64_t>(o.offset)).run() == SQLITE_DONE;
        break;
    }
  }
  if (!ok) err = sqlite3_errmsg(db_);
  ok = ok && exec("COMMIT;", err);
  if (!ok) {
    std::string ignore;
    exec("ROLLBACK;", ignore);
  }
  return ok;
}

void disk_history::drain() {
  std::unique_lock lk(q_mu_);
  auto target = queued_;
  flushed_cv_.wait(lk, [&] { return committed_ >= target; });
}

std::string disk_history::failure() {
  std::lock_guard lk(q_mu_);
  return failure_;
}

void disk_history::resume(std::string_view name, const std::optional<position>& since, std::uint64_t now_ms,
                          std::function<void(resume_result)> done) {
  resume_result r;
  auto empty = empty_epoch();   // read first: never map_mu_ under a channel's lock (sweep locks the other way)
  {
    auto [c, lk] = open(name, now_ms, false);
    if (!c) {   // holds nothing: offset 0 of the empty epoch, and no entry is made (nor written)
      r.top = position{empty, 0};
      if (since) r.recovered = *since == r.top;
      return done(std::move(r));
    }
    trim(*c, now_ms);
    c->last_active_ms = now_ms;
    r.top = position{c->epoch, c->visible};
    r.recovered = missed_since(c->kept, r.top, since, r.missed);
  }
  done(std::move(r));
}

void disk_history::read(std::string_view name, const std::optional<position>& since, std::size_t limit,
                        std::uint64_t now_ms, std::function<void(history_result)> done) {
  history_result r;
  auto empty = empty_epoch();
  {
    auto [c, lk] = open(name, now_ms, false);
    if (!c) {
      r.top = position{empty, 0};
      return done(std::move(r));
    }
    trim(*c, now_ms);
    r.top = position{c->epoch, c->visible};
    history_window(c->kept, r.top, since, limit, r.publications);   // committed only
  }
  done(std::move(r));
}

std::vector<std::shared_ptr<disk_history::channel>> disk_history::snapshot() {
  std::lock_guard lk(map_mu_);
  std::vector<std::shared_ptr<channel>> all;
  all.reserve(channels_.size());
  for (auto& [k, c] : channels_) all.push_back(c);
  return all;
}

std::vector<channel_info> disk_history::channels() {
  std::vector<channel_info> out;
  for (auto& c : snapshot()) {
    std::lock_guard lk(c->mu);
    if (!c->dead) out.push_back(channel_info{c->name, position{c->epoch, c->visible}, 0});
  }
  return out;
}

history_stats disk_history::stats() {
  std::lock_guard lk(map_mu_);
  return history_stats{channels_.size(), budget_.bytes()};
}

void disk_history::sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>& in_use) {
  keys_.sweep(now_ms);
  // The housekeeping tick calls this often; the table on disk needs its expiry and count bound
  // about once a second.
  constexpr std::uint64_t key_sweep_every_ms = 1000;
  auto last = last_key_sweep_ms_.load(std::memory_order_relaxed);
  if (now_ms >= last + key_sweep_every_ms && last_key_sweep_ms_.compare_exchange_strong(last, now_ms))
    enqueue(op{op_kind::key_sweep, nullptr, {}, {}, cfg_.mem.keys.max_keys,
               cfg_.time_base_ms + static_cast<std::int64_t>(now_ms), nullptr, nullptr});
  auto idle_for = [&](channel& c) { return cfg_.mem.channel_idle_ms ? cfg_.mem.channel_idle_ms : c.policy.ttl_ms; };
  std::vector<std::string> idle;
  for (auto& c : snapshot()) {
    std::lock_guard lk(c->mu);
    trim(*c, now_ms);
    if (c->kept.empty() && c->visible == c->offset && c->last_active_ms + idle_for(*c) <= now_ms) idle.push_back(c->name);
  }
  for (auto& name : idle) {
    if (in_use(name)) continue;
    std::lock_guard lk(map_mu_);
    auto it = channels_.find(name);
    if (it == channels_.end()) continue;
    auto c = it->second;
    std::lock_guard lk2(c->mu);
    if (c->kept.empty() && c->visible == c->offset && c->last_active_ms + idle_for(*c) <= now_ms) {
      c->dead = true;
      channels_.erase(it);
      // It had publications: a client that saw it empty before may have missed them.
      empty_epoch_ = protocol::make_epoch(epoch_counter_.fetch_add(1, std::memory_order_relaxed));
      enqueue(op{op_kind::forget, nullptr, c->name, c->epoch, 0, 0, nullptr, nullptr});
    }
  }
}

}  // namespace pushwire::server
