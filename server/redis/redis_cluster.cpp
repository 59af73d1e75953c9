#include "server/redis/redis_cluster.hpp"

#include <boost/json.hpp>
#include <unordered_map>

#include "protocol/json_scan.hpp"
#include "server/redis/redis_scripts.hpp"

namespace pushwire::server {

namespace json = boost::json;

namespace {

// One SCAN walk over a shard: every key matching `pattern`, at most `limit`.
struct scan_walk : std::enable_shared_from_this<scan_walk> {
  std::shared_ptr<redis_engine> engine;
  std::size_t shard = 0;
  std::string pattern;
  std::size_t limit = 0;
  std::vector<std::string> keys;
  bool complete = true;
  std::function<void(std::vector<std::string>, bool complete)> done;

  void step(const std::string& cursor) {
    engine->command_on(shard, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"},
                       [self = shared_from_this()](redis_reply r) {
                         if (r.is_error() || r.elements.size() != 2) {
                           self->complete = false;
                           return self->done(std::move(self->keys), false);
                         }
                         for (auto& k : r.elements[1].elements) {
                           if (self->keys.size() >= self->limit) {
                             return self->done(std::move(self->keys), false);
                           }
                           self->keys.push_back(k.str);
                         }
                         if (r.elements[0].str == "0") return self->done(std::move(self->keys), self->complete);
                         self->step(r.elements[0].str);
                       });
  }
};

void scan(std::shared_ptr<redis_engine> engine, std::size_t shard, std::string pattern, std::size_t limit,
          std::function<void(std::vector<std::string>, bool)> done) {
  auto w = std::make_shared<scan_walk>();
  w->engine = std::move(engine);
  w->shard = shard;
  w->pattern = std::move(pattern);
  w->limit = limit;
  w->done = std::move(done);
  w->step("0");
}

using subscriber_totals = std::unordered_map<std::string, std::size_t>;

// Adds up the counts of every live node's pushwire:subs:<id> hash but `skip` (a key, or "").
void sum_reports(std::shared_ptr<redis_engine> engine, std::string skip, std::function<void(subscriber_totals)> done) {
  scan(engine, 0, "pushwire:subs:*", 10000,
       [engine, skip = std::move(skip), done = std::move(done)](std::vector<std::string> keys, bool) {
         auto pending = std::make_shared<std::size_t>(keys.size() + 1);
         auto totals = std::make_shared<subscriber_totals>();
         auto finish = [pending, totals, done] {
           if (--*pending == 0) done(std::move(*totals));
         };
         for (auto& k : keys) {
           if (k == skip) { finish(); continue; }
           engine->command_on(0, {"HGETALL", k}, [totals, finish](redis_reply r) {
             for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
               (*totals)[r.elements[i].str] += protocol::parse_uint(r.elements[i + 1].str).value_or(0);
             finish();
           });
         }
         finish();
       });
}


}  // namespace

redis_cluster::redis_cluster(std::shared_ptr<redis_engine> engine, node_info self, std::uint64_t heartbeat_ms)
    : engine_(std::move(engine)), self_(std::move(self)), heartbeat_ms_(std::max<std::uint64_t>(10, heartbeat_ms)) {}

redis_cluster::~redis_cluster() {
  if (timer_) {
    auto t = timer_;
    engine_->post([t] { t->cancel(); });
  }
}

void redis_cluster::start() {
  engine_->post([this] {
    timer_ = std::make_shared<boost::asio::steady_timer>(engine_->io());
    beat();
  });
}

void redis_cluster::beat() {
  json::object o;
  o["id"] = self_.id;
  o["started_ms"] = self_.started_ms;
  std::string key(redis_keys::node_prefix);
  key += self_.id;
  engine_->command_on(0, {"SET", std::move(key), json::serialize(o), "PX", std::to_string(3 * heartbeat_ms_)},
                      [](redis_reply) {});
  timer_->expires_after(std::chrono::milliseconds(heartbeat_ms_));
  timer_->async_wait([this, t = timer_](boost::system::error_code ec) {
    if (!ec) beat();
  });
}

void redis_cluster::nodes(std::function<void(std::vector<node_info>)> done) {
  engine_->post([this, done = std::move(done)]() mutable {
    std::string pattern(redis_keys::node_prefix);
    pattern += '*';
    scan(engine_, 0, std::move(pattern), 10000, [this, done = std::move(done)](std::vector<std::string> keys, bool) {
      if (keys.empty()) return done({});
      std::vector<std::string> cmd{"MGET"};
      for (auto& k : keys) cmd.push_back(std::move(k));
      engine_->command_on(0, std::move(cmd), [done = std::move(done)](redis_reply r) {
        std::vector<node_info> out;
        for (auto& v : r.elements) {
          boost::system::error_code ec;
          auto j = json::parse(v.str, ec);
          if (ec || !j.is_object()) continue;
          auto& o = j.as_object();
          node_info n;
          if (auto* id = o.if_contains("id"); id && id->is_string()) n.id = std::string(id->as_string());
          if (auto* s = o.if_contains("started_ms"); s && s->is_number()) n.started_ms = s->to_number<std::uint64_t>();
          if (!n.id.empty()) out.push_back(std::move(n));
        }
        std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
        done(std::move(out));
      });
    });
  });
}

void redis_cluster::report_subscribers(std::vector<channel_info> local) {
  engine_->post([this, local = std::move(local)] {
    std::string key = "pushwire:subs:";
    key += self_.id;
    std::unordered_map<std::string, std::size_t> now;
    std::vector<std::string> set{"HSET", key};
    for (auto& c : local) {
      now[c.channel] = c.subscribers;
      if (auto it = reported_.find(c.channel); it == reported_.end() || it->second != c.subscribers) {
        set.push_back(c.channel);
        set.push_back(std::to_string(c.subscribers));
      }
    }
    std::vector<std::string> del{"HDEL", key};
    for (auto& [ch, n] : reported_)
      if (!now.contains(ch)) del.push_back(ch);
    if (set.size() > 2) engine_->command_on(0, set, [](redis_reply) {});
    if (del.size() > 2) engine_->command_on(0, del, [](redis_reply) {});
    engine_->command_on(0, {"PEXPIRE", key, std::to_string(3 * heartbeat_ms_)}, [](redis_reply) {});
    reported_ = std::move(now);
  });
}

void redis_cluster::remote_subscribers(std::function<void(std::unordered_map<std::string, std::size_t>)> done) {
  engine_->post([this, done = std::move(done)]() mutable {
    std::string own = "pushwire:subs:";
    own += self_.id;
    sum_reports(engine_, std::move(own), std::move(done));
  });
}

void redis_cluster::channels(std::size_t limit, std::function<void(std::vector<channel_info>, bool)> done) {
  struct gather : std::enable_shared_from_this<gather> {
    std::shared_ptr<redis_engine> engine;
    std::vector<channel_info> out;
    std::size_t left = 0;
    bool complete = true;
    std::function<void(std::vector<channel_info>, bool)> done;
    // Adds up every live node's reported counts (pushwire:subs:<id>), then answers.
    void sum_subscribers() {
      sum_reports(engine, "", [self = shared_from_this()](subscriber_totals totals) {
        for (auto& c : self->out)
          if (auto it = totals.find(c.channel); it != totals.end()) c.subscribers = it->second;
        self->done(std::move(self->out), self->complete);
      });
    }
  };
  engine_->post([this, limit, done = std::move(done)]() mutable {
    auto g = std::make_shared<gather>();
    g->engine = engine_;
    g->left = engine_->shards();
    g->done = std::move(done);
    for (std::size_t s = 0; s < engine_->shards(); ++s) {
      scan(engine_, s, "pushwire:{*}:meta", limit, [this, g, s, limit](std::vector<std::string> keys, bool complete) {
        g->complete = g->complete && complete;
        // One pipelined HMGET per channel; the last reply of the shard finishes it.
        auto pending = std::make_shared<std::size_t>(keys.size());
        auto finish_shard = [g, limit] {
          if (--g->left) return;
          if (g->out.size() > limit) {
            g->out.resize(limit);
            g->complete = false;
          }
          std::sort(g->out.begin(), g->out.end(), [](auto& a, auto& b) { return a.channel < b.channel; });
          g->sum_subscribers();
        };
        if (keys.empty()) return finish_shard();
        for (auto& k : keys) {
          std::string ch(redis_keys::channel_of(k, "meta"));
          engine_->command_on(s, {"HMGET", k, "epoch", "top"}, [g, ch, pending, finish_shard](redis_reply r) {
            // (A channel only subscribed to, never published, has an epoch but is not listed.)
            if (!ch.empty() && r.elements.size() == 2 && r.elements[0].type == redis_reply::kind::string &&
                protocol::parse_uint(r.elements[1].str).value_or(0) > 0)
              g->out.push_back(channel_info{ch, protocol::position{r.elements[0].str, protocol::parse_uint(r.elements[1].str).value_or(0)}, 0});
            if (--*pending == 0) finish_shard();
          });
        }
      });
    }
  });
}

}  // namespace pushwire::server
