#include "server/node/ip_slots.hpp"

namespace pushwire::server {

bool ip_slots::acquire(const std::string& ip, std::shared_ptr<void>& slot) {
  auto per_ip = limit();
  if (per_ip == 0) return true;
  {
    std::lock_guard lk(mu_);
    auto& n = conns_[ip];
    if (n >= per_ip) return false;
    ++n;
  }
  // The slot is an owner-less handle whose deleter gives the count back.
  slot = std::shared_ptr<void>(static_cast<void*>(this), [this, ip](void*) { release(ip); });
  return true;
}

void ip_slots::release(const std::string& ip) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(ip);
  if (it != conns_.end() && --it->second == 0) conns_.erase(it);
}

}  // namespace pushwire::server
