// The two reads every history store answers from its in-memory tail (memory_history, and
// disk_history, whose tail is also its read cache), in one place. `kept` is the channel's kept
// publications, oldest first (entries with a `pub`); `top` its newest visible position: entries
// past it (the disk store's not yet committed) are not shown.
#pragma once
#include <cstddef>
#include <optional>
#include <vector>

#include "protocol/position.hpp"
#include "server/hub/publication.hpp"

namespace pushwire::server {

// The empty-channel rule (docs/protocol.md, "Empty channels"). A channel that holds nothing has
// no entry in a store (a subscribe or a read never makes one); its position is offset 0 of the
// store's current *empty epoch*. The append that makes the entry gives the channel that same
// epoch, so {empty epoch, 0} simply continues at offset 1, and the ordinary resume rules below
// apply. A store changes its empty epoch whenever it forgets a channel that had publications: a
// channel's next incarnation never reuses an epoch, and a client holding an old empty position
// learns that something may have come and gone (recovered:false).
// The resume read: nullopt without `since`; else whether every publication after `since` is still
// kept (`recovered`), and those publications appended to `missed`.
template <class Kept>
std::optional<bool> missed_since(const Kept& kept, const protocol::position& top,
                                 const std::optional<protocol::position>& since, std::vector<publication_ptr>& missed) {
  if (!since) return std::nullopt;
  if (since->epoch != top.epoch || since->offset > top.offset) return false;   // another run, or the future
  if (since->offset == top.offset) return true;
  if (kept.empty() || kept.front().pub->pos.offset > since->offset + 1) return false;   // trimmed past it
  for (auto& e : kept)
    if (e.pub->pos.offset > since->offset && e.pub->pos.offset <= top.offset) missed.push_back(e.pub);
  return true;
}

// The history command / API: publications after `since` (the first `limit`), or without since the
// newest `limit`; limit 0 = all kept. Another epoch than `since`'s has nothing "after" it.
template <class Kept>
void history_window(const Kept& kept, const protocol::position& top, const std::optional<protocol::position>& since,
                    std::size_t limit, std::vector<publication_ptr>& out) {
  std::size_t n = 0;
  while (n < kept.size() && kept[n].pub->pos.offset <= top.offset) ++n;
  if (since) {
    if (since->epoch != top.epoch) return;
    for (std::size_t i = 0; i < n && !(limit && out.size() >= limit); ++i)
      if (kept[i].pub->pos.offset > since->offset) out.push_back(kept[i].pub);
    return;
  }
  for (std::size_t i = limit && n > limit ? n - limit : 0; i < n; ++i) out.push_back(kept[i].pub);
}

}  // namespace pushwire::server
