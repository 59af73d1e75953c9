// A first-in first-out queue that owns no memory while empty: the protocol sessions' action and note
// queues, one per connection. libstdc++'s std::deque allocates a 512-byte chunk and its map on
// construction, even when nothing is ever queued; at 10,000 idle connections that was ~2.7 MB
// (docs/performance.md). Here a burst fills a vector and, once drained, the vector is freed.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace pushwire::protocol {

template <class T>
class small_fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  void push_back(T t) { items_.push_back(std::move(t)); }
  T& front() { return items_[head_]; }
  // Precondition: !empty().
  T pop_front() {
    T t = std::move(items_[head_++]);
    if (head_ == items_.size()) {
      std::vector<T>().swap(items_);
      head_ = 0;
    }
    return t;
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace pushwire::protocol
