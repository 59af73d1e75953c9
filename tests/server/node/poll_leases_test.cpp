// Long-poll leases with time as an argument: the lease cap, expiry (with its presence), renewal,
// server disconnects waiting for the next poll, and the bounded event queue.
#include "server/node/poll_leases.hpp"

#include <gtest/gtest.h>

#include "server/hub/hub.hpp"
#include "server/hub/memory/memory_broker.hpp"
#include "server/hub/memory/memory_history.hpp"
#include "server/hub/memory/memory_presence.hpp"

using namespace pushwire::server;
using pushwire::protocol::code;

namespace {

// prefix + number, without `"c" + std::to_string(n)` (g++ 12 warns falsely there: -Wrestrict, PR 105651)
std::string numbered(std::string prefix, int n) {
  prefix += std::to_string(n);
  return prefix;
}

class PollLeases : public ::testing::Test {
 protected:
  memory_history history_{memory_history_config{}};
  memory_broker broker_;
  memory_presence presence_{100};
  manual_clock clk_;
  hub hub_{hub_stores{history_, broker_, presence_}, clk_, 1};
  std::atomic<std::uint64_t> gauge_{0};
  int next_ = 1;
  poll_leases leases_{poll_leases::limits{.max_leases = 2, .lease_ms = 1000, .max_queued_events = 3}, hub_,
                      [this] { return numbered("c", next_++); }, gauge_};

  std::string open(std::uint64_t now, const std::string& user = "") {
    std::string id;
    disconnect_order advice;
    EXPECT_EQ(leases_.acquire(id, user, true, now, advice), poll_leases::status::created);
    return id;
  }
  std::size_t members(const std::string& ch) {
    std::size_t n = 0;
    hub_.presence(ch, [&](std::vector<member> m) { n = m.size(); });
    return n;
  }
};

}  // namespace

TEST_F(PollLeases, CapRefusesTheNextClient) {
  open(0);
  open(0);
  std::string id;
  disconnect_order advice;
  EXPECT_EQ(leases_.acquire(id, "", true, 0, advice), poll_leases::status::full);
  EXPECT_EQ(gauge_.load(), 2u);
}

TEST_F(PollLeases, ExpiryLeavesPresenceAndRenewalKeepsIt) {
  auto id = open(0);
  hub_.presence_join("room", member{"", id}, 1000, [](code) {});
  leases_.set_presence(id, {"room"});
  disconnect_order advice;
  std::string same = id;
  EXPECT_EQ(leases_.acquire(same, "", false, 900, advice), poll_leases::status::renewed);   // until 1900
  leases_.sweep(1899);
  EXPECT_EQ(leases_.size(), 1u);
  EXPECT_EQ(members("room"), 1u);
  leases_.sweep(1900);
  EXPECT_EQ(leases_.size(), 0u);
  EXPECT_EQ(members("room"), 0u);   // an expired lease leaves its presence
  EXPECT_EQ(gauge_.load(), 0u);
  same = id;
  EXPECT_EQ(leases_.acquire(same, "", false, 2000, advice), poll_leases::status::created);   // gone: a new one
  EXPECT_NE(same, id);
}

TEST_F(PollLeases, AnotherUsersIdIsNotTakenOver) {
  auto id = open(0, "alice");
  std::string theirs = id;
  disconnect_order advice;
  EXPECT_EQ(leases_.acquire(theirs, "mallory", false, 10, advice), poll_leases::status::created);
  EXPECT_NE(theirs, id);
  EXPECT_EQ(leases_.size(), 2u);
}

TEST_F(PollLeases, ADisconnectWaitsForTheNextPoll) {
  auto a = open(0, "alice");
  auto b = open(0, "bob");
  disconnect_order d;
  d.user = "alice";
  d.reason = "bye";
  EXPECT_EQ(leases_.mark(d), 1u);
  disconnect_order advice;
  std::string id = a;
  EXPECT_EQ(leases_.acquire(id, "alice", false, 10, advice), poll_leases::status::disconnect);
  EXPECT_EQ(advice.reason, "bye");
  EXPECT_EQ(leases_.size(), 1u);   // delivered: the lease is gone
  id = b;
  EXPECT_EQ(leases_.acquire(id, "bob", false, 10, advice), poll_leases::status::renewed);
}

TEST_F(PollLeases, EventsQueueBoundedOthersOnlyAndWakeTheParkedPoll) {
  auto id = open(0);
  leases_.watch(id, {"room"});
  int woken = 0;
  EXPECT_TRUE(leases_.park(id, 7, [&] { ++woken; }).empty());
  leases_.on_event(make_channel_event(channel_event::kind::join, "room", member{"", id}));   // its own
  EXPECT_EQ(woken, 0);
  leases_.on_event(make_channel_event(channel_event::kind::join, "other", member{"", "c99"}));   // not watched
  EXPECT_EQ(woken, 0);
  for (int i = 0; i < 5; ++i)
    leases_.on_event(make_channel_event(channel_event::kind::join, "room", member{"", numbered("x", i)}));
  EXPECT_EQ(woken, 1);   // once
  auto got = leases_.unpark(id, 7);
  ASSERT_EQ(got.size(), 3u);   // bounded: the oldest went first
  EXPECT_EQ(got.front()->who.client, "x2");
  EXPECT_EQ(got.back()->who.client, "x4");
  EXPECT_TRUE(leases_.unpark(id, 7).empty());
}
