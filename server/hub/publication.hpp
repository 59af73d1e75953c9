// The hub's currency (DECISIONS §20): a typed publication, never wire text. Stores, brokers and
// fan-out hand these around by shared pointer; nothing copies the payload after it is made.
//
// Encodings. Each wire format (Pushwire frame, SSE event, Pusher message) is encoded at most once per
// node per publication, by the first connection that needs it, on that connection's I/O thread —
// outside every channel lock, and never for a format no subscriber uses. The publication keeps
// the result in `encodings` so every other subscriber (and every resume replay, which hands out
// the same history entries) shares the buffer. The hub does not know any format: server/wire/
// owns the encoders and the slot numbers.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <string>
#include <string_view>

#include "protocol/position.hpp"

namespace pushwire::server {

// Lazily filled, immutable once filled, safe to fill from several threads at once. Reading a filled
// slot is one acquire load (this is on every delivery); the first reader of a slot encodes it, and
// a reader on another thread that comes in meanwhile waits the few microseconds that takes.
class encoding_cache {
 public:
  static constexpr std::size_t slots = 4;
  template <class Encode>
  const std::string& get(std::size_t slot, Encode&& encode) const {
    auto& st = state_[slot];
    if (st.load(std::memory_order_acquire) == ready) return text_[slot];
    std::uint8_t expected = empty;
    if (st.compare_exchange_strong(expected, filling, std::memory_order_acquire)) {
      text_[slot] = encode();
      st.store(ready, std::memory_order_release);
    } else {
      while (st.load(std::memory_order_acquire) != ready) std::this_thread::yield();
    }
    return text_[slot];
  }

 private:
  enum : std::uint8_t { empty, filling, ready };
  mutable std::array<std::atomic<std::uint8_t>, slots> state_{};
  mutable std::array<std::string, slots> text_;
};

struct publication {
  std::string channel;
  protocol::position pos;
  std::string data;                 // the payload: raw JSON text, validated on the way in
  std::uint64_t published_ns = 0;   // node clock at publish (publish->write histogram); 0 = unknown
  encoding_cache encodings;

  // What history counts against its byte bound: the publication and every encoding it may hold
  // (each is the payload plus a bounded envelope), whether or not they were made yet.
  std::size_t accounted_bytes() const {
    constexpr std::size_t envelope = 96;   // type, keys, offset digits, SSE prefix, newlines
    std::size_t one = data.size() + channel.size() + pos.epoch.size() + envelope;
    return sizeof(publication) + data.size() + channel.size() + pos.epoch.size() + 3 * one;
  }
};
using publication_ptr = std::shared_ptr<const publication>;

inline publication_ptr make_publication(std::string_view channel, protocol::position pos, std::string data,
                                        std::uint64_t published_ns) {
  auto p = std::make_shared<publication>();
  p->channel = std::string(channel);
  p->pos = std::move(pos);
  p->data = std::move(data);
  p->published_ns = published_ns;
  return p;
}

}  // namespace pushwire::server
