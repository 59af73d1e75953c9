// Restart = resume, against the real server binary with --data-dir: numbered publications through
// the API, the server killed (SIGKILL) or stopped (SIGTERM) and started again on the same folder,
// and a WebSocket client that resumes with its old epoch and offset gets recovered:true and exactly
// the publications it missed, then live ones, with no duplicate. Then the faults: a disk that fills
// (a file-size limit on the server), a damaged database, a read-only data dir (refused, still served).
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "server/ops/config.hpp"
#include "test_client.hpp"

namespace {

using namespace test;
using pushwire::protocol::code;
using pushwire::protocol::frame_kind;
namespace fs = std::filesystem;

// One run of the server binary on a data dir.
class server_run {
 public:
  server_run(const std::string& dir, std::vector<std::string> extra = {}, rlim_t file_size_limit = 0) {
    port_file_ = std::string(::testing::TempDir()) + "/pw_durable_port_" + std::to_string(getpid());
    std::remove(port_file_.c_str());
    std::vector<std::string> args = {PUSHWIRE_SERVER_BINARY, "--port", "0", "--port-file", port_file_,
                                     "--api-key", "k", "--log-level", "error", "--data-dir", dir,
                                     "--shutdown-timeout-ms", "1000", "--history-size", "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      if (file_size_limit) {
        rlimit r{file_size_limit, file_size_limit};
        setrlimit(RLIMIT_FSIZE, &r);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && port == 0) {
      std::ifstream in(port_file_);
      int p = 0;
      if (in >> p && p > 0) port = static_cast<unsigned short>(p);
      else std::this_thread::yield();
    }
  }
  ~server_run() {
    if (pid_ > 0) stop(SIGKILL);
  }
  // Signals the server and waits for it; the exit status.
  int stop(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  bool alive() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

  http_result publish(const std::string& channel, int n, const std::string& key = {}) {
    std::string body = R"({"channel":")" + channel + R"(","data":)" + std::to_string(n);
    if (!key.empty()) body += R"(,"idempotency_key":")" + key + "\"";
    body += "}";
    return http_call(port, http::verb::post, "/api/publish", body, {{"Authorization", "Bearer k"}});
  }

  unsigned short port = 0;

 private:
  std::string port_file_;
  pid_t pid_ = -1;
};

struct position_reply {
  std::string epoch;
  std::uint64_t offset = 0;
  std::uint64_t error = 0;
};
position_reply reply_of(const http_result& r) {
  position_reply p;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) return p;
  auto& o = v.as_object();
  if (auto* e = o.if_contains("epoch")) p.epoch = std::string(e->as_string());
  if (auto* n = o.if_contains("offset")) p.offset = n->to_number<std::uint64_t>();
  if (auto* e = o.if_contains("error")) p.error = e->as_object().at("code").to_number<std::uint64_t>();
  return p;
}

class Durable : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pushwire-durable-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A client that had `epoch`/`since` resumes: subscribed must say recovered:true at `top`, then
  // exactly since+1..top follow, in order, each carrying its own number.
  void expect_exact_resume(unsigned short port, const std::string& epoch, std::uint64_t since, std::uint64_t top,
                           ws_client& c) {
    ASSERT_EQ(c.connect().kind, frame_kind::connected);
    c.send(R"({"cmd":"subscribe","id":2,"channel":"n","since":{"epoch":")" + epoch +
           R"(","offset":)" + std::to_string(since) + "}}");
    auto s = c.next_non_ping();
    ASSERT_EQ(s.kind, frame_kind::subscribed) << s.reason;
    EXPECT_EQ(s.recovered, true);
    EXPECT_EQ(s.pos.epoch, epoch);
    EXPECT_EQ(s.pos.offset, top);
    for (std::uint64_t want = since + 1; want <= top; ++want) {
      auto f = c.next_non_ping();
      ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
      EXPECT_EQ(f.pos.offset, want);
      EXPECT_EQ(f.data, std::to_string(want));
    }
    (void)port;
  }

  void restart_resumes(int sig) {
    std::string epoch;
    {
      server_run a(dir_);
      ASSERT_NE(a.port, 0);
      for (int i = 1; i <= 10; ++i) {
        auto p = reply_of(a.publish("n", i));
        ASSERT_EQ(p.offset, static_cast<std::uint64_t>(i));
        epoch = p.epoch;
      }
      int status = a.stop(sig);
      if (sig == SIGTERM) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      }
    }
    server_run b(dir_);
    ASSERT_NE(b.port, 0);
    ws_client c(b.port);
    expect_exact_resume(b.port, epoch, 3, 10, c);
    // The next publication continues the same epoch, and the client gets it once.
    auto p = reply_of(b.publish("n", 11));
    EXPECT_EQ(p.epoch, epoch);
    EXPECT_EQ(p.offset, 11u);
    auto f = c.next_non_ping();
    EXPECT_EQ(f.pos.offset, 11u);
    EXPECT_EQ(f.data, "11");
    // A plain EventSource comes back with its Last-Event-ID; a long-poll with its cursor.
    sse_client e(b.port, "/sse?channels=n", {{"Last-Event-ID", epoch + "-8"}});
    ASSERT_EQ(e.status, 200u);
    e.next_non_ping();   // connected
    auto sub = parse(e.next_non_ping().data);
    EXPECT_EQ(sub.kind, frame_kind::subscribed);
    EXPECT_EQ(sub.recovered, true);
    for (std::uint64_t want = 9; want <= 11; ++want) {
      auto ev = e.next_non_ping();
      EXPECT_EQ(parse(ev.data).pos.offset, want) << ev.data;
      EXPECT_EQ(ev.id, epoch + "-" + std::to_string(want));
    }
    auto poll = http_call(b.port, http::verb::get, "/poll?channels=n&open=1&cursor=" + epoch + "-9");
    ASSERT_EQ(poll.status, 200u);
    std::vector<std::uint64_t> got;
    for (auto& l : lines(poll.body)) {
      auto pf = parse(l);
      if (pf.kind == frame_kind::subscribed) {
        EXPECT_EQ(pf.recovered, true) << poll.body;
      }
      if (pf.kind == frame_kind::message) got.push_back(pf.pos.offset);
    }
    EXPECT_EQ(got, (std::vector<std::uint64_t>{10, 11})) << poll.body;
  }

  std::string dir_;
};

TEST_F(Durable, SigkillThenRestartResumesExactly) { restart_resumes(SIGKILL); }
TEST_F(Durable, SigtermThenRestartResumesExactly) { restart_resumes(SIGTERM); }

// Killed while four publishers keep publishing (under fsync, so a commit takes long enough for the
// kill to land inside one): every acknowledged publication is there after the restart, in one
// unbroken run of offsets, each carrying its own number; the one in flight at the kill may be there
// too (committed, not yet acknowledged), never a wrong or a repeated one.
TEST_F(Durable, KillMidPublishKeepsEveryAcknowledgedPublication) {
  constexpr int channels = 4;
  std::string epoch[channels];
  std::atomic<std::uint64_t> acked[channels] = {};
  std::vector<std::string> flags = {"--history-size", "1000", "--durability", "fsync"};
  {
    server_run a(dir_, flags);
    ASSERT_NE(a.port, 0);
    for (int ch = 0; ch < channels; ++ch) {
      epoch[ch] = reply_of(a.publish(std::string("n").append(std::to_string(ch)), 1)).epoch;
      acked[ch] = 1;
    }
    std::vector<std::jthread> publishers;
    for (int ch = 0; ch < channels; ++ch)
      publishers.emplace_back([&, ch] {
        try {
          for (int n = 2; n < 900; ++n) {
            auto p = reply_of(a.publish(std::string("n").append(std::to_string(ch)), n));
            if (p.offset != static_cast<std::uint64_t>(n)) break;   // the server is gone
            acked[ch] = p.offset;
          }
        } catch (const std::exception&) {   // connection refused: the server is gone
        }
      });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (acked[0] < 30 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    a.stop(SIGKILL);
  }
  server_run b(dir_, flags);
  for (int ch = 0; ch < channels; ++ch) {
    SCOPED_TRACE(std::string("channel n").append(std::to_string(ch)));
    ASSERT_GE(acked[ch].load(), 2u);
    ASSERT_LT(acked[ch].load(), 899u);   // killed mid-stream, not after it
    ws_client c(b.port);
    ASSERT_EQ(c.connect().kind, frame_kind::connected);
    c.send(R"({"cmd":"subscribe","id":2,"channel":"n)" + std::to_string(ch) + R"(","since":{"epoch":")" +
           epoch[ch] + R"(","offset":0}})");
    auto s = c.next_non_ping();
    ASSERT_EQ(s.kind, frame_kind::subscribed) << s.reason;
    EXPECT_EQ(s.recovered, true);
    EXPECT_EQ(s.pos.epoch, epoch[ch]);
    EXPECT_GE(s.pos.offset, acked[ch].load());
    EXPECT_LE(s.pos.offset, acked[ch].load() + 1);
    for (std::uint64_t want = 1; want <= s.pos.offset; ++want) {
      auto f = c.next_non_ping();
      ASSERT_EQ(f.kind, frame_kind::message) << f.reason;
      ASSERT_EQ(f.pos.offset, want);
      ASSERT_EQ(f.data, std::to_string(want));
    }
  }
}

TEST_F(Durable, IdempotencyKeysSurviveARestart) {
  position_reply first;
  {
    server_run a(dir_);
    first = reply_of(a.publish("n", 1, "key-1"));
    ASSERT_EQ(first.offset, 1u);
    // The key is committed in the commit after its publication's: one more acknowledged publish
    // means it is on disk.
    ASSERT_EQ(reply_of(a.publish("n", 2)).offset, 2u);
    a.stop(SIGKILL);
  }
  server_run b(dir_);
  auto again = reply_of(b.publish("n", 1, "key-1"));
  EXPECT_EQ(again.epoch, first.epoch);
  EXPECT_EQ(again.offset, 1u);   // the first result; nothing new was published
  EXPECT_EQ(reply_of(b.publish("n", 3)).offset, 3u);
  EXPECT_EQ(reply_of(b.publish("n", 4, "key-2")).offset, 4u);
}

TEST_F(Durable, SeveralKillsUnderEachPolicyLoseNothingAcknowledged) {
  std::string epoch;
  int n = 0;
  for (auto* policy : {"fsync", "interval", "os"}) {
    server_run s(dir_, {"--durability", policy, "--fsync-interval-ms", "50"});
    ASSERT_NE(s.port, 0);
    for (int i = 0; i < 5; ++i) {
      auto p = reply_of(s.publish("n", ++n));
      ASSERT_EQ(p.offset, static_cast<std::uint64_t>(n)) << policy;
      if (epoch.empty()) epoch = p.epoch;
      EXPECT_EQ(p.epoch, epoch) << policy;
    }
    s.stop(SIGKILL);
  }
  server_run last(dir_);
  ws_client c(last.port);
  expect_exact_resume(last.port, epoch, 0, static_cast<std::uint64_t>(n), c);
}

TEST_F(Durable, FullDiskRefusesPublishesWith4022AndKeepsServing) {
  // A file-size limit on the server process: SQLite's writes fail with EFBIG, as on a full disk.
  server_run s(dir_, {"--max-message-bytes", "70000", "--body-limit", "100000"}, 256 * 1024);
  ASSERT_NE(s.port, 0);
  std::string big(60000, '7');
  std::uint64_t acked = 0;
  position_reply refused;
  for (int i = 0; i < 40 && refused.error == 0; ++i) {
    auto r = http_call(s.port, http::verb::post, "/api/publish", R"({"channel":"n","data":")" + big + "\"}",
                       {{"Authorization", "Bearer k"}});
    auto p = reply_of(r);
    if (r.status == 200) {
      acked = p.offset;
    } else {
      refused = p;
      EXPECT_EQ(r.status, 503u);
    }
  }
  EXPECT_EQ(refused.error, static_cast<std::uint64_t>(code::storage_unavailable));
  EXPECT_GT(acked, 0u);
  EXPECT_TRUE(s.alive());
  EXPECT_EQ(http_call(s.port, http::verb::get, "/healthz").status, 200u);
  // What was acknowledged is still served; nothing refused shows up.
  auto h = http_call(s.port, http::verb::get, "/api/history?channel=n", {}, {{"Authorization", "Bearer k"}});
  ASSERT_EQ(h.status, 200u);
  EXPECT_EQ(reply_of(h).offset, acked);
}

TEST_F(Durable, DamagedDatabaseStartsNewEpochsNeverServesWrongData) {
  std::string epoch;
  {
    server_run a(dir_);
    for (int i = 1; i <= 20; ++i) epoch = reply_of(a.publish("n", i)).epoch;
    a.stop(SIGTERM);   // checkpointed: everything is in history.db
  }
  auto db = fs::path(dir_) / "history.db";
  auto size = fs::file_size(db);
  ASSERT_GT(size, 4096u);
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    std::string junk(4096, '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  fs::resize_file(db, size - 1000);   // and truncated, mid-page
  server_run b(dir_);
  ASSERT_NE(b.port, 0);
  EXPECT_TRUE(b.alive());
  ws_client c(b.port);
  ASSERT_EQ(c.connect().kind, frame_kind::connected);
  c.send(R"({"cmd":"subscribe","id":2,"channel":"n","since":{"epoch":")" + epoch + R"(","offset":5}})");
  auto s = c.next_non_ping();
  ASSERT_EQ(s.kind, frame_kind::subscribed) << s.reason;
  EXPECT_EQ(s.recovered, false);
  EXPECT_NE(s.pos.epoch, epoch);
  auto p = reply_of(b.publish("n", 1));
  EXPECT_EQ(p.offset, 1u);
  EXPECT_NE(p.epoch, epoch);
  bool set_aside = false;
  for (auto& e : fs::directory_iterator(dir_))
    if (e.path().filename().string().starts_with("history.db.damaged-")) set_aside = true;
  EXPECT_TRUE(set_aside);
}

TEST_F(Durable, UnwritableDataDirRefusesPublishesWith4022) {
  // A data dir that cannot be created (its parent is a file). A read-only mount is the same to the
  // store (it cannot open the database for writing); that case needs mount rights, below.
  auto file = fs::path(dir_) / "plain-file";
  std::ofstream(file) << "x";
  server_run s((file / "data").string());
  ASSERT_NE(s.port, 0);
  auto r = s.publish("n", 1);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(reply_of(r).error, static_cast<std::uint64_t>(code::storage_unavailable));
  EXPECT_TRUE(s.alive());
}

// A data dir remounted read-only after a clean stop (no WAL left: read as it is) and after a kill
// (commits still in the WAL: read through it): publishes are refused, the history is served.
TEST_F(Durable, ReadOnlyMountRefusesPublishesWith4022AndServesItsHistory) {
  for (int sig : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(sig == SIGTERM ? "after SIGTERM" : "after SIGKILL");
    auto mnt = fs::path(dir_) / (sig == SIGTERM ? "term" : "kill");
    fs::create_directories(mnt);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
    std::string epoch;
    {
      server_run a(mnt.string());
      for (int i = 1; i <= 5; ++i) epoch = reply_of(a.publish("n", i)).epoch;
      a.stop(sig);
    }
    ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=4m"), 0);
    {
      server_run b(mnt.string());
      ASSERT_NE(b.port, 0);
      auto r = b.publish("n", 6);
      EXPECT_EQ(r.status, 503u);
      EXPECT_EQ(reply_of(r).error, static_cast<std::uint64_t>(code::storage_unavailable));
      EXPECT_TRUE(b.alive());
      ws_client c(b.port);
      expect_exact_resume(b.port, epoch, 2, 5, c);
    }
    umount2(mnt.c_str(), MNT_DETACH);
  }
}

TEST(DurableConfig, DataDirAndDurabilityFromFlagsEnvAndFile) {
  namespace ps = pushwire::server;
  const char* none[] = {"x"};
  auto d = ps::parse_config(1, none, {});
  ASSERT_TRUE(d.ok);
  EXPECT_TRUE(d.cfg.data_dir.empty());   // memory unless asked
  EXPECT_EQ(d.cfg.durable, ps::durability::interval);
  auto path = std::string(::testing::TempDir()) + "/pw_durable_cfg.json";
  std::ofstream(path) << R"({"data_dir":"/from/file","durability":"os","fsync_interval_ms":50})";
  const char* file[] = {"x", "--config", path.c_str()};
  auto f = ps::parse_config(3, file, {});
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.cfg.data_dir, "/from/file");
  EXPECT_EQ(f.cfg.durable, ps::durability::os);
  EXPECT_EQ(f.cfg.fsync_interval_ms, 50u);
  auto e = ps::parse_config(3, file, {{"PUSHWIRE_DATA_DIR", "/from/env"}});
  EXPECT_EQ(e.cfg.data_dir, "/from/env");
  const char* flags[] = {"x", "--config", path.c_str(), "--data-dir", "/from/flag", "--durability=fsync"};
  auto g = ps::parse_config(6, flags, {{"PUSHWIRE_DATA_DIR", "/from/env"}});
  EXPECT_EQ(g.cfg.data_dir, "/from/flag");
  EXPECT_EQ(g.cfg.durable, ps::durability::fsync);
  const char* bad[] = {"x", "--durability", "sometimes"};
  EXPECT_FALSE(ps::parse_config(3, bad, {}).ok);
  EXPECT_NE(ps::help_text().find("--data-dir"), std::string::npos);
}

}  // namespace
