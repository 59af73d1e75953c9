#include "server/redis/redis_history.hpp"


#include "protocol/channel_name.hpp"
#include "protocol/json_scan.hpp"
#include "server/redis/redis_scripts.hpp"

namespace pushwire::server {

using protocol::code;
using protocol::position;

namespace {


std::string unavailable(const redis_reply& r) {
  std::string why = "redis unavailable: ";
  why += r.str;
  return why;
}

}  // namespace

redis_history::redis_history(std::shared_ptr<redis_engine> engine, redis_history_config cfg)
    : engine_(std::move(engine)), cfg_(std::move(cfg)), epoch_counter_(cfg_.epoch_seed) {
  if (!cfg_.policy.namespaces.contains("")) cfg_.policy.namespaces.emplace("", history_policy{});
}

const history_policy& redis_history::policy_of(std::string_view channel) const {
  auto it = cfg_.policy.namespaces.find(protocol::channel_namespace(channel));
  return it != cfg_.policy.namespaces.end() ? it->second : cfg_.policy.namespaces.find("")->second;
}

std::uint64_t redis_history::idle_ms(const history_policy& p) const {
  // The channel's epoch outlives its history: a resume after the history expired is answered
  // recovered:false in the same epoch rather than with a new one.
  return std::max<std::uint64_t>(cfg_.policy.channel_idle_ms ? cfg_.policy.channel_idle_ms : p.ttl_ms, p.ttl_ms) + 1000;
}

std::string redis_history::new_epoch() { return protocol::make_epoch(epoch_counter_.fetch_add(1)); }

void redis_history::append(std::string_view channel, std::string data, std::string_view key,
                           std::uint64_t published_ns, std::uint64_t, std::function<void(append_result)> done) {
  const auto& p = policy_of(channel);
  std::string origin = cfg_.node_id;
  origin += ' ';
  origin += std::to_string(published_ns);
  std::vector<std::string> keys{redis_keys::meta(channel), redis_keys::history(channel),
                                key.empty() ? redis_keys::meta(channel) : redis_keys::idempotency(channel, key)};
  std::vector<std::string> args{std::string(), new_epoch(), std::to_string(p.size), std::to_string(p.ttl_ms),
                                std::to_string(idle_ms(p)), redis_keys::pubsub(channel),
                                key.empty() ? "0" : std::to_string(std::max<std::uint64_t>(1, cfg_.idempotency_ttl_ms)),
                                std::move(origin)};
  engine_->post([this, ch = std::string(channel), keys = std::move(keys), args = std::move(args),
                 data = std::move(data), published_ns, done = std::move(done)]() mutable {
    auto payload = data;   // the script's copy; `data` becomes the publication
    args[0] = std::move(payload);
    engine_->script(redis_scripts::get().publish, ch, std::move(keys), std::move(args),
                    [ch, data = std::move(data), published_ns, done = std::move(done)](redis_reply r) mutable {
                      append_result out;
                      auto& e = r.elements;
                      std::optional<std::uint64_t> off = e.size() == 3 ? protocol::parse_uint(e[2].str) : std::nullopt;
                      if (r.is_error() && r.outcome_unknown) {
                        out.error = code::outcome_unknown;
                        out.reason = "redis did not confirm the publish (";
                        out.reason += r.str;
                        out.reason += "): it may have been published; retry with the same idempotency key";
                      } else if (r.is_error()) {
                        out.error = code::storage_unavailable;
                        out.reason = unavailable(r);
                      } else if (e.size() == 1 && e[0].str == "conflict") {
                        out.error = code::idempotency_conflict;
                        out.reason = "idempotency key already used with other data on this channel";
                      } else if (!off) {
                        out.error = code::internal_error;
                        out.reason = "unexpected reply from redis";
                      } else {
                        out.pos = position{e[1].str, *off};
                        out.duplicate = e[0].str == "duplicate";
                        if (!out.duplicate) out.pub = make_publication(ch, out.pos, std::move(data), published_ns);
                      }
                      done(std::move(out));
                    });
  });
}

std::vector<std::string> redis_history::read_args(std::string_view channel, const std::optional<position>& since,
                                                  bool resume, std::size_t limit) {
  const auto& p = policy_of(channel);
  return {new_epoch(), since ? since->epoch : std::string(), since ? std::to_string(since->offset) : "0",
          std::to_string(p.ttl_ms), std::to_string(idle_ms(p)), resume ? "resume" : "read", std::to_string(limit)};
}

bool redis_history::parse_read(std::string_view channel, const redis_reply& r, position& top,
                               std::optional<bool>& recovered, std::vector<publication_ptr>& pubs) {
  auto& e = r.elements;
  if (r.type != redis_reply::kind::array || e.size() < 3 || e.size() % 2 == 0) return false;
  auto t = protocol::parse_uint(e[1].str);
  if (!t) return false;
  top = position{e[0].str, *t};
  if (e[2].str == "1") recovered = true;
  else if (e[2].str == "0") recovered = false;
  for (std::size_t i = 3; i + 1 < e.size(); i += 2) {
    auto id = std::string_view(e[i].str);
    auto off = protocol::parse_uint(id.substr(0, id.find('-')));
    if (!off) return false;
    pubs.push_back(make_publication(channel, position{top.epoch, *off}, e[i + 1].str, 0));
  }
  return true;
}

void redis_history::resume(std::string_view channel, const std::optional<position>& since, std::uint64_t,
                           std::function<void(resume_result)> done) {
  auto args = read_args(channel, since, true, 0);
  engine_->post([this, ch = std::string(channel), args = std::move(args), asked = since.has_value(),
                 done = std::move(done)]() mutable {
    engine_->script(redis_scripts::get().read, ch, {redis_keys::meta(ch), redis_keys::history(ch)}, std::move(args),
                    [ch, asked, done = std::move(done)](redis_reply r) {
                      resume_result out;
                      if (r.is_error()) {
                        out.error = code::storage_unavailable;
                        out.reason = unavailable(r);
                        return done(std::move(out));
                      }
                      if (!parse_read(ch, r, out.top, out.recovered, out.missed)) {
                        out.error = code::internal_error;
                        out.reason = "unexpected reply from redis";
                        return done(std::move(out));
                      }
                      if (!asked) out.recovered.reset();
                      if (out.recovered == false) out.missed.clear();
                      done(std::move(out));
                    });
  });
}

void redis_history::read(std::string_view channel, const std::optional<position>& since, std::size_t limit,
                         std::uint64_t, std::function<void(history_result)> done) {
  auto args = read_args(channel, since, false, limit);
  engine_->post([this, ch = std::string(channel), args = std::move(args), done = std::move(done)]() mutable {
    engine_->script(redis_scripts::get().read, ch, {redis_keys::meta(ch), redis_keys::history(ch)}, std::move(args),
                    [ch, done = std::move(done)](redis_reply r) {
                      history_result out;
                      std::optional<bool> ignored;
                      if (r.is_error()) {
                        out.error = code::storage_unavailable;
                        out.reason = unavailable(r);
                      } else if (!parse_read(ch, r, out.top, ignored, out.publications)) {
                        out.error = code::internal_error;
                        out.reason = "unexpected reply from redis";
                      }
                      done(std::move(out));
                    });
  });
}

// The cluster's channels are in Redis; this node does not list them synchronously (that would
// wait on Redis on an I/O thread). /api/channels asks Redis through redis_cluster instead.
std::vector<channel_info> redis_history::channels() { return {}; }

history_stats redis_history::stats() { return {}; }

// Redis ages and trims history itself (Stream MAXLEN, key expiry, the scripts' age filter). What is
// left: the epochs of channels this node listens to stay alive while they are quiet.
void redis_history::sweep(std::uint64_t now_ms, const std::function<bool(std::string_view)>&) {
  if (!listened_ || now_ms < next_touch_ms_) return;
  std::uint64_t shortest = UINT64_MAX;
  for (auto& [ns, p] : cfg_.policy.namespaces) shortest = std::min(shortest, idle_ms(p));
  next_touch_ms_ = now_ms + std::max<std::uint64_t>(1, shortest / 3);
  engine_->post([this] {
    for (auto& ch : listened_())
      engine_->command(ch, {"PEXPIRE", redis_keys::meta(ch), std::to_string(idle_ms(policy_of(ch)))}, [](redis_reply) {});
  });
}

void redis_history::drain() { engine_->shutdown(); }

}  // namespace pushwire::server
