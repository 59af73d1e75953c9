// The one-node broker: everything published reaches this node at once, on the publishing thread.
#pragma once
#include "server/hub/broker.hpp"

namespace pushwire::server {

class memory_broker final : public broker {
 public:
  void set_listener(broker_listener* l) override { listener_ = l; }
  void publish(const publication_ptr& p) override { listener_->on_publication(p); }
  void publish_event(const channel_event_ptr& e) override { listener_->on_channel_event(e); }
  void publish_disconnect(const disconnect_order& d) override { listener_->on_disconnect(d); }
  void subscribe(std::string_view, std::function<void()> done) override { done(); }
  void unsubscribe(std::string_view) override {}

 private:
  broker_listener* listener_ = nullptr;
};

}  // namespace pushwire::server
