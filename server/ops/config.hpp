// Server configuration: defaults < JSON config file < environment (PUSHWIRE_<FLAG>) < flags.
// Every limit has its default and the one-line reason next to it (DECISIONS §11, §12); --help
// prints the same table.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/hub/disk/disk_history.hpp"
#include "server/ops/trusted_proxies.hpp"
#include "server/pusher/pusher_apps.hpp"

namespace pushwire::server {

struct namespace_config {
  std::size_t history_size = 1000;         // as the default namespace's (below)
  std::uint64_t history_ttl_ms = 300000;   // 5 min: a laptop lid or a train tunnel
  bool presence = false;
  bool client_publish = false;
  bool anonymous_presence = false;
  bool private_channels = false;
};

// The largest SSE opening padding accepted (config check): proxies that flush on size do so well
// below it, and it is sent on every SSE open.
inline constexpr std::size_t max_sse_padding_bytes = 65536;

struct config {
  std::string config_file;
  int port = 8080;
  std::string address = "127.0.0.1";       // not exposed unless asked (0.0.0.0)
  bool websocket = true, sse = true, polling = true;
  bool demo = false;
  std::string log_level = "info";
  // Keys: --api-key / --token-secret win over the key file's; neither set: the API key is random
  // for this run, printed once on stdout and never logged, and tokens are refused. Both re-read on SIGHUP.
  std::string api_key;
  std::string token_secret;                // HS256 secret for connection tokens
  std::string key_file;                    // server/ops/key_file.hpp; created with random keys when missing
  bool anonymous = true;
  std::string web_root;
  std::string client_root;
  std::string port_file;
  unsigned threads = 0;                    // 0 = one I/O thread per core
  std::vector<std::string> allowed_origins;  // CORS and WS/SSE Origin check; "*" = any
  // TLS on the one listening port (HTTPS and WSS) when both are set; re-read on SIGHUP.
  std::string tls_cert;                    // PEM: the certificate, then any intermediates
  std::string tls_key;                     // PEM: its private key
  // Reverse proxies whose X-Forwarded-For names the client (per-IP limits, logs); empty = the
  // header is ignored from everyone (server/ops/trusted_proxies.hpp has the rule).
  std::vector<cidr> trusted_proxies;
  std::string trusted_proxy_text;          // as given, for --help's defaults and the config dump
  // A second listener for /metrics and /api/* (-1 = off: they stay on the public port; 0 = any free
  // port). When set, the public listener answers them 404.
  int admin_port = -1;
  std::string admin_address = "127.0.0.1"; // operators' side only, unless asked

  std::size_t max_connections = 0;         // 0 = RLIMIT_NOFILE minus a reserve of 64 for files/logs
  std::size_t max_connections_per_ip = 0;  // 0 = off: clients behind one proxy or NAT share an address
  std::size_t max_message_bytes = 65536;   // one payload; big enough for rich JSON, small for fan-out
  std::size_t max_subscriptions = 128;     // per connection; bounds per-connection state
  std::size_t queue_bytes = 1 << 20;       // per connection: seconds of a busy stream; beyond it resume
  // SO_SNDBUF per connection: what a stuck peer may pin in the kernel besides its queue (Linux
  // doubles it). 256 KiB still covers a 100 Mbit/s x 20 ms path; autotuning (0) lets one stuck socket
  // hold ~4 MiB, so a slow consumer would be cut megabytes after its queue bound.
  std::size_t socket_send_buffer_bytes = 256 * 1024;
  // A slow consumer whose write is stuck gets this long for it to finish, so that it can still be
  // told 4008 in a close frame; then its socket is cut. Its queue is dropped at once either way.
  std::uint64_t slow_consumer_grace_ms = 1000;
  // Adaptive write coalescing (server/transport/write_pacing.hpp): under load, the next pass of
  // fan-out writes starts `factor` x the last pass's length after it, at most `write_coalesce_us`
  // later, so frames that arrive meanwhile share one write (the kernel's send path costs per call);
  // after a quiet window a publish is written at once. 8 ms of added delay at saturation is below
  // what a person notices, and measured at 1,000 subscribers it roughly tripled deliveries/s against
  // 1 ms (docs/performance.md); factor 4 keeps writing to at most ~1/4 of a loaded thread's time
  // until the cap, 0 = a fixed window of write_coalesce_us.
  std::uint64_t write_coalesce_us = 8000;
  // A flush pass's sends handed to the kernel as one io_uring batch (server/transport/send_batch.hpp).
  // Off by default until more rounds decide (docs/performance.md, "io_uring"): at a fixed 50 msg/s
  // to 1,000 subscribers it saves 10-20 % of the CPU per delivery; closed-loop SSE to 1,000 was slower
  // with it in a first A/B and not in a second, and those scenarios are bimodal.
  bool io_uring = false;
  std::uint64_t write_coalesce_factor = 4;
  std::size_t header_limit = 8192;         // like nginx's default large header buffer
  std::size_t body_limit = 1 << 20;        // API batches; single messages are bounded separately
  std::uint64_t handshake_timeout_ms = 10000;  // connect command after the WebSocket opens
  std::uint64_t request_timeout_ms = 10000;    // one complete HTTP request (slowloris)
  std::uint64_t idle_timeout_ms = 60000;       // keep-alive HTTP connection with no request
  std::uint64_t ping_interval_ms = 25000;      // under common 30-60 s proxy idle timeouts
  std::uint64_t dead_peer_timeout_ms = 0;      // 0 = 2 x ping interval: no byte from the peer at all
  std::uint64_t poll_hold_ms = 25000;          // long-poll hold; under proxy timeouts like the ping
  std::size_t max_parked_polls = 10000;        // parked long-polls in total
  std::size_t max_poll_leases = 100000;        // live long-poll clients (leases, ~200 bytes each)
  std::size_t max_batch = 100;                 // commands per batch, messages per publish_batch
  // Subscribes + unsubscribes per WebSocket connection: a burst that covers subscribing to and
  // leaving max-subscriptions (128) channels at once, then 20/s, far above a person switching
  // rooms; over it: error 4011 (protocol/server_session.hpp).
  std::size_t subscribe_churn_burst = 256;
  std::size_t subscribe_churn_per_s = 20;
  std::size_t max_token_bytes = 4096;          // a JWT with hundreds of grants still fits
  std::uint64_t token_refresh_warning_ms = 30000;  // warn an open connection this long before its token expires
  std::size_t max_stream_channels = 64;        // channels per SSE stream / long-poll: bounded URLs
  std::size_t max_channels = 100000;           // channels in total: bounds memory against name spraying
  // Default namespace. A plain EventSource comes back after `retry:` (2 s jittered to at most 3 s)
  // plus its reconnect: at 50 msg/s that is ~150-250 publications; 1,000 covers 20 s at 50 msg/s
  // (10 s at 100), several retry windows. Age (history_ttl_ms) and the total-bytes bound still
  // apply, so quiet or huge channels keep less.
  std::size_t history_size = 1000;
  std::uint64_t history_ttl_ms = 300000;       // default namespace
  std::size_t history_total_bytes = 256u << 20;  // all history together
  std::size_t max_presence_members = 1000;     // per channel: a member list stays one small reply
  std::uint64_t channel_idle_ms = 0;           // 0 = the namespace's history TTL: idle as long as history lasts
  std::size_t idempotency_keys = 100000;       // remembered API publish keys
  std::uint64_t idempotency_ttl_ms = 300000;   // longer than a sane backend retry loop
  // A UUID is 36 bytes, a ULID 26, a SHA-256 in hex 64: 128 fits every usual key with room, and
  // keeps the key table (--idempotency-keys of them) within ~13 MiB of key text at worst.
  std::size_t max_idempotency_key_bytes = 128;
  std::uint64_t presence_lease_ms = 0;         // one-way clients; 0 = poll hold + 10 s
  std::uint64_t sse_retry_ms = 2000;           // EventSource retry, jittered 50-150 %
  // A `:` comment of this many bytes after an SSE stream's first events, for a proxy that holds
  // the start of a response until it has that much. Off: measured with nginx (docs/protocol.md
  // "Buffering proxies"), padding that fills its first buffer passes the first events on but not
  // the later ones, which only hides the buffering from the client's detection.
  std::size_t sse_padding_bytes = 0;
  std::uint64_t reconnect_jitter_ms = 2000;    // spread of `after` in server disconnects
  std::uint64_t shutdown_timeout_ms = 5000;    // drain deadline on SIGTERM
  // After SIGTERM the listener stays open and /readyz answers 503 for at least this long (capped by
  // the shutdown timeout), so a balancer's health check sees the node leave before its port closes;
  // 0: stop as soon as every connection is gone (nothing in front of the server to tell).
  std::uint64_t readiness_drain_ms = 0;
  std::uint64_t housekeeping_ms = 250;         // timer tick for deadlines, pings, sweeps
  std::uint64_t demo_rate_per_s = 20;          // /demo/publish per client address
  // Durable history (docs/architecture.md, "Durable history"). Empty: history lives in memory and a
  // restart starts every channel in a new epoch.
  std::string data_dir;
  // interval (default): a publish is acknowledged once its commit reaches the OS, so a killed or
  // crashed server loses nothing acknowledged; a machine crash may lose the last interval, which
  // the next start reports as new epochs (recovered:false), never silently. fsync loses nothing
  // even then, but the fsync in every publish's path halved fan-out at 1,000 subscribers
  // (docs/performance.md); os leaves write-back to the kernel.
  durability durable = durability::interval;
  std::uint64_t fsync_interval_ms = 200;       // interval policy: at most this much lost on a machine crash

  // The engine (docs/scaling.md). memory: one node, history in memory (or on disk with --data-dir);
  // redis: any number of nodes sharing history, presence and Pub/Sub through Redis.
  std::string engine = "memory";
  std::vector<std::string> redis;              // redis://[:password@]host:port/db or unix:/path; several = shards
  std::string node_id;                         // empty = random at start-up (shown in /api/info)
  std::uint64_t node_heartbeat_ms = 1000;      // node registry; a dead node is gone after 3 heartbeats
  std::size_t redis_pool_size = 2;             // command connections per Redis shard (plus one Pub/Sub)
  std::uint64_t redis_timeout_ms = 2000;       // connect and command timeout: a stalled Redis fails fast
  std::size_t redis_max_in_flight = 10000;     // commands queued per connection; bounds memory when Redis stalls
  std::uint64_t redis_reconnect_min_ms = 50;   // first reconnect delay (full jitter, doubling to 2 s): a restart is found fast

  // The Pusher-protocol endpoint (docs/pusher.md): off unless apps are configured (--demo adds one).
  std::vector<pusher_app> pusher_apps;
  // What connection_established advertises: pusher-js pings after this long without a message and
  // reconnects when no pong follows; Pusher's own value.
  std::uint64_t pusher_activity_timeout_s = 120;
  // Pusher webhooks (server/pusher/webhooks.hpp): events within the window share a request (Pusher
  // batches too); a bounded queue (a receiver down for long drops the newest, counted); a few
  // retries with doubling backoff ride out a receiver's restart without piling up.
  std::uint64_t pusher_webhook_batch_ms = 50;
  std::size_t pusher_webhook_max_batch = 50;      // events per request
  std::size_t pusher_webhook_queue = 10000;       // events waiting, all webhooks together
  std::uint64_t pusher_webhook_attempts = 5;      // tries per request
  std::uint64_t pusher_webhook_backoff_ms = 200;  // first retry delay, doubling up to 30 s
  std::uint64_t pusher_webhook_timeout_ms = 5000; // per attempt: connect, send, response head

  std::map<std::string, namespace_config> namespaces;

  memory_history_config history_cfg() const;
  std::uint64_t effective_dead_peer_ms() const { return dead_peer_timeout_ms ? dead_peer_timeout_ms : 2 * ping_interval_ms; }
  std::uint64_t effective_lease_ms() const { return presence_lease_ms ? presence_lease_ms : poll_hold_ms + 10000; }
};

struct config_result {
  bool ok = true;
  bool help = false;       // --help: print help_text() and exit 0
  bool version = false;    // --version: print the version and exit 0
  std::string error;
  config cfg;
};

// `env` holds the environment (e.g. from environ); tests pass their own.
config_result parse_config(int argc, const char* const* argv, const std::map<std::string, std::string>& env);
std::string help_text();
// The flag names (e.g. "max-connections") whose values differ between `a` and `b`, plus
// "namespaces" and "pusher-app" (secrets included) when those differ. For the reload's log: names only.
std::vector<std::string> changed_settings(const config& a, const config& b);

}  // namespace pushwire::server
