#include "server/hub/history_budget.hpp"

namespace pushwire::server {

history_budget::ticket history_budget::admit(std::size_t bytes) {
  if (bytes > total_) return nullptr;
  auto t = std::make_shared<ticket_state>();
  t->bytes = bytes;
  std::lock_guard lk(mu_);
  std::size_t used = bytes_.load(std::memory_order_relaxed);
  while (used + bytes > total_ && !order_.empty()) {   // the oldest overall goes first
    auto& front = order_.front();
    if (!front->gone.exchange(true, std::memory_order_acq_rel)) {
      used -= front->bytes;
      --live_;
    }
    order_.pop_front();
  }
  used += bytes;
  bytes_.store(used, std::memory_order_relaxed);
  order_.push_back(t);
  ++live_;
  // Released tickets stay in the queue until they reach its front; compact if they pile up.
  if (order_.size() > 2 * live_ + 64) {
    std::deque<ticket> keep;
    for (auto& o : order_)
      if (!o->gone.load(std::memory_order_relaxed)) keep.push_back(std::move(o));
    order_.swap(keep);
  }
  return t;
}

void history_budget::release(const ticket& t) {
  if (!t) return;
  std::lock_guard lk(mu_);
  if (t->gone.exchange(true, std::memory_order_acq_rel)) return;   // already evicted
  bytes_.fetch_sub(t->bytes, std::memory_order_relaxed);
  --live_;
  while (!order_.empty() && order_.front()->gone.load(std::memory_order_relaxed)) order_.pop_front();
}

}  // namespace pushwire::server
