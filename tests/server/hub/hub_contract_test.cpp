// The hub over its seams, driven with a manual clock and no networking: the contract every store
// implementation must meet (the memory stores today; a Redis or on-disk store plugs its factory into
// `implementations` and runs the same tests), and every limit and expiry rule of the hub.
#include "server/hub/hub.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server/hub/disk/disk_history.hpp"
#include "server/hub/memory/memory_broker.hpp"
#include "server/hub/memory/memory_history.hpp"
#include "server/hub/memory/memory_presence.hpp"
#include "tests/server/hub/recording_sink.hpp"

using namespace pushwire::server;
using pushwire::protocol::code;
using pushwire::protocol::position;

namespace {

struct limits {
  std::size_t history_size = 100;
  std::uint64_t history_ttl_ms = 60000;
  std::size_t max_channels = 1000;
  std::size_t total_bytes = 1 << 20;
  std::uint64_t channel_idle_ms = 0;
  std::size_t max_members = 1000;
  std::size_t idempotency_keys = 1000;
  std::uint64_t idempotency_ttl_ms = 60000;
};

// One implementation of the three seams.
struct stores {
  std::shared_ptr<void> cleanup;   // runs after the stores below are gone (a temporary data dir)
  std::unique_ptr<history_store> history;
  std::unique_ptr<broker> brk;
  std::unique_ptr<presence_store> presence;
};
struct implementation {
  const char* name;
  std::function<stores(const limits&)> make;
};
void PrintTo(const implementation& i, std::ostream* os) { *os << i.name; }

stores memory_stores(const limits& l) {
  memory_history_config h;
  h.namespaces[""] = history_policy{l.history_size, l.history_ttl_ms};
  h.max_channels = l.max_channels;
  h.total_bytes = l.total_bytes;
  h.channel_idle_ms = l.channel_idle_ms;
  h.epoch_seed = 7;
  h.keys = idempotency_limits{l.idempotency_keys, l.idempotency_ttl_ms};
  return stores{nullptr, std::make_unique<memory_history>(h), std::make_unique<memory_broker>(),
                std::make_unique<memory_presence>(l.max_members)};
}

// The durable history and idempotency keys (SQLite in a fresh temporary data dir) beside the memory
// broker and presence. Its completions run later, on its writer thread.
stores disk_stores(const limits& l, durability policy) {
  auto s = memory_stores(l);
  char tmpl[] = "/tmp/pushwire-contract-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  s.cleanup = std::shared_ptr<void>(nullptr, [dir](void*) { std::filesystem::remove_all(dir); });
  disk_history_config d;
  d.mem.namespaces[""] = history_policy{l.history_size, l.history_ttl_ms};
  d.mem.max_channels = l.max_channels;
  d.mem.total_bytes = l.total_bytes;
  d.mem.channel_idle_ms = l.channel_idle_ms;
  d.mem.epoch_seed = 7;
  d.mem.keys = idempotency_limits{l.idempotency_keys, l.idempotency_ttl_ms};
  d.dir = dir;
  d.policy = policy;
  d.boot_id = "contract";
  s.history = std::make_unique<disk_history>(d);
  return s;
}

std::string numbered(std::string prefix, int n) {   // not "x" + to_string(): g++ 12 -Wrestrict (PR 105651)
  prefix += std::to_string(n);
  return prefix;
}
std::string hexname(int n) { return std::string("m") + "0123456789abcdef"[n & 15]; }

using test::recording_sink;

class HubContract : public ::testing::TestWithParam<implementation> {
 protected:
  void make(limits l = {}) {
    h_.reset();
    s_ = GetParam().make(l);
    h_ = std::make_unique<hub>(hub_stores{*s_.history, *s_.brk, *s_.presence}, clk_, 2);
    h_->set_sinks({&sink0_, &sink1_});
  }
  void SetUp() override { make(); }

  // The memory stores complete inline; a remote store completes later: both are waited for.
  template <class R, class Call>
  R await(Call&& call) {
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
  publish_result publish(std::string_view ch, std::string data = "1", std::string_view key = {}) {
    return await<publish_result>([&](auto done) { h_->publish(ch, std::move(data), key, done); });
  }
  resume_result subscribe(std::string_view ch, unsigned thread, std::optional<position> since = {}) {
    return await<resume_result>([&](auto done) { h_->subscribe(ch, thread, since, done); });
  }
  history_result history(std::string_view ch, std::optional<position> since = {}, std::size_t limit = 0) {
    return await<history_result>([&](auto done) { h_->history(ch, since, limit, done); });
  }
  code join(std::string_view ch, std::string client, std::uint64_t lease_until = 0) {
    return await<code>([&](auto done) { h_->presence_join(ch, member{client, client}, lease_until, done); });
  }
  std::vector<member> members(std::string_view ch) {
    return await<std::vector<member>>([&](auto done) { h_->presence(ch, done); });
  }
  static bool eventually_size(recording_sink& s, std::size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (s.size() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return s.size() >= n;
  }
  std::vector<std::uint64_t> offsets(const std::vector<publication_ptr>& v) {
    std::vector<std::uint64_t> out;
    for (auto& p : v) out.push_back(p->pos.offset);
    return out;
  }

  manual_clock clk_;
  recording_sink sink0_, sink1_;
  stores s_;
  std::unique_ptr<hub> h_;
};

}  // namespace

TEST_P(HubContract, PublishAssignsConsecutiveOffsetsAndReachesOnlyInterestedThreads) {
  auto first = publish("a");
  ASSERT_EQ(first.error, code::ok);
  EXPECT_EQ(first.pos.offset, 1u);
  EXPECT_EQ(subscribe("a", 1).top, first.pos);
  auto second = publish("a", "{\"x\":2}");
  EXPECT_EQ(second.pos.offset, 2u);
  EXPECT_EQ(second.pos.epoch, first.pos.epoch);
  EXPECT_EQ(sink1_.offsets("a"), std::vector<std::uint64_t>{2});
  EXPECT_EQ(sink0_.size(), 0u);
  EXPECT_EQ(sink1_.pubs.back()->data, "{\"x\":2}");
  h_->unsubscribe("a", 1);
  publish("a");
  EXPECT_EQ(sink1_.offsets("a"), std::vector<std::uint64_t>{2});
}

// The exact-resume invariant (hub.hpp): every publication after `since` is in the replay or
// reaches the subscriber's thread live after subscribe() registered it — also while another thread
// publishes all the time.
TEST_P(HubContract, ExactResumeUnderConcurrentPublishes) {
  constexpr std::uint64_t total = 3000;
  make(limits{.history_size = total, .total_bytes = 64u << 20});   // every `since` below stays covered
  std::atomic<bool> go{false};
  std::atomic<int> trials_begun{0};
  std::jthread publisher([&] {
    while (!go) std::this_thread::yield();
    for (std::uint64_t i = 0; i < total; ++i) {
      // A fast store on a loaded machine could finish before the first trial: hold on until one began.
      if (i == total / 10)
        while (trials_begun == 0) std::this_thread::yield();
      publish("live");
    }
  });
  go = true;
  int trials = 0;
  while (sink0_.size() == 0 || trials < 20) {
    auto h = history("live");
    if (h.top.offset >= total - 50) break;
    position since = h.top;   // a position the client "had"
    ++trials_begun;
    std::size_t mark = sink0_.size();
    auto r = subscribe("live", 0, since);
    ASSERT_EQ(r.recovered, true);
    std::set<std::uint64_t> got;
    for (auto o : offsets(r.missed)) got.insert(o);
    // Wait until live delivery passed the top the read saw, then check the range is complete.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::vector<std::uint64_t> live;
    do live = sink0_.offsets("live", mark);
    while ((live.empty() || live.back() < r.top.offset + 1) && std::chrono::steady_clock::now() < deadline &&
           history("live").top.offset > r.top.offset);
    for (auto o : live) got.insert(o);
    for (std::uint64_t o = since.offset + 1; o <= r.top.offset; ++o) ASSERT_TRUE(got.contains(o)) << "lost " << o;
    h_->unsubscribe("live", 0);
    ++trials;
  }
  publisher.join();
  EXPECT_GE(trials, 1);
}

TEST_P(HubContract, EachChannelReachesAThreadInOffsetOrder) {
  subscribe("order", 0);
  std::jthread a([&] { for (int i = 0; i < 500; ++i) publish("order"); });
  std::jthread b([&] { for (int i = 0; i < 500; ++i) publish("order"); });
  a.join();
  b.join();
  auto got = sink0_.offsets("order");
  ASSERT_EQ(got.size(), 1000u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i + 1);
}

TEST_P(HubContract, ResumeFromAnotherEpochOrBeyondHistoryIsNotRecovered) {
  make(limits{.history_size = 3});
  for (int i = 0; i < 5; ++i) publish("a");
  auto top = history("a").top;
  EXPECT_EQ(subscribe("a", 0, position{top.epoch, 1}).recovered, false);   // 2 is gone
  auto ok = subscribe("a", 1, position{top.epoch, 2});
  EXPECT_EQ(ok.recovered, true);
  EXPECT_EQ(offsets(ok.missed), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(subscribe("a", 0, position{"other", 2}).recovered, false);
  EXPECT_EQ(subscribe("a", 0, position{top.epoch, 9}).recovered, false);   // from the future
  auto none = subscribe("a", 0);
  EXPECT_FALSE(none.recovered.has_value());
  EXPECT_TRUE(none.missed.empty());
}

TEST_P(HubContract, HistoryKeepsTheNewestByCount) {
  make(limits{.history_size = 3});
  for (int i = 0; i < 5; ++i) publish("a");
  EXPECT_EQ(offsets(history("a").publications), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(offsets(history("a", {}, 2).publications), (std::vector<std::uint64_t>{4, 5}));
  auto top = history("a").top;
  EXPECT_EQ(offsets(history("a", position{top.epoch, 3}, 1).publications), (std::vector<std::uint64_t>{4}));
  EXPECT_TRUE(history("a", position{"elsewhere", 3}).publications.empty());
}

TEST_P(HubContract, HistoryExpiresByAge) {
  make(limits{.history_ttl_ms = 1000, .channel_idle_ms = 1'000'000});   // age alone, not idleness
  publish("a");
  clk_.advance(600);
  publish("a");
  clk_.advance(399);
  EXPECT_EQ(history("a").publications.size(), 2u);
  clk_.advance(1);   // the first is 1000 ms old
  EXPECT_EQ(offsets(history("a").publications), std::vector<std::uint64_t>{2});
  clk_.advance(600);
  h_->sweep();
  EXPECT_TRUE(history("a").publications.empty());
  EXPECT_EQ(history("a").top.offset, 2u);   // the position stays
}

// --history-total-bytes is exact and fair (issue 18, defect 11): the total never exceeds the
// bound, the oldest publication overall goes (not the publishing channel's own), and one
// publication larger than the bound is delivered but not kept.
TEST_P(HubContract, HistoryTotalBytesIsExactAndEvictsTheOldestOverall) {
  std::string big(1000, '7');
  publish("pp", big);   // every channel of this test has a two-letter name: all count the same
  auto one = h_->stats().bytes;   // what one such publication counts
  ASSERT_GT(one, big.size());
  make(limits{.total_bytes = one * 3});
  for (int i = 0; i < 3; ++i) publish("aa", big);
  EXPECT_EQ(history("aa").publications.size(), 3u);
  EXPECT_EQ(h_->stats().bytes, one * 3);
  publish("bb", big);   // over the bound: the oldest overall (aa's first) goes, bb keeps its one
  EXPECT_EQ(offsets(history("aa").publications), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(offsets(history("bb").publications), (std::vector<std::uint64_t>{1}));
  EXPECT_LE(h_->stats().bytes, one * 3);
  // 16 channels, one publication each: only the newest 3 are kept, whatever the channel.
  for (int c = 0; c < 16; ++c) {
    publish(hexname(c), big);
    EXPECT_LE(h_->stats().bytes, one * 3) << c;
  }
  std::size_t kept = 0;
  for (int c = 0; c < 16; ++c) kept += history(hexname(c)).publications.size();
  EXPECT_EQ(kept, 3u);
  EXPECT_EQ(history("mf").publications.size(), 1u);
  EXPECT_EQ(history("mc").publications.size(), 0u);
  // A resume from before an evicted publication is not recovered.
  auto a = history("aa");
  EXPECT_TRUE(a.publications.empty());
  EXPECT_EQ(subscribe("aa", 0, position{a.top.epoch, 1}).recovered, std::optional<bool>(false));
  h_->unsubscribe("aa", 0);
}

TEST_P(HubContract, APublicationLargerThanTheBoundIsDeliveredNotKept) {
  std::string small(100, '1');
  publish("huge", small);
  auto one = h_->stats().bytes;
  make(limits{.total_bytes = one * 4});
  subscribe("huge", 1);
  publish("huge", small);
  auto before = sink1_.size();
  auto r = publish("huge", std::string(one * 5, '9'));   // alone larger than the bound
  EXPECT_EQ(r.error, code::ok);
  ASSERT_TRUE(eventually_size(sink1_, before + 1));   // delivered live
  EXPECT_TRUE(history("huge").publications.empty());   // not kept, and the older one went with it
  EXPECT_LE(h_->stats().bytes, one * 4);
  // History stays unbroken: from offset 1 it cannot recover; from the top it can.
  EXPECT_EQ(subscribe("huge", 0, position{r.pos.epoch, 1}).recovered, std::optional<bool>(false));
  EXPECT_EQ(subscribe("huge", 0, r.pos).recovered, std::optional<bool>(true));
  EXPECT_EQ(publish("huge", small).pos.offset, 3u);
  EXPECT_EQ(history("huge").publications.size(), 1u);
}

TEST_P(HubContract, IdleChannelsAreForgottenAndComeBackInANewEpoch) {
  make(limits{.history_ttl_ms = 100, .channel_idle_ms = 1000});
  auto e1 = publish("idle").pos.epoch;
  publish("held");
  subscribe("held", 0);
  publish("present");
  join("present", "c1");
  clk_.advance(1000);
  h_->sweep();   // history expired at 100 ms, idle since 1000 ms
  auto names = [&] {
    std::set<std::string> out;
    for (auto& c : h_->channels()) out.insert(c.channel);
    return out;
  };
  EXPECT_FALSE(names().contains("idle"));
  EXPECT_TRUE(names().contains("held"));      // a subscriber keeps it
  EXPECT_TRUE(names().contains("present"));   // so does a presence member
  auto again = publish("idle").pos;
  EXPECT_NE(again.epoch, e1);
  EXPECT_EQ(again.offset, 1u);
}

// The cap counts channels that hold a position (made by publishing); subscribes and reads of a
// channel that holds nothing make no entry, so they never fill it and are never refused.
TEST_P(HubContract, ChannelCapCountsPublishedChannelsOnly) {
  make(limits{.max_channels = 2});
  EXPECT_EQ(publish("a").error, code::ok);
  EXPECT_EQ(subscribe("s", 0).error, code::ok);
  EXPECT_EQ(history("h").error, code::ok);
  EXPECT_EQ(h_->stats().channels, 1u);
  EXPECT_EQ(publish("b").error, code::ok);
  EXPECT_EQ(publish("c").error, code::too_many_channels);
  EXPECT_EQ(subscribe("c", 0).error, code::ok);   // still no entry: nothing to refuse
  EXPECT_EQ(publish("a").error, code::ok);   // existing ones go on
  EXPECT_EQ(h_->stats().channels, 2u);
  h_->unsubscribe("s", 0);
  h_->unsubscribe("c", 0);
}

// Issue 18, defect 2: subscribe/unsubscribe churn over many names leaves nothing behind.
TEST_P(HubContract, SubscribeChurnLeavesNoChannelBehind) {
  make(limits{.max_channels = 10});
  publish("base");
  auto before = h_->stats().channels;
  for (int i = 0; i < 2000; ++i) {
    auto name = numbered("churn", i);
    auto r = subscribe(name, i % 2);
    EXPECT_EQ(r.top.offset, 0u);
    h_->unsubscribe(name, i % 2);
  }
  EXPECT_EQ(h_->stats().channels, before);
  EXPECT_EQ(h_->channels().size(), before);
  EXPECT_EQ(publish("fresh").error, code::ok);   // a backend's publish to a new channel works
}

// The empty-channel rule (history_window.hpp, docs/protocol.md "Positions"): a channel that
// holds nothing is at offset 0 of the store's empty epoch; a resume from there is recovered while
// nothing was lost, also once the channel exists, and is not once a channel was forgotten since.
TEST_P(HubContract, EmptyChannelPositionResumesAcrossTheFirstPublication) {
  make(limits{.history_ttl_ms = 100, .channel_idle_ms = 1000});
  auto empty = subscribe("e", 0).top;
  h_->unsubscribe("e", 0);
  EXPECT_EQ(empty.offset, 0u);
  EXPECT_FALSE(empty.epoch.empty());
  auto again = subscribe("e", 0, empty);   // still empty: nothing missed
  EXPECT_EQ(again.recovered, std::optional<bool>(true));
  EXPECT_EQ(again.top, empty);
  h_->unsubscribe("e", 0);
  EXPECT_EQ(publish("e", "1").pos, (position{empty.epoch, 1}));   // the empty position goes on
  publish("e", "2");
  auto r = subscribe("e", 0, empty);   // the channel exists now: its whole history is the replay
  EXPECT_EQ(r.recovered, std::optional<bool>(true));
  EXPECT_EQ(offsets(r.missed), (std::vector<std::uint64_t>{1, 2}));
  h_->unsubscribe("e", 0);
  EXPECT_EQ(offsets(history("e", empty).publications), (std::vector<std::uint64_t>{1, 2}));
  // Another channel had publications and is forgotten: an old empty position proves nothing now.
  auto other = subscribe("o", 0).top;
  h_->unsubscribe("o", 0);
  clk_.advance(1000);
  h_->sweep();   // "e" is forgotten (history expired, idle)
  auto stale = subscribe("o", 0, other);
  EXPECT_EQ(stale.recovered, std::optional<bool>(false));
  EXPECT_EQ(stale.top.offset, 0u);
  EXPECT_NE(stale.top.epoch, other.epoch);
  h_->unsubscribe("o", 0);
}

TEST_P(HubContract, PresenceEventsCapAndLeases) {
  make(limits{.max_members = 2});
  std::vector<std::string> seen;
  h_->set_event_listener([&](const channel_event_ptr& e) {
    seen.push_back((e->what == channel_event::kind::join ? "+" : "-") + e->who.client);
  });
  subscribe("room", 1);
  EXPECT_EQ(join("room", "c1"), code::ok);
  EXPECT_EQ(join("room", "c2", clk_.now_ms() + 500), code::ok);
  EXPECT_EQ(join("room", "c3"), code::presence_full);
  EXPECT_EQ(join("room", "c1"), code::ok);   // already a member: no second join
  EXPECT_EQ(members("room").size(), 2u);
  EXPECT_EQ(join("room", "c2", clk_.now_ms() + 800), code::ok);   // renews the lease
  clk_.advance(600);
  h_->sweep();
  EXPECT_EQ(members("room").size(), 2u);
  clk_.advance(200);
  h_->sweep();   // the lease ran out
  EXPECT_EQ(members("room").size(), 1u);
  h_->presence_leave("room", "c1");
  EXPECT_TRUE(members("room").empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"+c1", "+c2", "-c2", "-c1"}));
  std::lock_guard lk(sink1_.mu);
  EXPECT_EQ(sink1_.events.size(), 4u);   // and every event reached the subscribed thread
  EXPECT_EQ(sink0_.events.size(), 0u);
}

TEST_P(HubContract, IdempotencyKeysByTtlAndCount) {
  make(limits{.idempotency_keys = 2, .idempotency_ttl_ms = 1000});
  auto a = publish("a", "1", "k1");
  auto again = publish("a", "1", "k1");
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.pos, a.pos);
  clk_.advance(1000);
  auto later = publish("a", "1", "k1");   // expired: published anew
  EXPECT_FALSE(later.duplicate);
  EXPECT_EQ(later.pos.offset, 2u);
  publish("a", "1", "k2");
  publish("a", "1", "k3");   // over the count: the oldest key (k1) goes
  EXPECT_FALSE(publish("a", "1", "k1").duplicate);
  EXPECT_TRUE(publish("a", "1", "k3").duplicate);
  clk_.advance(5000);
  h_->sweep();
  EXPECT_FALSE(publish("a", "1", "k3").duplicate);
}

TEST_P(HubContract, IdempotencyKeysAreScopedPerChannelAndRefuseOtherData) {
  auto a = publish("a", "1", "k");
  auto b = publish("b", "1", "k");   // the same key on another channel: its own publication
  EXPECT_FALSE(b.duplicate);
  EXPECT_EQ(b.error, code::ok);
  EXPECT_EQ(history("b").publications.size(), 1u);
  EXPECT_EQ(history("a").publications.size(), 1u);   // (both may share the empty epoch at offset 1)
  auto again = publish("b", "1", "k");
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.pos, b.pos);
  auto other = publish("a", "2", "k");   // reused with other data: refused, nothing published
  EXPECT_EQ(other.error, code::idempotency_conflict);
  EXPECT_EQ(history("a").publications.size(), 1u);
  EXPECT_TRUE(publish("a", "1", "k").duplicate);   // the first data still counts as a retry
}

TEST_P(HubContract, ConcurrentPublishesWithOneKeyPublishOnce) {
  constexpr int keys = 50, threads = 8;
  std::vector<std::thread> ts;
  std::mutex mu;
  std::map<int, std::set<std::uint64_t>> offsets_of;   // key -> offsets the publishers were told
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int k = 0; k < keys; ++k) {
        std::string data = std::to_string(k), key = "key";   // not "x" + to_string(): g++ 12 -Wrestrict (PR 105651)
        key += data;
        auto r = publish("race", data, key);
        ASSERT_EQ(r.error, code::ok);
        std::lock_guard lk(mu);
        offsets_of[k].insert(r.pos.offset);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(history("race").publications.size(), static_cast<std::size_t>(keys));   // one per key
  for (auto& [k, offs] : offsets_of) EXPECT_EQ(offs.size(), 1u) << "key" << k;
}

TEST_P(HubContract, DisconnectOrdersReachTheListener) {
  std::vector<std::string> got;
  h_->set_disconnect_listener([&](const disconnect_order& d) { got.push_back(d.user); });
  disconnect_order d;
  d.user = "alice";
  h_->disconnect(d);
  EXPECT_EQ(got, std::vector<std::string>{"alice"});
  EXPECT_TRUE(d.matches("c9", "alice"));
  EXPECT_FALSE(d.matches("c9", "bob"));
}

// Every store implementation runs the whole contract: add its factory here.
INSTANTIATE_TEST_SUITE_P(Stores, HubContract, ::testing::Values(implementation{"memory", memory_stores},
                                           implementation{"disk_fsync", [](const limits& l) { return disk_stores(l, durability::fsync); }},
                                           implementation{"disk_os", [](const limits& l) { return disk_stores(l, durability::os); }}),
                         [](const auto& info) { return std::string(info.param.name); });
