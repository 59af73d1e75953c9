// When a worker's next flush pass may start: adaptive write coalescing (issue 19). Pure: times in,
// a verdict out, so the rule is unit-tested without sockets or a clock.
//
// The kernel's send path costs per call, so under load the lever is frames per write. A pass that
// took L to write its connections may be followed by the next one only `factor` x L after it
// started (never later than `cap` after): while a thread spends most of its time writing, the
// pause lets the publishes of that time pile up into fewer, larger writes and leaves the thread
// (and the cores) free to take them in; when passes are short, the pause shrinks towards zero, and
// after a quiet window a publish is written at once. factor 0 keeps the older fixed rule: passes
// at most every `cap`.
#pragma once
#include <algorithm>
#include <cstdint>

namespace pushwire::server {

struct write_pacing {
  std::uint64_t cap_ns = 0;    // --write-coalesce-us: the longest a queued frame waits for its pass
  std::uint64_t factor = 0;    // --write-coalesce-factor

  // The earliest start of the next pass (0 = none yet: at once).
  std::uint64_t next_start_ns() const {
    if (!started_) return 0;
    auto window = factor ? std::min(cap_ns, factor * last_len_ns_) : cap_ns;
    return last_start_ns_ + window;
  }
  void pass_started(std::uint64_t now_ns) {
    started_ = true;
    last_start_ns_ = now_ns;
  }
  void pass_ended(std::uint64_t now_ns) { last_len_ns_ = now_ns > last_start_ns_ ? now_ns - last_start_ns_ : 0; }

 private:
  bool started_ = false;
  std::uint64_t last_start_ns_ = 0;
  std::uint64_t last_len_ns_ = 0;   // how long the latest finished pass took
};

}  // namespace pushwire::server
