#include "server/redis/redis_scripts.hpp"

#include <openssl/sha.h>

namespace pushwire::server {

namespace {

// KEYS: meta, history, idempotency key (meta again when there is none)
// ARGV: data, epoch if the channel has none, history size, history ttl ms, channel idle ms,
//       Pub/Sub channel, idempotency ttl ms (0 = no key), origin ("<node> <publish ns>")
// -> {"ok", epoch, offset} | {"duplicate", epoch, offset} | {"conflict"}
constexpr std::string_view publish_lua = R"LUA(
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local fp = nil
if ARGV[7] ~= '0' then
  fp = redis.sha1hex(ARGV[1])
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local f, e, o = string.match(seen, '^(%x+) (%S+) (%d+)$')
    if f ~= fp then return {'conflict'} end
    return {'duplicate', e, o}
  end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-1', 't', now_ms, 'd', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if fp then redis.call('SET', KEYS[3], fp .. ' ' .. epoch .. ' ' .. offset, 'PX', ARGV[7]) end
redis.call('PUBLISH', ARGV[6], 'p ' .. epoch .. ' ' .. offset .. ' ' .. ARGV[8] .. '\n' .. ARGV[1])
return {'ok', epoch, tostring(offset)}
)LUA";

// KEYS: meta, history
// ARGV: epoch if the channel has none, since epoch ('' = none), since offset, history ttl ms,
//       channel idle ms, 'resume' | 'read', limit (read; 0 = all)
// -> {epoch, top, recovered ('-1' not asked, '0', '1'), id1, data1, id2, data2, ...}
// A resume creates the channel (its epoch) like the memory store does, so a subscriber of an
// empty channel holds a position that later publishes continue; a read creates nothing.
constexpr std::string_view read_lua = R"LUA(
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local resume = ARGV[6] == 'resume'
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if not resume then return {'', '0', '-1'} end
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  redis.call('DEL', KEYS[2])
end
if resume then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local fresh_after = now_ms - tonumber(ARGV[4])
local out = {epoch, tostring(top), '-1'}
local function add(entries)
  for _, e in ipairs(entries) do
    if tonumber(e[2][2]) > fresh_after then
      out[#out + 1] = e[1]
      out[#out + 1] = e[2][4]
    end
  end
end
local since = tonumber(ARGV[3])
if resume then
  if ARGV[2] == '' then return out end
  if ARGV[2] ~= epoch or since > top then out[3] = '0' return out end
  if since == top then out[3] = '1' return out end
  local first = (since + 1) .. '-1'
  local entries = redis.call('XRANGE', KEYS[2], first, '+')
  if #entries == 0 or entries[1][1] ~= first or tonumber(entries[1][2][2]) <= fresh_after then
    out[3] = '0'
    return out
  end
  out[3] = '1'
  add(entries)
  return out
end
local limit = tonumber(ARGV[7])
if ARGV[2] ~= '' then
  if ARGV[2] ~= epoch then return out end
  local entries
  if limit > 0 then
    entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+')
  end
  add(entries)
  return out
end
local newest
if limit > 0 then
  newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
else
  newest = redis.call('XREVRANGE', KEYS[2], '+', '-')
end
local oldest_first = {}
for i = #newest, 1, -1 do oldest_first[#oldest_first + 1] = newest[i] end
add(oldest_first)
return out
)LUA";

// Shared by the presence scripts: drops members whose lease ended, returning {client, user, ...}.
constexpr std::string_view expire_lua = R"LUA(
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local gone = {}
for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)) do
  local u = redis.call('HGET', KEYS[1], c)
  redis.call('HDEL', KEYS[1], c)
  redis.call('ZREM', KEYS[2], c)
  if u then
    gone[#gone + 1] = c
    gone[#gone + 1] = u
  end
end
)LUA";

// KEYS: members, leases. ARGV: client, user, lease ms, max members, key ttl ms
// -> {'joined' | 'renewed' | 'full', gone}
constexpr std::string_view join_lua = R"LUA(
local known = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if not known and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'full', gone} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if known then return {'renewed', gone} end
return {'joined', gone}
)LUA";

// KEYS: members, leases. ARGV: client -> user | false
constexpr std::string_view leave_lua = R"LUA(
local u = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return u
)LUA";

// KEYS: members, leases -> {gone, {client, user, ...}}
constexpr std::string_view members_lua = R"LUA(
return {gone, redis.call('HGETALL', KEYS[1])}
)LUA";

std::string sha1_hex(std::string_view s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

lua_script make(std::string src) {
  auto sha = sha1_hex(src);
  return lua_script{std::move(src), std::move(sha)};
}
// The presence scripts start by expiring lapsed leases.
std::string with_expiry(std::string_view body) {
  std::string s(expire_lua);
  s += body;
  return s;
}

}  // namespace

std::string pack_member(const member& m) {
  if (m.info.empty()) return m.user;
  std::string v = m.user;
  v += '\0';
  v += m.info;
  return v;
}

member unpack_member(std::string client, std::string_view value) {
  auto nul = value.find('\0');
  member m;
  m.client = std::move(client);
  m.user = std::string(value.substr(0, nul));
  if (nul != std::string_view::npos) m.info = std::string(value.substr(nul + 1));
  return m;
}

const redis_scripts& redis_scripts::get() {
  static const redis_scripts all{make(std::string(publish_lua)), make(std::string(read_lua)),
                                 make(with_expiry(join_lua)), make(std::string(leave_lua)),
                                 make(with_expiry(members_lua))};
  return all;
}

std::string_view redis_keys::channel_of(std::string_view key, std::string_view what) {
  constexpr std::string_view head = "pushwire:{";
  if (key.size() < head.size() + what.size() + 2 || !key.starts_with(head)) return {};
  auto tail_len = what.size() + 2;   // "}:" + what
  auto tail = key.substr(key.size() - tail_len);
  if (tail.substr(0, 2) != "}:" || tail.substr(2) != what) return {};
  return key.substr(head.size(), key.size() - head.size() - tail_len);
}

}  // namespace pushwire::server
