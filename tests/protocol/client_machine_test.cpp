// Scenarios for the client connection machine, driven by a manual clock: the test plays the driver,
// feeding transport events and server frames in and checking the actions and events that come out.
#include "protocol/client_machine.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/backoff.hpp"
#include "protocol/frame_codec.hpp"

using namespace pushwire::protocol;

namespace {

using ak = client_action_kind;
using ek = client_event_kind;
using tk = transport_kind;
using cs = client_state;

client_options fast_options(std::vector<tk> transports = {tk::websocket, tk::sse, tk::polling}) {
  client_options o;
  o.transports = std::move(transports);
  o.backoff_min_ms = 100;
  o.backoff_max_ms = 1000;
  o.stable_after_ms = 5000;
  o.handshake_timeout_ms = 2000;
  o.heartbeat_grace_ms = 1000;
  o.poll_hold_ms = 3000;
  o.request_timeout_ms = 4000;
  o.seed = 7;
  return o;
}

position pos(std::string epoch, std::uint64_t offset) { return position{std::move(epoch), offset}; }

std::string connected_frame(std::uint64_t id = 0, std::uint64_t ping = 2000) {
  return encode(frame{.kind = frame_kind::connected, .id = id, .client = "c1", .ping_ms = ping});
}
std::string subscribed_frame(std::string ch, position p, std::optional<bool> recovered = std::nullopt,
                             std::uint64_t id = 0) {
  return encode(frame{.kind = frame_kind::subscribed, .id = id, .channel = std::move(ch), .pos = std::move(p),
                      .recovered = recovered});
}
std::string message_frame(std::string ch, position p, std::string data = "{\"n\":1}") {
  return encode(frame{.kind = frame_kind::message, .channel = std::move(ch), .pos = std::move(p),
                      .data = std::move(data)});
}
std::string ping_frame() { return encode(frame{.kind = frame_kind::ping}); }
std::string subscribe_cmd(std::uint64_t id, std::string ch, std::optional<position> since = std::nullopt) {
  return encode(command{.kind = command_kind::subscribe, .id = id, .channel = std::move(ch), .since = std::move(since)});
}

// Plays the driver: collects what the machine asks for and says.
struct harness {
  client_machine m;
  std::uint64_t now = 1000;
  std::vector<client_action> actions;
  std::vector<client_event> events;

  explicit harness(client_options o = fast_options()) : m(std::move(o)) {}

  void drain() {
    while (auto a = m.poll_action()) actions.push_back(std::move(*a));
    while (auto e = m.poll_event()) events.push_back(std::move(*e));
  }
  std::vector<client_action> take_actions() {
    drain();
    auto out = std::move(actions);
    actions.clear();
    return out;
  }
  std::vector<client_event> take_events() {
    drain();
    auto out = std::move(events);
    events.clear();
    return out;
  }
  void clear() {
    take_actions();
    take_events();
  }
  // The generation of the most recent open_transport action seen (drains).
  std::uint32_t last_open_generation() {
    drain();
    for (auto it = actions.rbegin(); it != actions.rend(); ++it)
      if (it->kind == ak::open_transport) return it->generation;
    ADD_FAILURE() << "no open_transport action";
    return 0;
  }
  void at(std::uint64_t t) {
    now = t;
    m.handle_timeout(now);
  }
  // Fires the next deadline; returns when it was.
  std::uint64_t fire() {
    auto d = m.next_deadline();
    EXPECT_TRUE(d.has_value());
    at(d ? *d : now);
    return now;
  }

  // connect() on a websocket-first machine through to `connected`; returns the generation.
  std::uint32_t connect_websocket() {
    m.connect(now);
    return finish_websocket();
  }
  // The websocket attempt just opened (by connect() or a reconnect timer) through to `connected`;
  // leaves the commands sent after `connected` undrained.
  std::uint32_t finish_websocket() {
    std::uint32_t g = last_open_generation();
    m.handle_transport_open(g, now);
    auto sent = take_actions();
    std::uint64_t connect_id = 0;
    for (auto& a : sent)
      if (a.kind == ak::send) {
        command c;
        decode_error err;
        EXPECT_TRUE(decode_command(a.text.substr(0, a.text.find('\n')), c, err));
        connect_id = c.id;
      }
    m.handle_transport_data(g, connected_frame(connect_id), now);
    EXPECT_EQ(m.state(), cs::connected);
    return g;
  }
};

std::vector<client_event> of_kind(const std::vector<client_event>& events, ek kind) {
  std::vector<client_event> out;
  for (auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}
std::vector<client_action> of_kind(const std::vector<client_action>& actions, ak kind) {
  std::vector<client_action> out;
  for (auto& a : actions)
    if (a.kind == kind) out.push_back(a);
  return out;
}

}  // namespace

// ---- connecting and falling back -------------------------------------------------------------------

TEST(ClientMachine, WebsocketHandshakeSendsConnectThenConnects) {
  auto o = fast_options();
  o.token = "tok";
  harness h(o);
  h.m.connect(h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::state_changed);
  EXPECT_EQ(events[0].from, cs::disconnected);
  EXPECT_EQ(events[0].to, cs::connecting);
  EXPECT_EQ(events[0].error_code, code::connect_called);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ak::open_transport);
  EXPECT_EQ(actions[0].transport, tk::websocket);
  std::uint32_t g = actions[0].generation;

  h.m.handle_transport_open(g, h.now);
  actions = h.take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ak::send);
  EXPECT_EQ(actions[0].text, "{\"cmd\":\"connect\",\"id\":1,\"token\":\"tok\"}\n");
  h.m.handle_transport_open(g, h.now);  // a repeated open sends nothing more
  EXPECT_TRUE(h.take_actions().empty());

  h.m.handle_transport_data(g, "{\"type\":\"connected\",\"id\":1,\"client\":\"c1\",\"ping\":25000,\"v\":1}", h.now);
  events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, cs::connected);
  EXPECT_EQ(events[0].error_code, code::transport_opened);
  EXPECT_EQ(h.m.state(), cs::connected);
  EXPECT_EQ(h.m.transport(), tk::websocket);
}

TEST(ClientMachine, DrainGivesWhatThePollsWouldInOrder) {
  harness h(fast_options({tk::polling}));
  h.m.connect(h.now);   // a state event; open + the opening poll
  h.m.poll_action();    // one taken by a poll first: the drain gives the rest
  std::vector<ak> kinds;
  h.m.drain_actions([&](const client_action& a) { kinds.push_back(a.kind); });
  EXPECT_EQ(kinds, std::vector<ak>{ak::poll});
  std::vector<ek> events;
  h.m.drain_events([&](const client_event& e) { events.push_back(e.kind); });
  EXPECT_EQ(events, std::vector<ek>{ek::state_changed});
  EXPECT_FALSE(h.m.poll_action());
  EXPECT_FALSE(h.m.poll_event());
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.unsubscribe("a", h.now);
  events.clear();
  h.m.drain_events([&](const client_event& e) { events.push_back(e.kind); });
  EXPECT_EQ(events, std::vector<ek>{ek::unsubscribed});
}

TEST(ClientMachine, ConnectCommandOmitsEmptyToken) {
  harness h;
  h.m.connect(h.now);
  h.m.handle_transport_open(h.last_open_generation(), h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].text, "{\"cmd\":\"connect\",\"id\":1}\n");
}

TEST(ClientMachine, FallsBackWebsocketToSseToPollingWithReasons) {
  auto o = fast_options();
  o.token = "tok";
  harness h(o);
  h.m.subscribe("news", pos("e1", 4), h.now);
  h.m.connect(h.now);
  std::uint32_t g1 = h.last_open_generation();
  h.clear();
  h.m.handle_transport_closed(g1, code::transport_failed, "refused", h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::fallback);
  EXPECT_EQ(events[0].from_transport, tk::websocket);
  EXPECT_EQ(events[0].to_transport, tk::sse);
  EXPECT_EQ(events[0].error_code, code::transport_failed);
  EXPECT_EQ(events[0].reason, "refused");
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].kind, ak::close_transport);
  EXPECT_EQ(actions[0].generation, g1);
  EXPECT_EQ(actions[1].kind, ak::open_transport);
  EXPECT_EQ(actions[1].transport, tk::sse);
  EXPECT_GT(actions[1].generation, g1);
  EXPECT_EQ(actions[1].channels, "news");
  EXPECT_EQ(actions[1].cursor, "e1-4");
  EXPECT_EQ(actions[1].token, "tok");
  EXPECT_EQ(h.m.state(), cs::connecting);

  std::uint32_t g2 = actions[1].generation;
  h.m.handle_transport_closed(g2, code::transport_failed, "sse blocked", h.now);
  events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].from_transport, tk::sse);
  EXPECT_EQ(events[0].to_transport, tk::polling);
  EXPECT_EQ(events[0].reason, "sse blocked");
  actions = h.take_actions();
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[1].kind, ak::open_transport);
  EXPECT_EQ(actions[1].transport, tk::polling);
  EXPECT_EQ(actions[2].kind, ak::poll);
  EXPECT_TRUE(actions[2].opening);
  EXPECT_EQ(actions[2].generation, actions[1].generation);
  EXPECT_EQ(actions[2].channels, "news");
  EXPECT_EQ(actions[2].cursor, "e1-4");
  EXPECT_EQ(actions[2].token, "tok");
  EXPECT_EQ(h.m.transport(), tk::polling);
}

TEST(ClientMachine, TransportThatOpensButClosesBeforeConnectedHasFailed) {
  harness h;
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.clear();
  h.m.handle_transport_closed(g, code::transport_closed, "closed early", h.now);
  auto fallbacks = of_kind(h.take_events(), ek::fallback);
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0].to_transport, tk::sse);
  EXPECT_EQ(h.m.state(), cs::connecting);
}

TEST(ClientMachine, HandshakeTimeoutFallsBack) {
  harness h;
  std::uint64_t start = h.now;
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.clear();
  EXPECT_EQ(h.m.next_deadline(), start + 2000);
  h.at(start + 1999);
  EXPECT_TRUE(h.take_events().empty());
  h.at(start + 2000);
  auto fallbacks = of_kind(h.take_events(), ek::fallback);
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0].error_code, code::handshake_timeout);
  auto closes = of_kind(h.take_actions(), ak::close_transport);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].generation, g);
  EXPECT_EQ(h.m.next_deadline(), start + 4000);  // the next transport's own handshake
}

// A proxy that buffers the response holds the SSE stream's events, and a buffering nginx its header
// too: the machine gives up sse_first_event_ms after the request (whether or not the stream opened),
// not handshake_timeout_ms later, and says why.
TEST(ClientMachine, SilentSseStreamIsBufferedAndFallsBackToPolling) {
  auto o = fast_options({tk::sse, tk::polling});
  o.sse_first_event_ms = 500;
  harness h(o);
  std::uint64_t start = h.now;
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.clear();
  EXPECT_EQ(h.m.next_deadline(), start + 500);
  h.now = start + 100;
  h.m.handle_transport_open(g, h.now);   // the header came through; opening moves nothing
  EXPECT_EQ(h.m.next_deadline(), start + 500);
  h.at(start + 499);
  EXPECT_TRUE(h.take_events().empty());
  h.at(start + 500);
  auto events = h.take_events();
  auto fallbacks = of_kind(events, ek::fallback);
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0].from_transport, tk::sse);
  EXPECT_EQ(fallbacks[0].to_transport, tk::polling);
  EXPECT_EQ(fallbacks[0].error_code, code::sse_buffered);
  EXPECT_EQ(fallbacks[0].reason, "SSE buffered by a proxy");
  auto actions = h.take_actions();
  ASSERT_EQ(of_kind(actions, ak::close_transport).size(), 1u);
  EXPECT_EQ(of_kind(actions, ak::close_transport)[0].generation, g);
  std::uint32_t pg = 0;
  for (auto& a : actions)
    if (a.kind == ak::open_transport) pg = a.generation;
  ASSERT_NE(pg, 0u);
  // The state event that reaches `connected` on polling carries the reason too.
  h.m.handle_transport_data(pg, connected_frame(), h.now);
  auto states = of_kind(h.take_events(), ek::state_changed);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].to, cs::connected);
  EXPECT_EQ(states[0].reason, "polling (SSE buffered by a proxy)");
}

TEST(ClientMachine, SseFirstEventDeadlineOnlyWhileConnecting) {
  // A stream reopened for a new channel set while connected has shown it passes through.
  auto o = fast_options({tk::sse, tk::polling});
  o.sse_first_event_ms = 500;
  harness h(o);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.m.subscribe("b", std::nullopt, h.now);
  h.at(h.now);   // the reopen
  std::uint32_t g2 = h.last_open_generation();
  ASSERT_NE(g2, g);
  h.clear();
  EXPECT_EQ(h.m.next_deadline(), h.now + 2000);   // the reopen's handshake deadline only
}

TEST(ClientMachine, SseStreamThatDeliversItsFirstEventInTimeStaysOnSse) {
  auto o = fast_options({tk::sse, tk::polling});
  o.sse_first_event_ms = 500;
  harness h(o);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.now += 499;
  h.m.handle_transport_data(g, connected_frame(), h.now);
  auto states = of_kind(h.take_events(), ek::state_changed);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[1].reason, "sse");   // no fallback, nothing beside the name
  h.at(h.now + 1000);   // well past the first-event deadline, inside the heartbeat
  EXPECT_EQ(h.m.state(), cs::connected);
  EXPECT_EQ(h.m.transport(), tk::sse);
  EXPECT_TRUE(of_kind(h.take_events(), ek::fallback).empty());
}

TEST(ClientMachine, AllTransportsFailedBacksOffThenStartsFromTheFirst) {
  harness h(fast_options({tk::websocket, tk::sse}));
  h.m.connect(h.now);
  h.m.handle_transport_closed(h.last_open_generation(), code::transport_failed, "no ws", h.now);
  h.m.handle_transport_closed(h.last_open_generation(), code::transport_failed, "no sse", h.now);
  auto events = of_kind(h.take_events(), ek::state_changed);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().from, cs::connecting);
  EXPECT_EQ(events.back().to, cs::reconnecting);
  EXPECT_EQ(events.back().error_code, code::transport_failed);
  EXPECT_NE(events.back().reason.find("no sse"), std::string::npos);
  ASSERT_TRUE(h.m.next_deadline());
  EXPECT_LE(*h.m.next_deadline(), h.now + 100);  // attempt 0: within backoff_min_ms
  h.clear();
  h.fire();
  events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, cs::connecting);
  EXPECT_EQ(events[0].error_code, code::reconnect_timer);
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].transport, tk::websocket);
}

TEST(ClientMachine, NoTransportEndsClosed) {
  harness h(fast_options({}));
  h.m.connect(h.now);
  EXPECT_EQ(h.m.state(), cs::closed);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error_code, code::no_transport);
  EXPECT_TRUE(h.take_actions().empty());
}

// ---- backoff -------------------------------------------------------------------------------------

namespace {

// Fails every attempt of a single-transport machine and returns the successive backoff delays.
std::vector<std::uint64_t> failure_delays(harness& h, int rounds) {
  std::vector<std::uint64_t> delays;
  for (int i = 0; i < rounds; ++i) {
    h.m.handle_transport_closed(h.last_open_generation(), code::transport_failed, "down", h.now);
    EXPECT_EQ(h.m.state(), cs::reconnecting);
    delays.push_back(*h.m.next_deadline() - h.now);
    h.clear();
    h.fire();
  }
  return delays;
}

}  // namespace

TEST(ClientMachine, BackoffGrowsWithJitterUpToTheCap) {
  harness h(fast_options({tk::websocket}));
  h.m.connect(h.now);
  auto delays = failure_delays(h, 10);
  // Exactly the full-jitter draws of the seed: uniform(0, min(1000, 100 * 2^attempt)).
  prng ref(7);
  for (std::uint32_t a = 0; a < delays.size(); ++a) {
    EXPECT_EQ(delays[a], full_jitter_delay(100, 1000, a, ref)) << "attempt " << a;
    EXPECT_LE(delays[a], backoff_ceiling(100, 1000, a));
    EXPECT_LE(delays[a], 1000u);
  }
}

TEST(ClientMachine, BackoffDiffersBetweenSeeds) {
  auto o1 = fast_options({tk::websocket});
  auto o2 = o1;
  o2.seed = 8;
  harness a(o1), b(o2);
  a.m.connect(a.now);
  b.m.connect(b.now);
  EXPECT_NE(failure_delays(a, 8), failure_delays(b, 8));
}

TEST(ClientMachine, BackoffResetsOnlyAfterAStableConnection) {
  harness h(fast_options({tk::websocket}));
  h.m.connect(h.now);
  failure_delays(h, 4);  // attempts 0-3 used
  prng ref(7);
  for (std::uint32_t a = 0; a < 4; ++a) full_jitter_delay(100, 1000, a, ref);

  // Connected but lost before stable_after_ms: the attempt count carries on (4).
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.now += 4999;
  h.m.handle_transport_closed(g, code::transport_closed, "flap", h.now);
  EXPECT_EQ(*h.m.next_deadline() - h.now, full_jitter_delay(100, 1000, 4, ref));
  h.clear();
  h.fire();

  // Up for stable_after_ms: the next delay is drawn from attempt 0 again.
  g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(0, 100000), h.now);
  h.now += 5000;
  h.m.handle_transport_closed(g, code::transport_closed, "later", h.now);
  EXPECT_EQ(*h.m.next_deadline() - h.now, full_jitter_delay(100, 1000, 0, ref));
}

// ---- heartbeats ----------------------------------------------------------------------------------

TEST(ClientMachine, HeartbeatSilenceReconnects) {
  harness h;
  std::uint32_t g = h.connect_websocket();  // ping 2000 + grace 1000
  h.clear();
  EXPECT_EQ(h.m.next_deadline(), h.now + 3000);
  h.now += 2500;
  h.m.handle_transport_data(g, ping_frame(), h.now);
  EXPECT_EQ(h.m.next_deadline(), h.now + 3000);
  std::uint64_t last = h.now;
  h.at(last + 2999);
  EXPECT_EQ(h.m.state(), cs::connected);
  h.at(last + 3000);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  auto events = of_kind(h.take_events(), ek::state_changed);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error_code, code::heartbeat_timeout);
  auto closes = of_kind(h.take_actions(), ak::close_transport);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].generation, g);
}

TEST(ClientMachine, PollingLoopsAndUsesHoldPlusGraceForHeartbeat) {
  harness h(fast_options({tk::polling}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].kind, ak::poll);
  EXPECT_TRUE(actions[1].opening);
  EXPECT_EQ(actions[1].cursor, "");  // no position known yet
  std::uint32_t g = actions[1].generation;

  h.now += 50;
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(0, 25000) + subscribed_frame("a", pos("ep", 7)), h.now);
  EXPECT_EQ(h.m.state(), cs::connected);
  auto polls = of_kind(h.take_actions(), ak::poll);
  ASSERT_EQ(polls.size(), 1u);
  EXPECT_FALSE(polls[0].opening);
  EXPECT_EQ(polls[0].channels, "a");
  EXPECT_EQ(polls[0].cursor, "ep-7");
  // Not ping 25000: a held poll answers within poll_hold_ms.
  EXPECT_EQ(h.m.next_deadline(), h.now + 3000 + 1000);

  h.now += 3000;
  h.m.handle_transport_data(g, message_frame("a", pos("ep", 8)), h.now);
  polls = of_kind(h.take_actions(), ak::poll);
  ASSERT_EQ(polls.size(), 1u);
  EXPECT_EQ(polls[0].cursor, "ep-8");
  h.now += 3000;
  h.m.handle_transport_data(g, ping_frame(), h.now);
  EXPECT_EQ(of_kind(h.take_actions(), ak::poll).size(), 1u);
  std::uint64_t last = h.now;
  h.at(last + 3999);
  EXPECT_EQ(h.m.state(), cs::connected);
  h.at(last + 4000);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  EXPECT_EQ(of_kind(h.take_events(), ek::state_changed).back().error_code, code::heartbeat_timeout);
}

TEST(ClientMachine, LaterPollThatHistoryNoLongerCoversRaisesGap) {
  harness h(fast_options({tk::polling}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame() + subscribed_frame("a", pos("ep", 7)), h.now);
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("ep", 90), false) + message_frame("a", pos("ep", 91)), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::gap);
  EXPECT_EQ(events[0].pos, pos("ep", 90));
  EXPECT_EQ(events[1].kind, ek::message);
  EXPECT_EQ(h.m.last_position("a"), pos("ep", 91));
  EXPECT_EQ(of_kind(h.take_actions(), ak::poll)[0].cursor, "ep-91");
}

TEST(ClientMachine, PollingCommandAnswerDoesNotStartAnotherPoll) {
  harness h(fast_options({tk::polling}));
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.clear();
  auto id = h.m.publish("a", "1", h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].transport, tk::polling);
  h.m.handle_transport_data(g, connected_frame() + encode(frame{.kind = frame_kind::published, .id = id,
                                                                .channel = "a", .pos = pos("e", 1)}), h.now);
  EXPECT_TRUE(of_kind(h.take_actions(), ak::poll).empty());
  EXPECT_EQ(of_kind(h.take_events(), ek::reply).size(), 1u);
}

// ---- subscriptions and positions -----------------------------------------------------------------

TEST(ClientMachine, WebsocketResubscribesWithLastPositionsAfterReconnect) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.subscribe("b", pos("eb", 5), h.now);
  std::uint32_t g = h.connect_websocket();  // connect used id 1
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);  // every subscribe in one batch
  EXPECT_EQ(sends[0].text, subscribe_cmd(2, "a") + subscribe_cmd(3, "b", pos("eb", 5)));

  h.m.handle_transport_data(g,
                            subscribed_frame("a", pos("ea", 10), std::nullopt, 2) +
                                subscribed_frame("b", pos("eb", 6), true, 3) + message_frame("b", pos("eb", 6)) +
                                message_frame("a", pos("ea", 11)),
                            h.now);
  EXPECT_EQ(h.m.last_position("a"), pos("ea", 11));
  EXPECT_EQ(h.m.last_position("b"), pos("eb", 6));
  auto subscribed = of_kind(h.take_events(), ek::subscribed);
  ASSERT_EQ(subscribed.size(), 2u);

  h.m.handle_transport_closed(g, code::going_away, "", h.now);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  h.clear();
  h.fire();
  g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(4), h.now);
  sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 2u);  // connect, then the subscribe batch
  EXPECT_EQ(sends[1].text, subscribe_cmd(5, "a", pos("ea", 11)) + subscribe_cmd(6, "b", pos("eb", 6)));
  EXPECT_EQ(sends[1].generation, g);
}

TEST(ClientMachine, SseCursorCarriesPositionsInChannelOrder) {
  harness h(fast_options({tk::sse}));
  h.m.subscribe("c", std::nullopt, h.now);
  h.m.subscribe("a", pos("ea", 3), h.now);
  h.m.subscribe("b", std::nullopt, h.now);
  h.m.connect(h.now);
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].channels, "a,b,c");
  EXPECT_EQ(opens[0].cursor, "ea-3.~.~");
  EXPECT_EQ(decode_resume_token(opens[0].cursor)->size(), 3u);
}

TEST(ClientMachine, SseReconnectResumesFromDeliveredPositions) {
  harness h(fast_options({tk::sse}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.subscribe("b", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  EXPECT_EQ(of_kind(h.take_actions(), ak::open_transport)[0].cursor, "");
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.m.handle_transport_data(g, subscribed_frame("a", pos("x", 0)), h.now);
  h.m.handle_transport_data(g, subscribed_frame("b", pos("y", 9)), h.now);
  h.m.handle_transport_data(g, message_frame("a", pos("x", 1)), h.now);
  h.m.handle_transport_closed(g, code::transport_closed, "network", h.now);
  h.clear();
  h.fire();
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].transport, tk::sse);
  EXPECT_EQ(opens[0].cursor, "x-1.y-9");
}

TEST(ClientMachine, ResumeKeepsPositionAndDropsDuplicates) {
  harness h;
  h.m.subscribe("a", pos("e", 5), h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  // pos is the channel's latest (10), the replay of 6..10 follows, overlapping 4 and 5 first.
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 10), true, 2), h.now);
  EXPECT_EQ(h.m.last_position("a"), pos("e", 5));
  std::string replay;
  for (std::uint64_t off = 4; off <= 10; ++off) replay += message_frame("a", pos("e", off));
  replay += message_frame("a", pos("e", 8));  // a live copy racing the replay
  h.m.handle_transport_data(g, replay, h.now);
  auto events = h.take_events();
  auto messages = of_kind(events, ek::message);
  ASSERT_EQ(messages.size(), 5u);
  for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(messages[i].pos.offset, 6 + i);
  EXPECT_TRUE(of_kind(events, ek::gap).empty());
  EXPECT_EQ(h.m.duplicates_dropped(), 3u);
  EXPECT_EQ(h.m.last_position("a"), pos("e", 10));
  auto subscribed = of_kind(events, ek::subscribed);
  ASSERT_EQ(subscribed.size(), 1u);
  EXPECT_EQ(subscribed[0].recovered, std::optional<bool>(true));
}

// docs/protocol.md: `recovered` is only present when `since` was given. A first subscribe has
// nothing to recover, so its event carries no flag; the resubscribe after a loss does.
TEST(ClientMachine, RecoveredOnlyOnAResumedSubscription) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 3), std::nullopt, 2), h.now);
  auto first = of_kind(h.take_events(), ek::subscribed);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(first[0].recovered.has_value());

  h.m.handle_transport_closed(g, code::transport_closed, "lost", h.now);
  h.fire();
  std::uint32_t g2 = h.finish_websocket();
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_FALSE(sends.empty());
  EXPECT_NE(sends.back().text.find("\"since\":{\"epoch\":\"e\",\"offset\":3}"), std::string::npos) << sends.back().text;
  h.m.handle_transport_data(g2, subscribed_frame("a", pos("e", 3), true, 4), h.now);
  auto again = of_kind(h.take_events(), ek::subscribed);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].recovered, std::optional<bool>(true));
}

TEST(ClientMachine, NotRecoveredRaisesGapAndAdoptsTheNewEpoch) {
  harness h;
  h.m.subscribe("a", pos("old", 5), h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("new", 20), false, 2), h.now);
  auto events = h.take_events();
  auto gaps = of_kind(events, ek::gap);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].channel, "a");
  EXPECT_EQ(gaps[0].pos, pos("new", 20));
  ASSERT_EQ(of_kind(events, ek::subscribed).size(), 1u);
  EXPECT_EQ(of_kind(events, ek::subscribed)[0].recovered, std::optional<bool>(false));
  EXPECT_EQ(h.m.last_position("a"), pos("new", 20));
  h.m.handle_transport_data(g, message_frame("a", pos("new", 21)) + message_frame("a", pos("old", 22)), h.now);
  auto messages = of_kind(h.take_events(), ek::message);
  ASSERT_EQ(messages.size(), 1u);  // the stray old-epoch message is dropped
  EXPECT_EQ(messages[0].pos, pos("new", 21));
}

TEST(ClientMachine, SubscribeWithoutSinceTakesThePositionWithoutGap) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 30), std::nullopt, 2), h.now);
  EXPECT_EQ(h.m.last_position("a"), pos("e", 30));
  EXPECT_TRUE(of_kind(h.take_events(), ek::gap).empty());
}

// A `subscribed` repeated for an active subscription (a misbehaving server) must not move the
// position back: the message already delivered stays a duplicate (found by client_fuzz).
TEST(ClientMachine, RepeatedSubscribedDoesNotRewindThePosition) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 9), std::nullopt, 2), h.now);
  h.m.handle_transport_data(g, message_frame("a", pos("e", 10)), h.now);
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 9), std::nullopt, 2), h.now);
  h.m.handle_transport_data(g, message_frame("a", pos("e", 10)), h.now);
  EXPECT_TRUE(of_kind(h.take_events(), ek::message).empty());
  EXPECT_EQ(h.m.last_position("a"), pos("e", 10));
  EXPECT_EQ(h.m.duplicates_dropped(), 1u);
}

// Moving an active subscription to another epoch and back must neither re-deliver what was
// delivered nor pass silently: each move is a gap the app hears of (the long client_fuzz run).
TEST(ClientMachine, StraySubscribedThatMovesAnActiveSubscriptionIsAGap) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e1", 3), std::nullopt, 2), h.now);
  h.m.handle_transport_data(g, message_frame("a", pos("e1", 4)), h.now);
  h.clear();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e0", 1), std::nullopt, 2), h.now);
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e1", 3), std::nullopt, 2), h.now);
  auto events = h.take_events();
  auto gaps = of_kind(events, ek::gap);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].pos, pos("e0", 1));
  EXPECT_EQ(gaps[1].pos, pos("e1", 3));
  EXPECT_TRUE(of_kind(events, ek::subscribed).empty());  // still the same subscription

  h.m.handle_transport_data(g, subscribed_frame("a", pos("e1", 8), std::nullopt, 2), h.now);
  ASSERT_EQ(of_kind(h.take_events(), ek::gap).size(), 1u);  // offsets 4..8 skipped: said so
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e1", 8), std::nullopt, 2), h.now);
  EXPECT_TRUE(h.take_events().empty());  // the same position again moves nothing
}

TEST(ClientMachine, SkippedOffsetsRaiseGapThenDeliver) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 3), std::nullopt, 2), h.now);
  h.clear();
  h.m.handle_transport_data(g, message_frame("a", pos("e", 6), "\"six\""), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::gap);
  EXPECT_EQ(events[0].pos, pos("e", 6));
  EXPECT_EQ(events[1].kind, ek::message);
  EXPECT_EQ(events[1].data, "\"six\"");
  EXPECT_EQ(h.m.last_position("a"), pos("e", 6));
}

TEST(ClientMachine, MessagesForUnknownChannelsAreIgnoredAndJoinLeaveReported) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(
      g,
      message_frame("other", pos("e", 1)) +
          encode(frame{.kind = frame_kind::join, .channel = "a", .data = "{\"user\":\"u1\"}"}) +
          encode(frame{.kind = frame_kind::leave, .channel = "a", .data = "{\"user\":\"u1\"}"}) +
          encode(frame{.kind = frame_kind::join, .channel = "other", .data = "{\"user\":\"u2\"}"}),
      h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::join);
  EXPECT_EQ(events[0].data, "{\"user\":\"u1\"}");
  EXPECT_EQ(events[1].kind, ek::leave);
  EXPECT_FALSE(h.m.last_position("other"));
}

TEST(ClientMachine, RefusedSubscribeReportsErrorAndLeavesTheTable) {
  harness h;
  h.m.subscribe("private-x", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::error, .id = 2, .error_code = code::permission_denied,
                                            .reason = "no grant"}), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::error);
  EXPECT_EQ(events[0].error_code, code::permission_denied);
  EXPECT_EQ(events[1].kind, ek::unsubscribed);
  EXPECT_EQ(events[1].channel, "private-x");
  EXPECT_EQ(events[1].error_code, code::permission_denied);
  EXPECT_FALSE(h.m.unsubscribe("private-x", h.now));  // gone from the table
  EXPECT_EQ(h.m.state(), cs::connected);
}

// 4022: the server's history store (Redis, the data dir) is away for now. The subscription stays,
// and is asked again after a backoff from its position; the application hears of it as an error.
TEST(ClientMachine, SubscribeRefusedForNowIsAskedAgainFromItsPosition) {
  harness h;
  h.m.subscribe("a", pos("e", 3), h.now);
  std::uint32_t g = h.connect_websocket();
  h.clear();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::uint64_t refused_at = h.now;
    h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::error, .id = round == 0 ? 2u : 3u,
                                              .error_code = code::storage_unavailable, .reason = "redis unavailable"}),
                              h.now);
    auto events = h.take_events();
    ASSERT_EQ(events.size(), 1u);   // no unsubscribed
    EXPECT_EQ(events[0].kind, ek::error);
    EXPECT_EQ(events[0].error_code, code::storage_unavailable);
    EXPECT_EQ(events[0].channel, "a");
    EXPECT_TRUE(h.take_actions().empty());   // not at once
    auto when = h.fire();
    EXPECT_LE(when - refused_at, fast_options().backoff_max_ms);
    auto sent = h.take_actions();
    ASSERT_EQ(sent.size(), 1u);
    command c;
    decode_error err;
    ASSERT_TRUE(decode_command(sent[0].text.substr(0, sent[0].text.find('\n')), c, err)) << sent[0].text;
    EXPECT_EQ(c.kind, command_kind::subscribe);
    EXPECT_EQ(c.channel, "a");
    EXPECT_EQ(c.since, pos("e", 3));
  }
  // Answered at last: subscribed, delivered as usual.
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::subscribed, .id = 4, .channel = "a", .pos = pos("e", 3),
                                            .recovered = true}) + message_frame("a", pos("e", 4)), h.now);
  auto events = h.take_events();
  ASSERT_EQ(of_kind(events, ek::subscribed).size(), 1u);
  ASSERT_EQ(of_kind(events, ek::message).size(), 1u);
  EXPECT_EQ(h.m.last_position("a"), pos("e", 4));
  EXPECT_TRUE(h.m.unsubscribe("a", h.now));   // still in the table
}

TEST(ClientMachine, SubscribeRulesAndWebsocketSubscribeWhileConnected) {
  harness h;
  EXPECT_FALSE(h.m.subscribe("bad name", std::nullopt, h.now));
  EXPECT_TRUE(h.m.subscribe("a", std::nullopt, h.now));
  EXPECT_FALSE(h.m.subscribe("a", std::nullopt, h.now));
  h.connect_websocket();
  h.clear();
  EXPECT_TRUE(h.m.subscribe("b", pos("e", 2), h.now));
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].text, subscribe_cmd(3, "b", pos("e", 2)));
  EXPECT_TRUE(h.m.unsubscribe("a", h.now));
  sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].text, "{\"cmd\":\"unsubscribe\",\"channel\":\"a\"}\n");
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::unsubscribed);
  EXPECT_EQ(events[0].error_code, code::ok);
}

TEST(ClientMachine, SubscribeOnSseWhileConnectedReopensWithTheNewChannelList) {
  harness h(fast_options({tk::sse}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame() + subscribed_frame("a", pos("ea", 4)), h.now);
  h.clear();

  EXPECT_TRUE(h.m.subscribe("b", std::nullopt, h.now));
  EXPECT_TRUE(h.take_actions().empty());  // the reopen is due now, on the next handle_timeout
  EXPECT_EQ(h.m.next_deadline(), h.now);
  h.m.handle_timeout(h.now);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].kind, ak::close_transport);
  EXPECT_EQ(actions[0].generation, g);
  EXPECT_EQ(actions[1].kind, ak::open_transport);
  EXPECT_EQ(actions[1].transport, tk::sse);
  EXPECT_EQ(actions[1].channels, "a,b");
  EXPECT_EQ(actions[1].cursor, "ea-4.~");
  std::uint32_t g2 = actions[1].generation;
  EXPECT_NE(g2, g);
  EXPECT_EQ(h.m.state(), cs::connected);
  EXPECT_TRUE(of_kind(h.take_events(), ek::state_changed).empty());

  h.m.handle_transport_data(g, message_frame("a", pos("ea", 5)), h.now);  // the old stream: ignored
  h.m.handle_transport_data(g2, connected_frame() + subscribed_frame("a", pos("ea", 4), true) +
                                    subscribed_frame("b", pos("eb", 0)) + message_frame("a", pos("ea", 5)),
                            h.now);
  auto events = h.take_events();
  auto subscribed = of_kind(events, ek::subscribed);
  ASSERT_EQ(subscribed.size(), 1u);  // "a" was already subscribed
  EXPECT_EQ(subscribed[0].channel, "b");
  EXPECT_EQ(of_kind(events, ek::message).size(), 1u);
  EXPECT_TRUE(of_kind(events, ek::gap).empty());
  EXPECT_EQ(h.m.last_position("a"), pos("ea", 5));

  EXPECT_TRUE(h.m.unsubscribe("a", h.now));
  h.m.handle_timeout(h.now);
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].channels, "b");
  EXPECT_EQ(opens[0].cursor, "eb-0");
}

// ---- server advice and close codes ---------------------------------------------------------------

TEST(ClientMachine, ServerAdviceAfterIsHonouredExactly) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, "{\"type\":\"disconnect\",\"code\":4010,\"reason\":\"maintenance\",\"reconnect\":true,\"after\":1200}",
                            h.now);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error_code, code::server_disconnect);
  EXPECT_EQ(events[0].reason, "maintenance");
  EXPECT_EQ(of_kind(h.take_actions(), ak::close_transport).size(), 1u);
  EXPECT_EQ(h.m.next_deadline(), h.now + 1200);
  std::uint64_t t = h.now;
  h.at(t + 1199);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  h.at(t + 1200);
  EXPECT_EQ(h.m.state(), cs::connecting);
}

TEST(ClientMachine, ServerAdviceNotToReconnectCloses) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_data(g, "{\"type\":\"disconnect\",\"code\":4005,\"reason\":\"expired\",\"reconnect\":false}", h.now);
  EXPECT_EQ(h.m.state(), cs::closed);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, cs::closed);
  EXPECT_EQ(events[0].error_code, code::token_expired);
  EXPECT_FALSE(h.m.next_deadline());
  EXPECT_EQ(of_kind(h.take_actions(), ak::close_transport).size(), 1u);
}

TEST(ClientMachine, CloseCodeNotAdvisingReconnectCloses) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_closed(g, code::unauthorized, "bad token", h.now);
  EXPECT_EQ(h.m.state(), cs::closed);
  EXPECT_EQ(h.take_events().back().error_code, code::unauthorized);
  EXPECT_FALSE(h.m.next_deadline());

  harness early;  // also before `connected`: no fallback to another transport
  early.m.connect(early.now);
  early.m.handle_transport_closed(early.last_open_generation(), code::message_too_big, "", early.now);
  EXPECT_EQ(early.m.state(), cs::closed);
  EXPECT_TRUE(of_kind(early.take_events(), ek::fallback).empty());
}

TEST(ClientMachine, ServerCloseCodeThatAdvisesReconnectBacksOff) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.clear();
  h.m.handle_transport_closed(g, code::shutting_down, "restart", h.now);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  EXPECT_EQ(h.take_events().back().error_code, code::server_disconnect);
  h.fire();
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].transport, tk::websocket);  // the transport that worked is retried first
}

TEST(ClientMachine, WorkingFallbackTransportIsRetriedFirst) {
  harness h;
  h.m.connect(h.now);
  h.m.handle_transport_closed(h.last_open_generation(), code::transport_failed, "no ws", h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  EXPECT_EQ(h.m.transport(), tk::sse);
  h.m.handle_transport_closed(g, code::transport_closed, "dropped", h.now);
  h.clear();
  h.fire();
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].transport, tk::sse);
}

// ---- requests ------------------------------------------------------------------------------------

TEST(ClientMachine, ReplyCompletesRequest) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.clear();
  auto id = h.m.publish("a", "{\"x\":\n1}", h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].text, "{\"cmd\":\"publish\",\"id\":" + std::to_string(id) +
                               ",\"channel\":\"a\",\"data\":{\"x\": 1}}\n");  // still one line
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::published, .id = id, .channel = "a",
                                            .pos = pos("e", 3)}), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::reply);
  EXPECT_EQ(events[0].request_id, id);
  EXPECT_EQ(events[0].channel, "a");
  EXPECT_EQ(events[0].pos, pos("e", 3));
  // Its timeout is gone: nothing fails when it would have expired.
  h.m.handle_transport_data(g, ping_frame(), h.now + 2500);
  h.at(h.now + 4000);
  EXPECT_TRUE(h.take_events().empty());
  EXPECT_EQ(h.m.state(), cs::connected);
}

TEST(ClientMachine, ErrorFrameFailsRequestWithItsCode) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  auto id = h.m.history("a", 10, h.now);
  h.clear();
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::error, .id = id, .error_code = code::permission_denied,
                                            .reason = "nope"}), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::request_failed);
  EXPECT_EQ(events[0].request_id, id);
  EXPECT_EQ(events[0].error_code, code::permission_denied);
  EXPECT_EQ(events[0].reason, "nope");
}

TEST(ClientMachine, RequestTimesOut) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.now += 500;
  h.m.handle_transport_data(g, ping_frame(), h.now);
  auto id = h.m.presence("a", h.now);
  h.clear();
  EXPECT_EQ(h.m.next_deadline(), h.now + 3000);  // heartbeat first
  std::uint64_t t = h.now;
  for (int i = 1; i <= 3; ++i) h.m.handle_transport_data(g, ping_frame(), t + 1000 * i);
  h.at(t + 3999);
  EXPECT_TRUE(of_kind(h.take_events(), ek::request_failed).empty());
  h.at(t + 4000);
  auto failed = of_kind(h.take_events(), ek::request_failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].request_id, id);
  EXPECT_EQ(failed[0].error_code, code::timeout);
  // A late reply is ignored.
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::presence, .id = id, .channel = "a", .data = "[]"}), h.now);
  EXPECT_TRUE(h.take_events().empty());
}

TEST(ClientMachine, RequestsQueuedBeforeConnectGoOutOnConnect) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  auto id = h.m.publish("a", "1", h.now);  // id 1
  EXPECT_EQ(h.m.next_deadline(), h.now + 4000);
  EXPECT_TRUE(h.take_actions().empty());
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  EXPECT_TRUE(of_kind(h.take_actions(), ak::send).size() == 1u);  // only the connect so far
  h.m.handle_transport_data(g, connected_frame(2), h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].text, subscribe_cmd(3, "a") + "{\"cmd\":\"publish\",\"id\":" + std::to_string(id) +
                               ",\"channel\":\"a\",\"data\":1}\n");
}

TEST(ClientMachine, InFlightRequestsFailOnDisconnectQueuedOnesWait) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  auto sent = h.m.publish("a", "1", h.now);
  h.m.handle_transport_closed(g, code::transport_closed, "gone", h.now);
  auto queued = h.m.publish("a", "2", h.now);  // made while reconnecting
  auto failed = of_kind(h.take_events(), ek::request_failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].request_id, sent);
  EXPECT_EQ(failed[0].error_code, code::not_connected);
  h.clear();
  h.fire();
  g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 2u);
  EXPECT_NE(sends[1].text.find("\"id\":" + std::to_string(queued)), std::string::npos);
  EXPECT_EQ(sends[1].text.find("\"id\":" + std::to_string(sent) + ","), std::string::npos);
}

TEST(ClientMachine, SseCommandsArePostedWithConnectAndAnswerIgnoresConnected) {
  auto o = fast_options({tk::sse});
  o.token = "tok";
  harness h(o);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.clear();
  auto id = h.m.publish("a", "\"hi\"", h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].transport, tk::sse);
  EXPECT_EQ(sends[0].generation, g);
  EXPECT_EQ(sends[0].text, "{\"cmd\":\"connect\",\"token\":\"tok\"}\n{\"cmd\":\"publish\",\"id\":" +
                               std::to_string(id) + ",\"channel\":\"a\",\"data\":\"hi\"}\n");
  h.m.handle_transport_data(g, connected_frame() + encode(frame{.kind = frame_kind::published, .id = id,
                                                                .channel = "a", .pos = pos("e", 1)}), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::reply);
  EXPECT_TRUE(h.take_actions().empty());
}

TEST(ClientMachine, ReplyToCommandPostedBeforeReopenStillCompletes) {
  harness h(fast_options({tk::sse}));
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  auto id = h.m.publish("a", "1", h.now);
  h.m.subscribe("b", std::nullopt, h.now);
  h.m.handle_timeout(h.now);  // reopens: a new generation
  h.clear();
  h.m.handle_transport_data(g, encode(frame{.kind = frame_kind::published, .id = id, .channel = "a",
                                            .pos = pos("e", 1)}) + message_frame("a", pos("e", 1)), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ek::reply);
  EXPECT_EQ(events[0].request_id, id);
}

TEST(ClientMachine, DropCompletesWhenTheServerCloses) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  auto id = h.m.drop(h.now);
  EXPECT_EQ(of_kind(h.take_actions(), ak::send).back().text, "{\"cmd\":\"drop\",\"id\":" + std::to_string(id) + "}\n");
  h.clear();
  h.m.handle_transport_closed(g, code::disconnected_by_server, "dropped on request", h.now);
  auto replies = of_kind(h.take_events(), ek::reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].request_id, id);
  EXPECT_EQ(replies[0].error_code, code::server_disconnect);   // the close code 4010, as a loss
  EXPECT_EQ(h.m.state(), cs::reconnecting);
}

TEST(ClientMachine, BadChannelRequestFailsAtOnce) {
  harness h;
  auto id = h.m.publish("", "1", h.now);
  auto failed = of_kind(h.take_events(), ek::request_failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].request_id, id);
  EXPECT_EQ(failed[0].error_code, code::bad_channel);
  EXPECT_FALSE(h.m.next_deadline());
}

// ---- generations, network checks, close ----------------------------------------------------------

TEST(ClientMachine, LateEventsFromAnOldGenerationAreIgnored) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t old = h.last_open_generation();
  h.m.handle_transport_closed(old, code::transport_failed, "refused", h.now);
  std::uint32_t g = h.last_open_generation();
  h.clear();
  h.m.handle_transport_open(old, h.now);
  h.m.handle_transport_data(old, connected_frame() + subscribed_frame("a", pos("e", 1)), h.now);
  h.m.handle_transport_closed(old, code::transport_closed, "late", h.now);
  EXPECT_TRUE(h.take_events().empty());
  EXPECT_TRUE(h.take_actions().empty());
  EXPECT_EQ(h.m.state(), cs::connecting);
  EXPECT_EQ(h.m.transport(), tk::sse);
  EXPECT_FALSE(h.m.last_position("a"));
  h.m.handle_transport_data(g, connected_frame(), h.now);  // the current one still works
  EXPECT_EQ(h.m.state(), cs::connected);
}

TEST(ClientMachine, BatchStopsAtAFrameThatEndsTheTransport) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 0), std::nullopt, 2), h.now);
  h.clear();
  h.m.handle_transport_data(g, message_frame("a", pos("e", 1)) + "\r\n\n" +
                                   "{\"type\":\"disconnect\",\"code\":4009,\"reason\":\"bye\",\"reconnect\":true}\n" +
                                   message_frame("a", pos("e", 2)), h.now);
  auto events = h.take_events();
  EXPECT_EQ(of_kind(events, ek::message).size(), 1u);
  EXPECT_EQ(h.m.last_position("a"), pos("e", 1));
  EXPECT_EQ(h.m.state(), cs::reconnecting);
}

TEST(ClientMachine, MalformedFrameIsReportedAndSkipped) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_data(g, subscribed_frame("a", pos("e", 0), std::nullopt, 2), h.now);
  h.clear();
  h.m.handle_transport_data(g, "{\"type\":\n" + message_frame("a", pos("e", 1)), h.now);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::error);
  EXPECT_EQ(events[0].error_code, code::bad_frame);
  EXPECT_EQ(events[1].kind, ek::message);
  EXPECT_EQ(h.m.state(), cs::connected);
}

TEST(ClientMachine, NetworkCheckCutsTheBackoffShort) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.m.handle_network_check(h.now);  // connected: nothing to do
  h.clear();
  EXPECT_EQ(h.m.state(), cs::connected);
  h.m.handle_transport_data(g, "{\"type\":\"disconnect\",\"code\":4010,\"reason\":\"x\",\"reconnect\":true,\"after\":60000}", h.now);
  h.clear();
  h.m.handle_network_check(h.now + 10);
  EXPECT_EQ(h.m.state(), cs::connecting);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error_code, code::network_check);
  EXPECT_EQ(of_kind(h.take_actions(), ak::open_transport).size(), 1u);
  EXPECT_EQ(h.m.next_deadline(), h.now + 10 + 2000);  // the handshake, not the 60 s advice

  harness idle;
  idle.m.handle_network_check(idle.now);
  EXPECT_EQ(idle.m.state(), cs::disconnected);
  EXPECT_TRUE(idle.take_actions().empty());
}

TEST(ClientMachine, CloseReleasesEverything) {
  harness h;
  h.m.subscribe("a", std::nullopt, h.now);
  std::uint32_t g = h.connect_websocket();
  auto id = h.m.publish("a", "1", h.now);
  h.clear();
  h.m.close(h.now);
  EXPECT_EQ(h.m.state(), cs::closed);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ak::close_transport);
  EXPECT_EQ(actions[0].generation, g);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, ek::request_failed);
  EXPECT_EQ(events[0].request_id, id);
  EXPECT_EQ(events[1].to, cs::closed);
  EXPECT_EQ(events[1].error_code, code::closed_by_client);
  EXPECT_FALSE(h.m.next_deadline());
  h.m.handle_transport_closed(g, code::normal_closure, "", h.now);  // the driver's echo changes nothing
  EXPECT_TRUE(h.take_events().empty());

  // connect() after close() starts over and resubscribes.
  h.m.connect(h.now);
  EXPECT_EQ(h.m.state(), cs::connecting);
  g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  ASSERT_EQ(sends.size(), 2u);
  EXPECT_NE(sends[1].text.find("\"channel\":\"a\""), std::string::npos);
}

TEST(ClientMachine, CloseWhileReconnectingLeavesNoDeadline) {
  harness h;
  std::uint32_t g = h.connect_websocket();
  h.m.handle_transport_closed(g, code::transport_closed, "", h.now);
  ASSERT_TRUE(h.m.next_deadline());
  h.m.close(h.now);
  EXPECT_EQ(h.m.state(), cs::closed);
  EXPECT_FALSE(h.m.next_deadline());
  h.at(h.now + 100000);
  EXPECT_EQ(h.m.state(), cs::closed);
}

TEST(ClientMachine, NamesForLogs) {
  EXPECT_EQ(transport_name(tk::polling), "polling");
  EXPECT_EQ(state_name(cs::reconnecting), "reconnecting");
}

TEST(ClientMachine, SeveralSubscribesOnAOneWayStreamCostOneReopen) {
  harness h(fast_options({tk::sse}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame() + subscribed_frame("a", pos("ea", 1)), h.now);
  h.clear();
  h.m.subscribe("b", std::nullopt, h.now);
  h.m.subscribe("c", std::nullopt, h.now);
  h.m.unsubscribe("a", h.now);
  h.m.handle_timeout(h.now);
  auto opens = of_kind(h.take_actions(), ak::open_transport);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].channels, "b,c");
  h.m.handle_timeout(h.now + 1);
  EXPECT_TRUE(of_kind(h.take_actions(), ak::open_transport).empty());
}

TEST(ClientMachine, PendingReopenIsForgottenWhenTheStreamDies) {
  harness h(fast_options({tk::sse}));
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame(), h.now);
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.handle_transport_closed(g, code::transport_closed, "gone", h.now);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  h.clear();
  h.m.handle_timeout(h.now);  // the reopen must not fire in reconnecting
  EXPECT_TRUE(of_kind(h.take_actions(), ak::open_transport).empty());
  EXPECT_EQ(h.m.state(), cs::reconnecting);
}

TEST(ClientMachine, PollsCarryTheClientIdFromTheOpeningResponse) {
  harness h(fast_options({tk::polling}));
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  auto first = of_kind(h.take_actions(), ak::poll);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].opening);
  EXPECT_EQ(first[0].client, "");
  std::uint32_t g = first[0].generation;
  h.m.handle_transport_open(g, h.now);
  h.m.handle_transport_data(g, connected_frame() + subscribed_frame("a", pos("ea", 3)), h.now);
  auto next = of_kind(h.take_actions(), ak::poll);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_FALSE(next[0].opening);
  EXPECT_EQ(next[0].client, "c1");
  EXPECT_EQ(next[0].cursor, "ea-3");
}

// ---- tokens ----------------------------------------------------------------------------------------

namespace {

std::string connect_refused(std::uint64_t id, code why) {
  return encode(frame{.kind = frame_kind::error, .id = id, .error_code = why, .reason = std::string(code_name(why))});
}
client_options refreshing(std::string token = "old") {
  auto o = fast_options();
  o.token = std::move(token);
  o.token_refresh = true;
  return o;
}
// The connect command the websocket of generation `g` sends once open.
std::string connect_text(harness& h, std::uint32_t g) {
  h.m.handle_transport_open(g, h.now);
  auto sends = of_kind(h.take_actions(), ak::send);
  return sends.empty() ? std::string() : sends.front().text;
}

}  // namespace

TEST(ClientMachine, RefusedTokenWithoutRefreshClosesWithTheServersCode) {
  for (code why : {code::token_expired, code::unauthorized}) {
    harness h;
    h.m.connect(h.now);
    std::uint32_t g = h.last_open_generation();
    connect_text(h, g);
    h.clear();
    h.m.handle_transport_data(g, connect_refused(1, why), h.now);
    EXPECT_EQ(h.m.state(), cs::closed);
    auto events = h.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].error_code, why);
    EXPECT_FALSE(h.m.next_deadline());
    EXPECT_TRUE(of_kind(h.take_actions(), ak::open_transport).empty());
  }
}

TEST(ClientMachine, TokenIsFetchedBeforeConnectingWhenThereIsNone) {
  harness h(refreshing(""));
  h.m.connect(h.now);
  EXPECT_EQ(h.m.state(), cs::connecting);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ak::fetch_token);
  EXPECT_EQ(actions[0].reason, code::ok);
  h.m.handle_token(actions[0].generation + 1, "wrong request", h.now);  // not the one asked: ignored
  EXPECT_TRUE(h.take_actions().empty());
  h.m.handle_token(actions[0].generation, "fresh", h.now);
  std::uint32_t g = h.last_open_generation();
  EXPECT_EQ(connect_text(h, g), "{\"cmd\":\"connect\",\"id\":1,\"token\":\"fresh\"}\n");

  harness failing(refreshing(""));  // no token to be had before a first connection: 4004
  failing.m.connect(failing.now);
  auto ask = of_kind(failing.take_actions(), ak::fetch_token);
  ASSERT_EQ(ask.size(), 1u);
  failing.m.handle_token_failed(ask[0].generation, "login needed", failing.now);
  EXPECT_EQ(failing.m.state(), cs::closed);
  auto last = failing.take_events().back();
  EXPECT_EQ(last.error_code, code::unauthorized);
  EXPECT_EQ(last.reason, "getToken failed: login needed");
}

TEST(ClientMachine, ExpiredTokenIsReplacedAndTheRetryGoesAtOnce) {
  harness h(refreshing());
  h.m.subscribe("a", std::nullopt, h.now);
  h.m.connect(h.now);
  std::uint32_t g = h.last_open_generation();
  EXPECT_EQ(connect_text(h, g), "{\"cmd\":\"connect\",\"id\":1,\"token\":\"old\"}\n");
  h.clear();
  h.m.handle_transport_data(g, connect_refused(1, code::token_expired), h.now);
  EXPECT_EQ(h.m.state(), cs::reconnecting);
  auto events = h.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].to, cs::reconnecting);
  EXPECT_EQ(events[0].error_code, code::token_expired);
  auto actions = h.take_actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].kind, ak::close_transport);
  EXPECT_EQ(actions[1].kind, ak::fetch_token);
  EXPECT_EQ(actions[1].reason, code::token_expired);
  // Waiting for the token: only its own deadline, and a network check does not start an attempt.
  EXPECT_EQ(h.m.next_deadline(), h.now + 4000);
  h.m.handle_network_check(h.now);
  EXPECT_TRUE(h.take_actions().empty());

  h.now += 30;
  h.m.handle_token(actions[1].generation, "new", h.now);
  EXPECT_EQ(h.m.next_deadline(), h.now);
  h.fire();
  EXPECT_EQ(h.m.state(), cs::connecting);
  std::uint32_t g2 = h.last_open_generation();
  h.clear();
  EXPECT_EQ(connect_text(h, g2), "{\"cmd\":\"connect\",\"id\":2,\"token\":\"new\"}\n");
  h.m.handle_transport_data(g2, connected_frame(2), h.now);
  EXPECT_EQ(h.m.state(), cs::connected);
  EXPECT_NE(of_kind(h.take_actions(), ak::send).front().text.find("\"channel\":\"a\""), std::string::npos);
}

TEST(ClientMachine, TokenRefusedAgainBacksOffBeforeTheNextRetry) {
  harness h(refreshing());
  h.m.connect(h.now);
  for (int round = 0; round < 3; ++round) {
    std::uint32_t g = h.last_open_generation();
    std::string sent = connect_text(h, g);
    command c;
    decode_error err;
    ASSERT_TRUE(decode_command(sent.substr(0, sent.find('\n')), c, err));
    h.clear();
    h.m.handle_transport_data(g, connect_refused(c.id, code::unauthorized), h.now);
    auto ask = of_kind(h.take_actions(), ak::fetch_token);
    ASSERT_EQ(ask.size(), 1u);
    h.m.handle_token(ask[0].generation, "token-" + std::to_string(round), h.now);
    auto d = h.m.next_deadline();
    ASSERT_TRUE(d);
    // The first retry goes at once; later ones wait within the backoff ceiling.
    if (round == 0) {
      EXPECT_EQ(*d, h.now);
    }
    EXPECT_LE(*d, h.now + 1000);
    h.fire();
    EXPECT_EQ(h.m.state(), cs::connecting);
  }
}

TEST(ClientMachine, TokenFetchFailureSameTokenOrTimeoutCloseWithTheRefusal) {
  auto refuse = [](harness& h) {
    h.m.connect(h.now);
    std::uint32_t g = h.last_open_generation();
    connect_text(h, g);
    h.clear();
    h.m.handle_transport_data(g, connect_refused(1, code::token_expired), h.now);
    h.take_events();
    return of_kind(h.take_actions(), ak::fetch_token).at(0).generation;
  };
  {
    harness h(refreshing());
    auto id = refuse(h);
    h.m.handle_token_failed(id, "backend down", h.now);
    EXPECT_EQ(h.m.state(), cs::closed);
    auto events = h.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].error_code, code::token_expired);
    EXPECT_EQ(events[0].reason, "getToken failed: backend down");
    EXPECT_FALSE(h.m.next_deadline());
    h.m.handle_token(id, "late", h.now);  // too late: nothing more happens
    EXPECT_TRUE(h.take_actions().empty());
    EXPECT_EQ(h.m.state(), cs::closed);
  }
  {
    harness h(refreshing());
    auto id = refuse(h);
    h.m.handle_token(id, "old", h.now);
    EXPECT_EQ(h.m.state(), cs::closed);
    EXPECT_EQ(h.take_events().back().error_code, code::token_expired);
    EXPECT_FALSE(h.m.next_deadline());
  }
  {
    harness h(refreshing());
    refuse(h);
    h.fire();  // request_timeout_ms
    EXPECT_EQ(h.m.state(), cs::closed);
    EXPECT_EQ(h.take_events().back().error_code, code::token_expired);
    EXPECT_FALSE(h.m.next_deadline());
  }
}

TEST(ClientMachine, TokenRefusalsBySignalOtherThanAConnectError) {
  {  // a disconnect frame while connected, whatever its reconnect advice
    harness h(refreshing());
    std::uint32_t g = h.connect_websocket();
    h.clear();
    h.m.handle_transport_data(g, "{\"type\":\"disconnect\",\"code\":4005,\"reason\":\"expired\",\"reconnect\":false}", h.now);
    EXPECT_EQ(h.m.state(), cs::reconnecting);
    EXPECT_EQ(h.take_events().back().error_code, code::token_expired);
    EXPECT_EQ(of_kind(h.take_actions(), ak::fetch_token).size(), 1u);
  }
  {  // a WebSocket close code
    harness h(refreshing());
    std::uint32_t g = h.connect_websocket();
    h.clear();
    h.m.handle_transport_closed(g, code::unauthorized, "bad token", h.now);
    EXPECT_EQ(h.m.state(), cs::reconnecting);
    EXPECT_EQ(of_kind(h.take_actions(), ak::fetch_token).size(), 1u);
  }
  {  // an HTTP 401 of a one-way transport, reported with its code: no fallback, no backoff loop
    auto o = refreshing();
    o.transports = {tk::sse, tk::polling};
    harness p(o);
    p.m.connect(p.now);
    std::uint32_t g = p.last_open_generation();
    p.clear();
    p.m.handle_transport_closed(g, code::token_expired, "event stream refused: HTTP 401", p.now);
    auto events = p.take_events();
    EXPECT_TRUE(of_kind(events, ek::fallback).empty());
    EXPECT_EQ(p.m.state(), cs::reconnecting);
    EXPECT_EQ(of_kind(p.take_actions(), ak::fetch_token).size(), 1u);
  }
  {  // a command POST's connect refused (the stream itself is up)
    auto o = refreshing();
    o.transports = {tk::sse};
    harness h(o);
    h.m.connect(h.now);
    std::uint32_t g = h.last_open_generation();
    h.m.handle_transport_open(g, h.now);
    h.m.handle_transport_data(g, connected_frame(), h.now);
    ASSERT_EQ(h.m.state(), cs::connected);
    std::uint64_t id = h.m.publish("a", "1", h.now);
    h.clear();
    h.m.handle_transport_data(g, connect_refused(0, code::token_expired), h.now);
    EXPECT_EQ(h.m.state(), cs::reconnecting);
    auto events = h.take_events();
    auto failed = of_kind(events, ek::request_failed);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].request_id, id);
    EXPECT_EQ(of_kind(h.take_actions(), ak::fetch_token).size(), 1u);
  }
}
