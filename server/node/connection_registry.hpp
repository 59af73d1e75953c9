// Which connections live on this node (client id -> I/O thread, user), for targeted disconnects,
// the shutdown drain and the /api/disconnect count.
#pragma once
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/hub/broker.hpp"

namespace pushwire::server {

class connection_registry {
 public:
  void add(const std::string& client, unsigned io_thread, const std::string& user) {
    std::lock_guard lk(mu_);
    conns_[client] = entry{io_thread, user};
  }
  void remove(const std::string& client) {
    std::lock_guard lk(mu_);
    conns_.erase(client);
  }
  std::size_t count_matching(const disconnect_order& d) {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (auto& [client, e] : conns_)
      if (d.matches(client, e.user)) ++n;
    return n;
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return conns_.size();
  }

 private:
  struct entry {
    unsigned io_thread;
    std::string user;
  };
  std::mutex mu_;
  std::unordered_map<std::string, entry> conns_;
};

}  // namespace pushwire::server
