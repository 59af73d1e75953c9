// A fanout_sink that records what one I/O thread received, in order: the hub-level tests (the store
// contract, several Redis nodes) read it.
#pragma once
#include <mutex>
#include <string_view>
#include <vector>

#include "server/hub/hub.hpp"

namespace test {

struct recording_sink final : pushwire::server::fanout_sink {
  std::mutex mu;
  std::vector<pushwire::server::publication_ptr> pubs;
  std::vector<pushwire::server::channel_event_ptr> events;
  void post(const pushwire::server::publication_ptr& p) override {
    std::lock_guard lk(mu);
    pubs.push_back(p);
  }
  void post(const pushwire::server::channel_event_ptr& e) override {
    std::lock_guard lk(mu);
    events.push_back(e);
  }
  // The offsets received on `channel`, from the `from`-th publication on.
  std::vector<std::uint64_t> offsets(std::string_view channel, std::size_t from = 0) {
    std::lock_guard lk(mu);
    std::vector<std::uint64_t> out;
    for (std::size_t i = from; i < pubs.size(); ++i)
      if (pubs[i]->channel == channel) out.push_back(pubs[i]->pos.offset);
    return out;
  }
  std::size_t size() {
    std::lock_guard lk(mu);
    return pubs.size();
  }
  std::vector<pushwire::protocol::position> gaps(std::string_view channel) {
    std::lock_guard lk(mu);
    std::vector<pushwire::protocol::position> out;
    for (auto& e : events)
      if (e->what == pushwire::server::channel_event::kind::gap && e->channel == channel) out.push_back(e->at);
    return out;
  }
  std::size_t count_events(pushwire::server::channel_event::kind k, std::string_view client) {
    std::lock_guard lk(mu);
    std::size_t n = 0;
    for (auto& e : events)
      if (e->what == k && e->who.client == client) ++n;
    return n;
  }
};

}  // namespace test
