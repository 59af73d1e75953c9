// The server stream machine, driven without I/O: positions, duplicates, the queue bound and the
// slow-consumer decision, heartbeats and the dead peer, with time as an argument.
#include "protocol/server_stream.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace pushwire::protocol;

namespace {

stream_policy policy(std::uint64_t dead_peer_ms = 0) {
  stream_policy p;
  p.queue_bytes = 100;
  p.slow_grace_ms = 50;
  p.ping_ms = 1000;
  p.dead_peer_ms = dead_peer_ms;
  return p;
}

std::vector<stream_action> actions(server_stream& s) {
  std::vector<stream_action> out;
  while (auto a = s.poll_action()) out.push_back(*a);
  return out;
}

position at(std::uint64_t offset, std::string epoch = "e1") { return position{std::move(epoch), offset}; }

}  // namespace

TEST(ServerStream, DuplicatesAndOrderWithinAnEpoch) {
  server_stream s(policy(), 0);
  EXPECT_EQ(s.admit("a", at(1)), admit_verdict::unknown);
  s.subscribing("a");
  s.subscribed("a", at(5));
  s.resumed("a");
  EXPECT_EQ(s.admit("a", at(5)), admit_verdict::duplicate);   // the resume point itself was sent
  EXPECT_EQ(s.admit("a", at(6)), admit_verdict::send);
  EXPECT_EQ(s.admit("a", at(6)), admit_verdict::duplicate);
  EXPECT_EQ(s.admit("a", at(3)), admit_verdict::duplicate);
  EXPECT_EQ(s.admit("a", at(1, "e2")), admit_verdict::reset);   // a new epoch: the client is told, then it starts over
  EXPECT_EQ(s.admit("a", at(1, "e2")), admit_verdict::duplicate);
  s.unsubscribed("a");
  EXPECT_EQ(s.admit("a", at(9)), admit_verdict::unknown);
}

TEST(ServerStream, LivePublicationsWaitWhileTheResumeReadIsInFlight) {
  server_stream s(policy(), 0);
  s.subscribing("a");
  EXPECT_EQ(s.admit("a", at(7)), admit_verdict::hold);
  s.subscribed("a", at(4));
  EXPECT_EQ(s.admit("a", at(7)), admit_verdict::hold);   // still held until the replay is offered
  s.resumed("a");
  // The shell offers the replay (5, 6, 7) and then what it held (7): merged by offset.
  EXPECT_EQ(s.admit("a", at(5)), admit_verdict::send);
  EXPECT_EQ(s.admit("a", at(6)), admit_verdict::send);
  EXPECT_EQ(s.admit("a", at(7)), admit_verdict::send);
  EXPECT_EQ(s.admit("a", at(7)), admit_verdict::duplicate);
}

TEST(ServerStream, TokenNamesWhatWasWrittenInDeclaredOrder) {
  server_stream s(policy(), 0);
  s.declare_channels({"a", "b", "c"});
  EXPECT_EQ(s.token(), "~.~.~");
  s.wrote_position("b", at(3), false);   // a `subscribed` reply sets the resume point
  EXPECT_EQ(s.token(), "~.e1-3.~");
  s.wrote_position("b", at(5), true);
  s.wrote_position("b", at(4), true);    // a publication moves forward only
  s.wrote_position("a", at(1, "x9"), true);
  EXPECT_EQ(s.token(), "x9-1.e1-5.~");
  s.wrote_position("b", at(2, "e2"), true);   // another epoch replaces it
  s.wrote_position("b", at(0, "e3"), false);
  EXPECT_EQ(s.token(), "x9-1.e3-0.~");
  s.unsubscribed("c");
  EXPECT_EQ(s.token(), "x9-1.e3-0.~");   // a declared channel keeps its place
}

TEST(ServerStream, OverTheBoundWithNoWriteInFlightSendsTheNoticeAtOnce) {
  server_stream s(policy(), 0);
  EXPECT_TRUE(s.queue(60, false));
  EXPECT_TRUE(s.queue(40, false));   // exactly the bound passes
  EXPECT_FALSE(s.queue(1, false));   // one byte more is the decision
  EXPECT_EQ(s.state(), stream_state::closing);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::send_notice});
  EXPECT_FALSE(s.queue(1, false));   // closing: nothing more is queued
  EXPECT_TRUE(actions(s).empty());
}

TEST(ServerStream, ReplayIsNotBoundedButCountsAsQueued) {
  server_stream s(policy(), 0);
  EXPECT_TRUE(s.queue(1000, true));
  EXPECT_TRUE(s.queue(100, false));
  EXPECT_EQ(s.queued_bytes(), 1100u);
  s.write_started(1);
  s.dropped(1000, true);
  s.write_done(100, false, 2);
  EXPECT_EQ(s.queued_bytes(), 0u);
  EXPECT_TRUE(s.queue(100, false));
  EXPECT_EQ(s.state(), stream_state::open);
}

TEST(ServerStream, AStuckWriteGetsTheGraceThenTheNoticeOrTheCut) {
  {
    server_stream s(policy(), 0);
    s.write_started(10);
    EXPECT_TRUE(s.queue(100, false));
    EXPECT_FALSE(s.queue(1, false));
    EXPECT_EQ(s.state(), stream_state::slow_grace);
    s.handle_timeout(20);               // arms the grace: 20 + 50
    EXPECT_EQ(s.next_deadline(), 70u);
    EXPECT_TRUE(actions(s).empty());
    s.write_done(100, false, 60);       // finished within the grace: the notice goes out
    EXPECT_EQ(s.state(), stream_state::closing);
    EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::send_notice});
  }
  {
    server_stream s(policy(), 0);
    s.write_started(10);
    EXPECT_TRUE(s.queue(100, false));
    EXPECT_FALSE(s.queue(1, false));
    s.handle_timeout(20);
    s.handle_timeout(69);
    EXPECT_TRUE(actions(s).empty());
    s.handle_timeout(70);               // stuck past the grace: cut
    EXPECT_EQ(s.state(), stream_state::cut);
    EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::cut});
    EXPECT_FALSE(s.next_deadline());
  }
}

TEST(ServerStream, HeartbeatAfterAQuietPingInterval) {
  server_stream s(policy(), 0);
  EXPECT_EQ(s.next_deadline(), 1000u);
  s.handle_timeout(999);
  EXPECT_TRUE(actions(s).empty());
  s.handle_timeout(1000);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::send_ping});
  s.handle_timeout(1500);
  EXPECT_TRUE(actions(s).empty());     // one ping per quiet interval
  s.write_started(1500);
  s.write_done(10, false, 1600);
  s.handle_timeout(2599);
  EXPECT_TRUE(actions(s).empty());     // a write restarts the interval
  s.handle_timeout(2600);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::send_ping});
}

TEST(ServerStream, DeadPeerIsProbedAtHalfAndCutAtTheTimeout) {
  server_stream s(policy(400), 0);
  s.handle_timeout(199);
  EXPECT_TRUE(actions(s).empty());
  s.handle_timeout(200);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::probe});
  s.handle_timeout(300);
  EXPECT_TRUE(actions(s).empty());     // one probe per silence
  s.received(350);                     // it answered: alive
  s.handle_timeout(549);
  EXPECT_TRUE(actions(s).empty());
  s.handle_timeout(550);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::probe});
  s.handle_timeout(750);               // silent for the whole timeout
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::cut});
  EXPECT_EQ(s.state(), stream_state::cut);
}

TEST(ServerStream, StreamsThatDoNotReadHaveNoDeadPeerDeadline) {
  server_stream s(policy(0), 0);
  s.handle_timeout(100000);
  EXPECT_EQ(actions(s), std::vector<stream_action>{stream_action::send_ping});
  EXPECT_EQ(s.state(), stream_state::open);
}

TEST(ServerStream, CloseStopsQueueingAndPings) {
  server_stream s(policy(), 0);
  s.close();
  EXPECT_EQ(s.state(), stream_state::closing);
  EXPECT_FALSE(s.queue(1, false));
  s.handle_timeout(5000);
  EXPECT_TRUE(actions(s).empty());
  EXPECT_EQ(stream_state_name(s.state()), "closing");
}
