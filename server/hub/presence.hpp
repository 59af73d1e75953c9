// The presence seam: who is in a channel. One member per client id; a member either lives as long
// as its connection (lease 0) or until its lease runs out (one-way clients renew it by polling).
#pragma once
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "protocol/codes.hpp"
#include "server/hub/channel_event.hpp"

namespace pushwire::server {

class presence_store {
 public:
  virtual ~presence_store() = default;
  // Receives every join and leave (including lease expiry). It may be called with a store lock
  // held: it must only hand the event on, never call back into the store.
  virtual void set_listener(std::function<void(const channel_event_ptr&)> listener) = 0;
  // Adds or renews a member; `lease_until_ms` 0 = held until leave(). Emits a join when new. The
  // result is `presence_full` when the channel is at its member cap.
  virtual void join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
                    std::function<void(protocol::code)> done) = 0;
  virtual void leave(std::string_view channel, std::string_view client) = 0;
  virtual void members(std::string_view channel, std::function<void(std::vector<member>)> done) = 0;
  // Whether the channel has any member (it keeps an idle channel alive).
  virtual bool occupied(std::string_view channel) = 0;
  virtual void sweep(std::uint64_t now_ms) = 0;   // expires leases (with leave events)
};

}  // namespace pushwire::server
