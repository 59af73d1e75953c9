// An allocator for the one operation a connection keeps pending while idle (its read or wait).
// Asio recycles operation memory per thread and hands a new operation any cached block that is
// large enough, so a long-lived small operation can hold a block an earlier, larger one left behind
// (272 bytes for a 100-byte wait, per idle connection, measured with heaptrack). Bound to a handler
// with net::bind_allocator, this allocates the operation at its own size. (std::allocator<void>
// would not do: Asio reads it as "the default" and recycles.)
#pragma once
#include <cstddef>
#include <new>

namespace pushwire::server {

template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const exact_allocator<U>&) const noexcept { return true; }
};

}  // namespace pushwire::server
