// The first-in, first-out queue the session machines hand their actions out of. Every connection
// holds one, and nearly always empty: a std::deque allocates its map and a first chunk when it is
// built (~360 bytes for a session action, per idle connection), so this is a vector read from a
// moving head whose storage is given back as soon as the last item is taken. The allocation
// happens per burst of actions (a command and its replies), never per delivery.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace pushwire::protocol {

template <class T>
class action_queue {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  std::size_t capacity() const { return items_.capacity(); }   // what it holds on the heap, in items
  void push_back(T t) { items_.push_back(std::move(t)); }
  // Precondition: !empty().
  T take() {
    T t = std::move(items_[head_++]);
    if (head_ == items_.size()) {
      std::vector<T>().swap(items_);
      head_ = 0;
    }
    return t;
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;   // items_[0, head_) were taken
};

}  // namespace pushwire::protocol
