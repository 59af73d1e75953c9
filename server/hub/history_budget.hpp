// The bound on all history together (--history-total-bytes), exact and fair: the publications
// kept by every channel of a store take tickets from one budget in the order they were kept, and
// when a new one does not fit, the oldest kept publication overall gives up its ticket — whichever
// channel holds it. A publication larger than the whole budget gets no ticket (it is delivered
// live, not kept).
//
// Giving up a ticket is only a mark: the channel holding an evicted entry drops it (always a
// prefix of its kept list, since each channel keeps in ticket order) the next time it trims —
// every resume, read, append and sweep trims first, so an evicted entry is never served. The
// byte count is the sum of live tickets, so it never exceeds the bound.
//
// Lock order: a channel's lock, then the budget's.
#pragma once
#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

namespace pushwire::server {

class history_budget {
 public:
  struct ticket_state {
    std::size_t bytes = 0;
    std::atomic<bool> gone{false};   // evicted by the budget or released by its holder
  };
  using ticket = std::shared_ptr<ticket_state>;

  explicit history_budget(std::size_t total) : total_(total) {}

  // A ticket for `bytes`, evicting the oldest live tickets until it fits; null when `bytes` alone
  // exceeds the bound.
  ticket admit(std::size_t bytes);
  // The holder dropped its entry (count or age trim, new epoch): its bytes come back.
  void release(const ticket& t);
  // Whether the entry holding `t` must go (evicted, or never admitted).
  static bool gone(const ticket& t) { return !t || t->gone.load(std::memory_order_acquire); }
  std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  std::size_t total() const { return total_; }

 private:
  std::size_t total_;
  std::mutex mu_;
  std::deque<ticket> order_;   // in admission order; may hold released tickets (skipped, compacted)
  std::size_t live_ = 0;
  std::atomic<std::size_t> bytes_{0};
};

}  // namespace pushwire::server
