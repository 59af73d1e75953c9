#include "server/redis/redis_presence.hpp"

#include "server/redis/redis_broker.hpp"
#include "server/redis/redis_scripts.hpp"

namespace pushwire::server {

using protocol::code;

redis_presence::redis_presence(std::shared_ptr<redis_engine> engine, redis_broker& broker, const clock& clk,
                               redis_presence_config cfg)
    : engine_(std::move(engine)), broker_(broker), clock_(clk), cfg_(cfg) {}

void redis_presence::set_listener(std::function<void(const channel_event_ptr&)> listener) {
  std::lock_guard lk(mu_);
  listener_ = std::move(listener);
}

void redis_presence::emit(channel_event::kind k, const std::string& channel, member m) {
  std::function<void(const channel_event_ptr&)> l;
  {
    std::lock_guard lk(mu_);
    l = listener_;
  }
  if (l) l(make_channel_event(k, channel, std::move(m)));
}

void redis_presence::announce_gone(const std::string& channel, const redis_reply& gone) {
  for (std::size_t i = 0; i + 1 < gone.elements.size(); i += 2)
    emit(channel_event::kind::leave, channel, unpack_member(gone.elements[i].str, gone.elements[i + 1].str));
}

void redis_presence::run_join(const std::string& ch, const member& m, std::uint64_t lease_ms,
                              std::function<void(code)> done) {
  // The keys outlive the longest lease a little, so a channel nobody renews vanishes on its own.
  auto key_ttl = std::max(lease_ms, cfg_.lease_ms) * 2;
  engine_->script(redis_scripts::get().join, ch, {redis_keys::members(ch), redis_keys::leases(ch)},
                  {m.client, pack_member(m), std::to_string(lease_ms), std::to_string(cfg_.max_members),
                   std::to_string(key_ttl)},
                  [this, ch, m, done = std::move(done)](redis_reply r) {
                    if (r.is_error() || r.elements.size() != 2) {
                      if (done) done(code::storage_unavailable);
                      return;
                    }
                    announce_gone(ch, r.elements[1]);
                    const auto& what = r.elements[0].str;
                    if (what == "joined") emit(channel_event::kind::join, ch, m);
                    if (done) done(what == "full" ? code::presence_full : code::ok);
                  });
}

void redis_presence::join(std::string_view channel, const member& m, std::uint64_t lease_until_ms,
                          std::function<void(code)> done) {
  auto now = clock_.now_ms();
  // Lease 0: the connection holds the member; this node renews it while it lives.
  std::uint64_t lease_ms = lease_until_ms == 0 ? cfg_.lease_ms : (lease_until_ms > now ? lease_until_ms - now : 1);
  if (lease_until_ms == 0) {
    std::lock_guard lk(mu_);
    held_[std::string(channel)][m.client] = m;
  }
  engine_->post([this, ch = std::string(channel), m, lease_ms, held = lease_until_ms == 0,
                 done = std::move(done)]() mutable {
    run_join(ch, m, lease_ms, [this, ch, m, held, done = std::move(done)](code c) {
      if (c != code::ok && held) {
        std::lock_guard lk(mu_);
        if (auto it = held_.find(ch); it != held_.end()) {
          it->second.erase(m.client);
          if (it->second.empty()) held_.erase(it);
        }
      }
      done(c);
    });
  });
}

void redis_presence::leave(std::string_view channel, std::string_view client) {
  {
    std::lock_guard lk(mu_);
    if (auto it = held_.find(channel); it != held_.end()) {
      it->second.erase(std::string(client));
      if (it->second.empty()) held_.erase(it);
    }
  }
  engine_->post([this, ch = std::string(channel), c = std::string(client)] {
    engine_->script(redis_scripts::get().leave, ch, {redis_keys::members(ch), redis_keys::leases(ch)}, {c},
                    [this, ch, c](redis_reply r) {
                      if (r.type == redis_reply::kind::string) emit(channel_event::kind::leave, ch, unpack_member(c, r.str));
                    });
  });
}

void redis_presence::members(std::string_view channel, std::function<void(std::vector<member>)> done) {
  engine_->post([this, ch = std::string(channel), done = std::move(done)]() mutable {
    engine_->script(redis_scripts::get().members, ch, {redis_keys::members(ch), redis_keys::leases(ch)}, {},
                    [this, ch, done = std::move(done)](redis_reply r) {
                      std::vector<member> out;
                      if (!r.is_error() && r.elements.size() == 2) {
                        announce_gone(ch, r.elements[0]);
                        auto& all = r.elements[1].elements;
                        for (std::size_t i = 0; i + 1 < all.size(); i += 2)
                          out.push_back(unpack_member(all[i].str, all[i + 1].str));
                      }
                      done(std::move(out));
                    });
  });
}

bool redis_presence::occupied(std::string_view channel) {
  std::lock_guard lk(mu_);
  return held_.contains(channel);
}

void redis_presence::sweep(std::uint64_t now_ms) {
  if (now_ms >= next_renew_ms_) {
    next_renew_ms_ = now_ms + std::max<std::uint64_t>(1, cfg_.lease_ms / 3);
    std::vector<std::pair<std::string, member>> renew;
    {
      std::lock_guard lk(mu_);
      for (auto& [ch, clients] : held_)
        for (auto& [client, m] : clients) renew.emplace_back(ch, m);
    }
    engine_->post([this, renew = std::move(renew)] {
      for (auto& [ch, m] : renew) {
        {
          std::lock_guard lk(mu_);   // left meanwhile: its leave is already on its way
          auto it = held_.find(ch);
          if (it == held_.end() || !it->second.contains(m.client)) continue;
        }
        run_join(ch, m, cfg_.lease_ms, nullptr);
      }
    });
  }
  if (now_ms >= next_expiry_ms_) {
    // Members of dead nodes in the channels this node listens to lapse here (with a leave event).
    next_expiry_ms_ = now_ms + std::max<std::uint64_t>(1, cfg_.lease_ms / 4);
    engine_->post([this] {
      for (auto& ch : broker_.listened())
        engine_->script(redis_scripts::get().members, ch, {redis_keys::members(ch), redis_keys::leases(ch)}, {},
                        [this, ch](redis_reply r) {
                          if (!r.is_error() && r.elements.size() == 2) announce_gone(ch, r.elements[0]);
                        });
    });
  }
}

}  // namespace pushwire::server
