// Reconnect delays: a tiny seeded PRNG and the "full jitter" rule (AWS Architecture Blog, "Exponential
// Backoff And Jitter"): delay = uniform(0, min(max, min_delay * 2^attempt)). Full jitter spreads a
// crowd of clients that lost the same server over the whole window instead of in synchronised waves.
// No clock and no global randomness: the seed is the only source, so a test replays every delay.
#pragma once
#include <cstdint>

namespace pushwire::protocol {

// splitmix64 (Steele, Lea, Flood 2014): one 64-bit word of state, every seed is a good seed, and the
// output is far better than jitter needs. Not for anything secret.
class prng {
 public:
  explicit constexpr prng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform over [0, bound], both ends included. The modulo bias is below 2^-38 for the bounds a
  // backoff uses (they fit in 26 bits), far under anything observable.
  std::uint64_t uniform(std::uint64_t bound);

 private:
  std::uint64_t state_;
};

// min(max_ms, min_ms * 2^attempt), without overflow for any attempt.
std::uint64_t backoff_ceiling(std::uint64_t min_ms, std::uint64_t max_ms, std::uint32_t attempt);

// One draw from [0, backoff_ceiling(min_ms, max_ms, attempt)].
std::uint64_t full_jitter_delay(std::uint64_t min_ms, std::uint64_t max_ms, std::uint32_t attempt, prng& rng);

}  // namespace pushwire::protocol
