// What every transport shell shares (no networking header): it owns the protocol session, executes
// the session's engine requests synchronously, keeps the per-subscription "last offset sent" that
// makes the replay/live boundary exactly-once, and hands finished frames to the transport.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/server_session.hpp"
#include "server/local_hub.hpp"
#include "server/shared.hpp"

namespace pushwire::server {

class shell_base : public subscriber {
 public:
  shell_base(shared_state& s, local_hub& hub, unsigned worker, std::string client, std::uint64_t now,
             protocol::session_policy policy);
  ~shell_base() override;
  void deliver(const message_ptr& m) override;
  protocol::server_session& session() { return session_; }
  const protocol::server_session& session() const { return session_; }

 protected:
  // Executes every queued session action (and those they cause), in order.
  void drain(std::uint64_t now);
  // Leaves every channel (and its presence unless `keep_presence`: leased one-way members stay).
  void release(bool keep_presence = false);
  // Channels where this connection is a presence member.
  std::vector<std::string> presence_channels() const;
  virtual void enqueue(message_ptr m) = 0;
  virtual void close_requested(protocol::code c, const std::string& reason) = 0;

  shared_state& shared_;
  local_hub& hub_;
  unsigned worker_;
  protocol::server_session session_;
  std::uint64_t presence_lease_until_ = 0;   // 0: held while the connection lives
  std::string presence_client_;              // member id in presence (default: client id)
  bool replaying_ = false;                   // enqueue() is called with a resume replay

 private:
  struct sub_state {
    protocol::position last;                 // last publication queued (or resumed from)
    bool presence = false;
  };
  void execute(protocol::session_action& a, std::uint64_t now);
  std::map<std::string, sub_state, std::less<>> subs_;
  bool released_ = false;
};

// A shell that just collects frames (for /cmd and long-poll responses).
class collect_shell : public shell_base {
 public:
  using shell_base::shell_base;
  using shell_base::drain;
  using shell_base::release;
  using shell_base::presence_channels;
  std::vector<message_ptr> frames;
  std::optional<protocol::code> closed;
  std::function<void()> on_frame;            // a frame arrived (long-poll: answer now)
  std::uint64_t& lease() { return presence_lease_until_; }
  std::string& presence_client() { return presence_client_; }
  // Long-polls take join/leave from their lease's queue instead (shared_state::lease_watch), which
  // also holds the ones between polls and never the lease's own (a poll must not be woken by its
  // own join): the copies fanned out to the hub are dropped.
  bool presence_from_lease = false;

 protected:
  void enqueue(message_ptr m) override {
    if (presence_from_lease && m->kind == message_kind::control &&
        (m->frame.starts_with("{\"type\":\"join\"") || m->frame.starts_with("{\"type\":\"leave\"")))
      return;
    frames.push_back(std::move(m));
    if (on_frame) on_frame();
  }
  void close_requested(protocol::code c, const std::string&) override { closed = c; }
};

}  // namespace pushwire::server
