// One I/O thread's own subscribers, by channel. Touched only by its thread, so no lock: the hub
// posts one item per thread and the thread fans it out to its local subscribers here.
#pragma once
#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/wire/outgoing.hpp"

namespace pushwire::server {

class subscriber {
 public:
  virtual ~subscriber() = default;
  // Must not remove subscribers synchronously (a close is deferred to a later handler).
  virtual void deliver(const outgoing& o) = 0;
};

class local_subscribers {
 public:
  void add(std::string_view channel, subscriber* s) { subs_[std::string(channel)].push_back(s); }
  void remove(std::string_view channel, subscriber* s) {
    auto it = subs_.find(std::string(channel));
    if (it == subs_.end()) return;
    auto& v = it->second;
    if (auto p = std::find(v.begin(), v.end(), s); p != v.end()) {
      *p = v.back();
      v.pop_back();
    }
    if (v.empty()) subs_.erase(it);
  }
  void dispatch(const std::string& channel, const outgoing& o) {
    auto it = subs_.find(channel);
    if (it == subs_.end()) return;
    for (auto* s : it->second) s->deliver(o);
  }

 private:
  std::unordered_map<std::string, std::vector<subscriber*>> subs_;
};

}  // namespace pushwire::server
