// One I/O thread's own subscribers, by channel. Touched only by its thread, so no lock: the engine
// posts one task per thread and the thread fans out to its local subscribers here.
#pragma once
#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/message.hpp"

namespace pushwire::server {

class subscriber {
 public:
  virtual ~subscriber() = default;
  // Must not remove subscribers synchronously (a close is deferred to a later handler).
  virtual void deliver(const message_ptr& m) = 0;
};

class local_hub {
 public:
  void add(const std::string& channel, subscriber* s) { subs_[channel].push_back(s); }
  void remove(const std::string& channel, subscriber* s) {
    auto it = subs_.find(channel);
    if (it == subs_.end()) return;
    auto& v = it->second;
    if (auto p = std::find(v.begin(), v.end(), s); p != v.end()) {
      *p = v.back();
      v.pop_back();
    }
    if (v.empty()) subs_.erase(it);
  }
  void dispatch(const message_ptr& m) {
    auto it = subs_.find(m->channel);
    if (it == subs_.end()) return;
    for (auto* s : it->second) s->deliver(m);
  }

 private:
  std::unordered_map<std::string, std::vector<subscriber*>> subs_;
};

}  // namespace pushwire::server
