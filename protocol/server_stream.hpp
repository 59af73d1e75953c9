// The server side of one connection's outbound stream, with no I/O of its own. WebSocket, SSE and
// long-poll shells only move bytes and arm timers; everything they decide about the stream is here:
// positions per channel, the duplicate filter, the resume token / poll cursor, heartbeat and
// dead-peer deadlines, and the slow-consumer decision.
//
// Theory of operation
// -------------------
// Channels. subscribing(channel) marks a subscribe in flight; subscribed(channel, start) sets the
// channel's position to `start`, the resume point (with `recovered:true` the `since` the client
// gave, else the channel's newest position); resumed(channel) ends the replay. A live publication
// is offered with admit(); the answer is
//   send        newer than the channel's position in its epoch: the position moves to it; queue it;
//   reset       in another epoch than the position: the channel's history was lost meanwhile (a
//               Redis that lost its data). The position moves to it; the shell first tells the
//               client (`subscribed` with recovered:false at the offset before it), then queues it;
//   duplicate   at or below the position: already sent (a replay overlapped the live stream);
//   hold        the channel's subscribe (its resume read) is still in flight: keep it until
//               resumed(channel), then offer it again after the replay (hub.hpp, step 3);
//   unknown     not subscribed here.
// Replayed publications go through admit() too, so replay and live merge by offset.
//
// Written positions. The token of a stream (SSE `id:` lines, the long-poll cursor) must name what
// was *written*, not what was queued: a cut between the two would otherwise skip messages. The
// shell reports each item as it builds a write with wrote_position(), then reads token().
//
// Queue and slow consumers. queue(bytes, replay) counts what the shell queues; a resume replay is
// not bounded (it points at history that exists anyway, and a resume larger than the bound could
// otherwise never succeed). Going over queue_bytes is the slow-consumer decision:
//   no write in flight  -> state `closing`, action send_notice: the shell drops its queue, queues
//                          the 4008 disconnect notice and closes once it is written;
//   a write in flight   -> state `slow_grace`: the shell drops its queue; when the write completes
//                          within slow_grace_ms, send_notice; otherwise the deadline gives `cut`.
// Every transport that can carry the notice (WebSocket, SSE) gets the same one.
//
// Deadlines (time is an argument, ms on any monotonic clock):
//   heartbeat   nothing written for ping_ms -> action send_ping (the `ping` frame or SSE event);
//   dead peer   (when dead_peer_ms > 0: streams that read) nothing received for dead_peer_ms/2 ->
//               probe (a WebSocket ping; browsers answer it themselves), for dead_peer_ms -> cut.
//
// States:  open --over bound, write idle--> closing
//          open --over bound, write in flight--> slow_grace --write done--> closing
//                                                slow_grace --grace passed--> cut
//          open/closing --dead peer--> cut;   any --close()--> closing
// In `closing` nothing but the notice (and the shell's close) is queued; `cut` is final.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/position.hpp"

namespace pushwire::protocol {

struct stream_policy {
  std::size_t queue_bytes = 1 << 20;        // per connection: seconds of a busy stream
  std::uint64_t slow_grace_ms = 1000;       // a stuck write's time to finish before the cut
  std::uint64_t ping_ms = 25000;            // heartbeat frame after this long without a write
  std::uint64_t dead_peer_ms = 0;           // 0 = the transport does not read (SSE, long-poll)
};

enum class stream_state : std::uint8_t { open, slow_grace, closing, cut };
std::string_view stream_state_name(stream_state s);

enum class stream_action : std::uint8_t { send_ping, probe, send_notice, cut };

enum class admit_verdict : std::uint8_t { send, reset, duplicate, hold, unknown };

class server_stream {
 public:
  server_stream(stream_policy policy, std::uint64_t now);

  // --- channels -------------------------------------------------------------------------------
  // One-way streams name their channels up front, in token order; a WebSocket adds them as it goes.
  void declare_channels(const std::vector<std::string>& ordered);
  // A subscribe is in flight: live publications are held from now on.
  void subscribing(std::string_view channel);
  // It succeeded: `start` is the resume point; publications stay held until resumed().
  void subscribed(std::string_view channel, const position& start);
  void resumed(std::string_view channel);
  void unsubscribed(std::string_view channel);
  admit_verdict admit(std::string_view channel, const position& pos);
  // Whether the channel is subscribed or being subscribed (from subscribing() to unsubscribed()):
  // the shell's own record of its channels, so a connection keeps each name once.
  bool joined(std::string_view channel) const {
    auto* c = find(channel);
    return c && c->subscribed;
  }
  // One joined channel (null when none): the shell leaves them one by one when it closes.
  const std::string* any_joined() const;

  // --- written positions (SSE id lines, poll cursor) -------------------------------------------
  // A publication moves its channel forward only; a `subscribed` reply sets the resume point.
  void wrote_position(std::string_view channel, const position& pos, bool publication);
  std::string token() const;   // every declared channel, in declared order
  void append_token(std::string& out) const;   // the same, appended (no allocation of its own)

  // --- queue and writes ------------------------------------------------------------------------
  // False: not queued (closing, or over the bound: the slow-consumer decision was taken; the shell
  // then calls handle_timeout(now), which arms the grace deadline, and drains the actions). Cheap
  // on the hot path: no clock. Frames the shell must send anyway (the notice) use queue_notice().
  bool queue(std::size_t bytes, bool replay);
  void queue_notice(std::size_t bytes);
  void write_started(std::uint64_t now);
  void write_done(std::size_t bytes, bool replay, std::uint64_t now);
  void dropped(std::size_t bytes, bool replay);   // the shell dropped queued items unwritten
  std::size_t queued_bytes() const { return queued_; }
  bool writing() const { return writing_; }

  // --- the peer and time -------------------------------------------------------------------------
  void received(std::uint64_t now);
  void close();   // the connection is closing for another reason: queue nothing more
  void handle_timeout(std::uint64_t now);
  std::optional<std::uint64_t> next_deadline() const;
  std::optional<stream_action> poll_action();

  stream_state state() const { return state_; }

 private:
  // One per channel of every connection: the two positions' "set" flags sit with the others
  // instead of padding out a std::optional each (136 -> 120 bytes).
  struct channel_state {
    std::string name;
    position sent;      // duplicate filter: the newest position queued (when has_sent)
    position written;   // the newest position written, for the token (when has_written)
    bool has_sent = false;
    bool has_written = false;
    bool subscribed = false;
    bool resuming = false;
  };
  channel_state* find(std::string_view channel);
  const channel_state* find(std::string_view channel) const;
  channel_state& find_or_add(std::string_view channel);
  void over_bound();

  // (Members ordered so the flags share one word: every idle connection holds a stream.)
  stream_policy policy_;
  std::vector<channel_state> channels_;   // small (<= max subscriptions); declared ones first
  std::size_t declared_ = 0;
  std::size_t queued_ = 0, replay_queued_ = 0;
  std::uint64_t last_write_, last_recv_;
  std::uint64_t probed_for_ = 0;          // last_recv_ when the last probe went out (one per silence)
  std::uint64_t grace_until_ = 0;
  std::vector<stream_action> actions_;   // a few at most (a deque would allocate per connection)
  stream_state state_ = stream_state::open;
  bool writing_ = false;
  bool probe_sent_ = false;
};

}  // namespace pushwire::protocol
