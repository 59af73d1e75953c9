// The embedded presence store: members per channel in one map under one lock (presence changes
// are rare next to publications, and every event is handed on under the lock, so join and leave
// reach the listener in the order they happened).
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/hub/presence.hpp"

namespace pushwire::server {

class memory_presence final : public presence_store {
 public:
  explicit memory_presence(std::size_t max_members_per_channel) : max_members_(max_members_per_channel) {}

  void set_listener(std::function<void(const channel_event_ptr&)> listener) override { listener_ = std::move(listener); }
  void join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
            std::function<void(protocol::code)> done) override;
  void leave(std::string_view channel, std::string_view client) override;
  void members(std::string_view channel, std::function<void(std::vector<member>)> done) override;
  bool occupied(std::string_view channel) override;
  void sweep(std::uint64_t now_ms) override;

 private:
  struct entry {
    member who;
    std::uint64_t lease_until_ms;   // 0: until leave()
  };
  using roster = std::map<std::string, entry, std::less<>>;   // by client id
  void emit(channel_event::kind k, std::string_view channel, const member& m);   // caller holds mu_

  std::size_t max_members_;
  std::function<void(const channel_event_ptr&)> listener_;
  std::mutex mu_;
  std::unordered_map<std::string, roster> channels_;
};

}  // namespace pushwire::server
