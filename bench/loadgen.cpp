// pushwire-loadgen: the benchmark's load generator (bench/README in docs/performance.md).
//
// One thread, one epoll loop, non-blocking sockets. It opens N subscriber connections (WebSocket,
// SSE or long-polling; one channel or many) at a bounded connect rate, then publishes M messages of
// S bytes through the server's HTTP publish endpoint (closed loop, K requests in flight, or a fixed
// rate). Every message carries a sequence number and its CLOCK_MONOTONIC send time in nanoseconds
// inside the JSON payload, so each subscriber checks loss, duplicates, order and end-to-end latency.
// It speaks to three kinds of server: Pushwire (docs/protocol.md), Nchan (raw message bodies on
// websocket / eventsource / long-poll subscriber locations, HTTP POST publisher) and the Node `ws`
// peer in bench/peers/node-peer/server.mjs. It samples the server's RSS and CPU from /proc/<pid>
// (children included, so nginx's master + workers add up) and its own CPU with getrusage.
//
// Why hand-written HTTP/WebSocket client code: this is tooling whose one job is to cost far less CPU
// than the server it measures. A library client (Beast's websocket stream, one coroutine per
// connection) costs several times more per delivery than this loop, and on a 2-core machine every
// microsecond the generator spends is taken from the server under test. So the client side of the
// WebSocket framing (RFC 6455 client→server masking, frame parsing, ping/pong, close) and the small
// HTTP/1.1 response parser (Content-Length and chunked bodies, SSE event streams) are written by hand
// here. The server never uses this code; Sec-WebSocket-Accept is not verified (loopback tooling).
//
// Every run is bounded in count and time (--timeout) and stops by itself; only 127.0.0.0/8 targets.
// Exit code: 0 = all expected deliveries arrived, none duplicated or out of order; 1 = not; 2 = usage.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace {

using std::string;
using std::string_view;

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const char* fmt, const char* arg = "") {
  std::fprintf(stderr, "pushwire-loadgen: ");
  std::fprintf(stderr, fmt, arg);
  std::fprintf(stderr, "\n");
  std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// Options

enum class Target { pushwire, nchan, node };
enum class Tp : uint8_t { ws, sse, poll };
enum class Storm { none, client, server, kill };

struct Options {
  Target target = Target::pushwire;
  string host = "127.0.0.1";
  int port = 0;
  int pub_port = 0;
  // Several nodes: subscriber i starts on ports[i % n] and moves to the next port whenever its
  // connection ends or cannot be opened (a client behind a balancer that lands elsewhere).
  std::vector<int> ports;
  int kill_pid = 0;  // --storm kill: SIGKILL this process and its children at --storm-at-ms
  std::vector<Tp> transports{Tp::ws};
  uint32_t subs = 100;
  uint32_t channels = 1;
  string channel_prefix;  // default: unique per run, so no run sees another's history
  double connect_rate = 5000;
  uint32_t max_pending = 1000;
  uint64_t messages = 1000;
  uint32_t size = 100;
  string mode = "closed";  // closed | rate
  uint32_t inflight = 1;
  double rate = 0;
  string api_key;
  std::vector<int> pids;
  double timeout_s = 120;
  double connect_timeout_s = 60;
  double idle_ms = 500;
  double drain_ms = 10000;
  string json_path;
  string label;
  uint32_t stall = 0;  // subscribers that stop reading once subscribed
  double stall_drain_ms = 3000;  // after the window: read the stalled ones this long
  Storm storm = Storm::none;
  double storm_at_ms = 2000;
  uint32_t jitter_ms = 2000;
  bool expect_refusal = false;
  string ready_file, go_file;
  double go_timeout_s = 120;
  uint32_t src_ips = 8;
  bool nchan_meta = false;
  string pusher_key;   // non-empty: subscribers speak Pusher's protocol at /app/<key> (pushwire target)
  bool quiet = false;
  // 0 = read each subscriber socket as soon as it is readable, as a browser does (every mode);
  // D > 0 = the "late reader": subscriber sockets are read at most every D us while publishing.
  double read_interval_us = 0;
};

const char* target_name(Target t) {
  return t == Target::pushwire ? "pushwire" : t == Target::nchan ? "nchan" : "node";
}
const char* tp_name(Tp t) { return t == Tp::ws ? "ws" : t == Tp::sse ? "sse" : "poll"; }

void usage() {
  std::puts(
      "usage: pushwire-loadgen --port P [options]\n"
      "  --target pushwire|nchan|node   server dialect (default pushwire)\n"
      "  --host 127.x.y.z --port P      subscriber endpoint (loopback only)\n"
      "  --pub-port P                   publish endpoint port (default = --port)\n"
      "  --ports P1,P2,..               several nodes: subscribers spread round-robin over these\n"
      "                                 ports (--port = P1) and move to the next on a reconnect\n"
      "  --transport ws|sse|poll[,..]   subscriber transport; a list alternates per subscriber\n"
      "  --subs N --channels C          subscribers, spread round-robin over C channels\n"
      "  --channel-prefix NAME          channel names NAME0..NAME<C-1> (default unique per run)\n"
      "  --connect-rate R --max-pending P   connect ramp (per second) and handshakes in progress\n"
      "  --messages M --size S          messages to publish and payload bytes (>= 48)\n"
      "  --mode closed|rate  --inflight K  --rate R   publisher: closed loop with K in flight, or R/s\n"
      "  --api-key KEY                  Pushwire API key (Authorization: Bearer)\n"
      "  --server-pid PID[,PID]         server process(es) to sample (children are added)\n"
      "  --idle-ms T                    wait after all subscribed before the idle RSS sample\n"
      "  --drain-ms T                   wait for late deliveries after the last publish\n"
      "  --timeout S --connect-timeout S   hard bounds of the whole run and of the connect phase\n"
      "  --stall N                      N subscribers stop reading (slow-reader scenario); after\n"
      "  --stall-drain-ms T             the window they read again for T ms (close code, 4008)\n"
      "  --storm client|server --storm-at-ms T --jitter-ms J   reconnect storm during publishing\n"
      "  --storm kill --kill-pid PID    SIGKILL a node (and its children) at --storm-at-ms; its\n"
      "                                 subscribers come back on the next --ports entry and resume\n"
      "  --expect-refusal               only connect; count clean refusals (503 / close 4015)\n"
      "  --ready-file F --go-file G     write F when subscribed; wait for G before publishing\n"
      "  --src-ips N                    spread source addresses over 127.<pid>.x.y (default 8)\n"
      "  --nchan-meta                   Nchan websocket with ws+meta.nchan (message ids, resume)\n"
      "  --pusher-key K                 websocket subscribers use Pushwire's Pusher endpoint /app/K\n"
      "  --read-interval-us D           default 0: read subscriber sockets as soon as they are\n"
      "                                 readable, as a browser does (every mode). D > 0: the late\n"
      "                                 reader, which reads them at most every D us while publishing\n"
      "                                 and lets frames pile up in the socket buffers (not what a\n"
      "                                 browser does)\n"
      "  --json FILE --label NAME --quiet");
}

std::vector<string> split(const string& s, char c) {
  std::vector<string> out;
  size_t b = 0;
  for (;;) {
    size_t e = s.find(c, b);
    out.push_back(s.substr(b, e == string::npos ? string::npos : e - b));
    if (e == string::npos) break;
    b = e + 1;
  }
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  auto need = [&](int& i) -> string {
    if (i + 1 >= argc) die("missing value for %s", argv[i]);
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    string a = argv[i];
    if (a == "--help" || a == "-h") { usage(); std::exit(0); }
    else if (a == "--target") {
      string v = need(i);
      o.target = v == "pushwire" ? Target::pushwire : v == "nchan" ? Target::nchan
               : v == "node" ? Target::node : (die("unknown target %s", v.c_str()), Target::node);
    }
    else if (a == "--host") o.host = need(i);
    else if (a == "--port") o.port = std::atoi(need(i).c_str());
    else if (a == "--pub-port") o.pub_port = std::atoi(need(i).c_str());
    else if (a == "--ports") {
      o.ports.clear();
      for (auto& p : split(need(i), ',')) if (!p.empty()) o.ports.push_back(std::atoi(p.c_str()));
      if (!o.ports.empty()) o.port = o.ports[0];
    }
    else if (a == "--kill-pid") o.kill_pid = std::atoi(need(i).c_str());
    else if (a == "--transport") {
      o.transports.clear();
      for (auto& t : split(need(i), ',')) {
        if (t == "ws") o.transports.push_back(Tp::ws);
        else if (t == "sse") o.transports.push_back(Tp::sse);
        else if (t == "poll") o.transports.push_back(Tp::poll);
        else die("unknown transport %s", t.c_str());
      }
    }
    else if (a == "--subs") o.subs = std::strtoul(need(i).c_str(), nullptr, 10);
    else if (a == "--channels") o.channels = std::max(1ul, std::strtoul(need(i).c_str(), nullptr, 10));
    else if (a == "--channel-prefix") o.channel_prefix = need(i);
    else if (a == "--connect-rate") o.connect_rate = std::atof(need(i).c_str());
    else if (a == "--max-pending") o.max_pending = std::strtoul(need(i).c_str(), nullptr, 10);
    else if (a == "--messages") o.messages = std::strtoull(need(i).c_str(), nullptr, 10);
    else if (a == "--size") o.size = std::strtoul(need(i).c_str(), nullptr, 10);
    else if (a == "--mode") o.mode = need(i);
    else if (a == "--inflight") o.inflight = std::max(1ul, std::strtoul(need(i).c_str(), nullptr, 10));
    else if (a == "--rate") o.rate = std::atof(need(i).c_str());
    else if (a == "--api-key") o.api_key = need(i);
    else if (a == "--server-pid") for (auto& p : split(need(i), ',')) { if (!p.empty()) o.pids.push_back(std::atoi(p.c_str())); }
    else if (a == "--timeout") o.timeout_s = std::atof(need(i).c_str());
    else if (a == "--connect-timeout") o.connect_timeout_s = std::atof(need(i).c_str());
    else if (a == "--idle-ms") o.idle_ms = std::atof(need(i).c_str());
    else if (a == "--drain-ms") o.drain_ms = std::atof(need(i).c_str());
    else if (a == "--json") o.json_path = need(i);
    else if (a == "--label") o.label = need(i);
    else if (a == "--stall-drain-ms") o.stall_drain_ms = std::atof(need(i).c_str());
    else if (a == "--stall") o.stall = std::strtoul(need(i).c_str(), nullptr, 10);
    else if (a == "--storm") {
      string v = need(i);
      o.storm = v == "client" ? Storm::client : v == "server" ? Storm::server : v == "kill" ? Storm::kill
              : (die("unknown storm %s", v.c_str()), Storm::none);
    }
    else if (a == "--storm-at-ms") o.storm_at_ms = std::atof(need(i).c_str());
    else if (a == "--jitter-ms") o.jitter_ms = std::strtoul(need(i).c_str(), nullptr, 10);
    else if (a == "--expect-refusal") o.expect_refusal = true;
    else if (a == "--ready-file") o.ready_file = need(i);
    else if (a == "--go-file") o.go_file = need(i);
    else if (a == "--go-timeout") o.go_timeout_s = std::atof(need(i).c_str());
    else if (a == "--src-ips") o.src_ips = std::max(1ul, std::strtoul(need(i).c_str(), nullptr, 10));
    else if (a == "--nchan-meta") o.nchan_meta = true;
    else if (a == "--pusher-key") o.pusher_key = need(i);
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--read-interval-us") {
      o.read_interval_us = std::atof(need(i).c_str());
      if (!(o.read_interval_us >= 0)) die("--read-interval-us must be >= 0 (0 = read at once)");
    }
    else die("unknown option %s (see --help)", a.c_str());
  }
  if (o.port <= 0) die("--port is required");
  if (o.pub_port <= 0) o.pub_port = o.port;
  if (o.ports.empty()) o.ports.push_back(o.port);
  for (int p : o.ports) if (p <= 0 || p > 65535) die("bad port in --ports");
  if (o.storm == Storm::kill && o.kill_pid <= 0) die("--storm kill needs --kill-pid");
  if (o.storm == Storm::kill && o.ports.size() < 2) die("--storm kill needs a second node in --ports to come back to");
  in_addr a{};
  if (inet_pton(AF_INET, o.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
    die("--host must be an IPv4 loopback address (127.0.0.0/8), got %s", o.host.c_str());
  if (o.size < 48) die("--size must be at least 48 bytes");
  if (o.mode != "closed" && o.mode != "rate") die("--mode must be closed or rate");
  if (o.mode == "rate" && o.rate <= 0) die("--mode rate needs --rate > 0");
  if (o.messages > 50'000'000) die("--messages is bounded at 50,000,000");
  if (o.subs > 60000) die("--subs is bounded at 60,000");
  if (o.timeout_s <= 0 || o.timeout_s > 3600) die("--timeout must be in (0, 3600] seconds");
  if (o.stall >= o.subs && o.stall) die("--stall must be below --subs");
  if (o.target != Target::pushwire && o.storm == Storm::server)
    die("--storm server needs the Pushwire disconnect API (--target pushwire)");
  if (o.target == Target::node)
    for (Tp t : o.transports) if (t == Tp::poll) die("the node peer has no long-poll endpoint");
  if (o.target == Target::nchan && (o.storm == Storm::client || o.storm == Storm::kill)) o.nchan_meta = true;
  if (o.channel_prefix.empty()) {
    char b[48];
    std::snprintf(b, sizeof b, "b%x%llx", unsigned(getpid()), (unsigned long long)(mono_ns() / 1000000) & 0xffffff);
    o.channel_prefix = b;
  }
  if (o.expect_refusal) o.messages = 0;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two (~3% resolution), values in ns.

struct Histogram {
  static constexpr int kSub = 32;
  std::vector<uint64_t> b = std::vector<uint64_t>(64 * kSub, 0);
  uint64_t n = 0;
  int64_t max = 0;
  void add(int64_t v) {
    if (v < 0) v = 0;
    ++n;
    if (v > max) max = v;
    uint64_t u = uint64_t(v);
    int idx;
    if (u < kSub) idx = int(u);
    else {
      int e = 63 - __builtin_clzll(u);  // >= 5
      idx = (e - 4) * kSub + int((u >> (e - 5)) & (kSub - 1));
    }
    ++b[size_t(idx)];
  }
  static int64_t lower(int idx) {
    if (idx < kSub) return idx;
    int e = idx / kSub + 4;
    int64_t m = idx % kSub;
    return (int64_t(1) << e) + (m << (e - 5));
  }
  int64_t pct(double p) const {
    if (!n) return 0;
    uint64_t want = uint64_t(std::ceil(p * double(n)));
    if (want == 0) want = 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      acc += b[i];
      if (acc >= want) {
        int64_t lo = lower(int(i)), hi = lower(int(i) + 1);
        return std::min(max, (lo + hi) / 2);
      }
    }
    return max;
  }
};

// ---------------------------------------------------------------------------------------------
// /proc sampling of the server

struct ProcSample {
  uint64_t rss_kb = 0;     // sum of anon + file, shared memory counted once (nginx workers share it)
  uint64_t utime = 0, stime = 0;  // clock ticks, all processes
  uint64_t run_ns = 0;     // sum of /proc/<pid>/task/*/schedstat (ns-precise CPU time)
  bool ok = false;
};

bool read_file(const string& path, string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    out.append(buf, size_t(r));
  }
  ::close(fd);
  return true;
}

uint64_t status_field(const string& s, const char* key) {
  size_t p = s.find(key);
  if (p == string::npos) return 0;
  return std::strtoull(s.c_str() + p + std::strlen(key), nullptr, 10);
}

std::vector<int> expand_pids(const std::vector<int>& roots) {
  std::vector<int> all;
  std::vector<int> todo = roots;
  string s;
  while (!todo.empty()) {
    int p = todo.back();
    todo.pop_back();
    if (std::find(all.begin(), all.end(), p) != all.end()) continue;
    all.push_back(p);
    string dir = "/proc/" + std::to_string(p) + "/task";
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (read_file(dir + "/" + e->d_name + "/children", s)) {
          const char* c = s.c_str();
          char* end;
          for (;;) {
            long v = std::strtol(c, &end, 10);
            if (end == c) break;
            todo.push_back(int(v));
            c = end;
          }
        }
      }
      closedir(d);
    }
  }
  return all;
}

ProcSample sample_procs(const std::vector<int>& pids, bool cpu) {
  ProcSample r;
  string s;
  uint64_t shmem_max = 0;
  for (int p : pids) {
    string base = "/proc/" + std::to_string(p);
    if (!read_file(base + "/status", s)) continue;
    r.ok = true;
    uint64_t anon = status_field(s, "RssAnon:"), file = status_field(s, "RssFile:"),
             shm = status_field(s, "RssShmem:");
    if (!anon && !file) anon = status_field(s, "VmRSS:");
    r.rss_kb += anon + file;
    shmem_max = std::max(shmem_max, shm);
    if (!cpu) continue;
    if (read_file(base + "/stat", s)) {
      size_t rp = s.rfind(')');
      // A killed process not yet reaped (state Z) has no CPU left to count: the kill storm adds
      // what it had used, sampled just before the kill.
      if (rp != string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z') continue;
      if (rp != string::npos) {
        // fields after ')': state(3) ppid ... utime is field 14, stime 15
        const char* c = s.c_str() + rp + 2;
        int field = 3;
        while (*c && field < 14) { if (*c == ' ') ++field; ++c; }
        char* end;
        r.utime += std::strtoull(c, &end, 10);
        r.stime += std::strtoull(end, nullptr, 10);
      }
    }
    string dir = base + "/task";
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (read_file(dir + "/" + e->d_name + "/schedstat", s)) r.run_ns += std::strtoull(s.c_str(), nullptr, 10);
      }
      closedir(d);
    }
  }
  r.rss_kb += shmem_max;
  return r;
}

struct MachineStat { uint64_t idle = 0, total = 0; };
MachineStat machine_stat() {
  MachineStat m;
  string s;
  if (!read_file("/proc/stat", s)) return m;
  const char* c = s.c_str() + 3;
  uint64_t v[10] = {0};
  char* end;
  for (int i = 0; i < 10; ++i) { v[i] = std::strtoull(c, &end, 10); c = end; }
  for (int i = 0; i < 8; ++i) m.total += v[i];  // guest time is already inside user
  m.idle = v[3] + v[4];
  return m;
}

double cpu_of(const rusage& r) {
  return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Small text helpers (bounded, no allocation)

const char* find(const char* b, const char* e, string_view needle) {
  if (size_t(e - b) < needle.size()) return nullptr;
  return static_cast<const char*>(memmem(b, size_t(e - b), needle.data(), needle.size()));
}

bool parse_u64(const char*& p, const char* e, uint64_t& v) {
  v = 0;
  const char* s = p;
  while (p < e && *p >= '0' && *p <= '9') v = v * 10 + uint64_t(*p++ - '0');
  return p > s;
}

bool field_u64(const char* b, const char* e, string_view key, uint64_t& v) {
  const char* p = find(b, e, key);
  if (!p) return false;
  p += key.size();
  while (p < e && *p == ' ') ++p;
  return parse_u64(p, e, v);
}

bool field_str(const char* b, const char* e, string_view key, string& out) {
  const char* p = find(b, e, key);
  if (!p) return false;
  p += key.size();
  const char* q = static_cast<const char*>(memchr(p, '"', size_t(e - p)));
  if (!q) return false;
  out.assign(p, size_t(q - p));
  return true;
}

bool iequal_prefix(const char* p, const char* e, string_view key) {
  if (size_t(e - p) < key.size()) return false;
  for (size_t i = 0; i < key.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(p[i])) != key[i]) return false;
  return true;
}

// Value of header `name` (lower case, with ':') in a header block, or empty.
string_view header_value(const char* b, const char* e, string_view name) {
  const char* p = b;
  while (p < e) {
    const char* eol = find(p, e, "\r\n");
    if (!eol) eol = e;
    if (iequal_prefix(p, eol, name)) {
      const char* v = p + name.size();
      while (v < eol && (*v == ' ' || *v == '\t')) ++v;
      return string_view(v, size_t(eol - v));
    }
    p = eol + 2;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Connections

enum class St : uint8_t { idle, connecting, handshake, open, closed, waiting };

struct Sub {
  int fd = -1;
  uint32_t gen = 0;
  uint32_t idx = 0;
  uint32_t channel = 0;
  Tp tp = Tp::ws;
  St st = St::idle;
  bool ready = false, ever_ready = false, stalled = false, chunked = false, poll_open = false;
  bool got_advice = false, caught_up = false, refused = false, counted_failure = false, in_pending = false;
  uint8_t chunk_state = 0;  // 0 size line, 1 data, 2 CRLF after data, 3 done
  uint64_t chunk_left = 0;
  uint16_t close_code = 0;
  uint16_t disconnect_code = 0;
  uint16_t attempts = 0;
  uint16_t http_status = 0;
  uint16_t reconnects = 0;
  uint16_t port_idx = 0;  // index into Options::ports
  string in;    // transport bytes not yet parsed (partial frame / header / chunk line)
  string body;  // SSE partial line, fragmented WebSocket message
  string out;   // bytes not yet written
  string last_id;  // SSE id / Nchan message id / Pushwire long-poll cursor
  string epoch;
  uint64_t offset = 0;
  bool have_pos = false;
  string lp_mod, lp_etag;  // Nchan long-poll position
  string client_id;        // Pushwire long-poll: the lease id from `connected`, sent back as client=
  std::vector<uint64_t> seen;
  uint64_t unique = 0;
  uint64_t maxw = 0;
  uint64_t stall_frames = 0;
  int64_t t_start = 0, t_ready = 0, t_drop = 0, t_back = 0, t_caught = 0;
  int64_t advice_ms = -1;
  // SSE event being assembled
  string ev_id;
  bool ev_has_id = false;
};

struct HttpConn {  // publisher / API connection: one request at a time, keep-alive
  int fd = -1;
  uint32_t gen = 0;
  string in, out;
  bool busy = false;
  uint64_t seq = 0;  // 0 = API request, not a publish
  int64_t t_sent = 0;
  string last_req;   // to resend after a reconnect
};

constexpr uint64_t kPubFlag = 1ull << 63;
constexpr uint64_t kPubSet = ~0ull;

struct Loadgen {
  Options o;
  int ep = -1;      // subscribers, plus ep_pub's own descriptor (tag kPubSet)
  int ep_pub = -1;  // publisher and API connections
  std::vector<Sub> subs;
  std::vector<HttpConn> pubs;
  std::vector<string> chan_names;
  std::vector<uint32_t> subs_in_channel;
  std::vector<uint64_t> acked_in_channel;
  std::vector<uint64_t> w;          // w[seq] = every seq <= w was acked when seq was sent
  std::vector<uint8_t> acked;        // per seq
  uint64_t ack_prefix = 0;
  std::vector<int> pids;
  Histogram lat;
  std::vector<char> rbuf = std::vector<char>(1 << 18);
  string payload_pad;
  uint32_t rng = 0x9e3779b9u;
  sockaddr_in dst{}, pub_dst{};
  uint32_t src_base = 0;

  // phase
  enum Phase { CONNECT, IDLE, WAIT_GO, PUBLISH, DRAIN, STALL_DRAIN, DONE } phase = CONNECT;
  int64_t t0 = 0, t_phase = 0, t_connect_done = 0, t_first_connect = 0, t_last_ready = 0;
  int64_t t_win0 = 0, t_win1 = 0, t_last_delivery = 0, t_pub_done = 0, t_first_ready_all = 0;
  uint32_t started = 0, ready_count = 0, pending = 0, failed = 0, refused = 0, refused_503 = 0,
           refused_4015 = 0, refused_reset = 0, resolved = 0;
  uint64_t sent = 0, acks = 0, pub_errors = 0, pub_resent = 0;
  uint64_t delivered = 0, dup = 0, ooo = 0, bad = 0, recovered_false = 0, errors_frames = 0;
  uint64_t unexpected_disconnects = 0, stall_closed = 0, stall_4008 = 0;
  uint64_t rate_lag = 0;
  bool timed_out = false, go_seen = false, last_ooo = false;
  uint32_t npub_pub = 0;
  uint64_t offset_gaps = 0;
  std::vector<uint64_t> live_in_channel;  // non-stalled subscribers per channel
  string first_error;
  int64_t next_sample = 0;
  ProcSample before, idle_s, win0_s, win1_s;
  uint64_t rss_peak = 0;
  MachineStat m0, m1;
  rusage ru0{}, ru1{};
  std::priority_queue<std::pair<int64_t, uint32_t>, std::vector<std::pair<int64_t, uint32_t>>,
                      std::greater<>> reconnect_q;
  // storm
  bool storm_fired = false;
  int64_t t_storm = 0;
  uint64_t storm_s0 = 0;
  uint32_t storm_back = 0, storm_caught = 0, storm_dropped = 0, storm_no_advice = 0;
  std::vector<int64_t> storm_returns_ns, storm_catchup_ns;
  uint32_t storm_api_status = 0;
  string storm_api_body;
  ProcSample killed_s;  // --storm kill: the killed node's CPU up to the kill (it vanishes from later samples)

  uint32_t next_rand() { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
  double secs(int64_t a, int64_t b) const { return double(b - a) / 1e9; }
  void note_error(const string& e) { if (first_error.empty()) first_error = e; }

  // --- setup -----------------------------------------------------------------------------------
  void init() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    uint64_t need = uint64_t(o.subs) + o.inflight + 40;
    if (need > rl.rlim_cur)
      std::fprintf(stderr, "warning: %u subscribers need ~%llu descriptors, limit is %llu: the rest will fail\n",
                   o.subs, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
    ep = epoll_create1(EPOLL_CLOEXEC);
    ep_pub = epoll_create1(EPOLL_CLOEXEC);
    epoll_event pe{};
    pe.events = EPOLLIN;
    pe.data.u64 = kPubSet;
    epoll_ctl(ep, EPOLL_CTL_ADD, ep_pub, &pe);
    dst.sin_family = AF_INET;
    dst.sin_port = htons(uint16_t(o.port));
    inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr);
    pub_dst = dst;
    pub_dst.sin_port = htons(uint16_t(o.pub_port));
    // Source addresses 127.<a>.<b>.1.. differ per process, so consecutive runs never meet each
    // other's TIME_WAIT entries and one process gets far more than 28k ephemeral ports.
    src_base = (127u << 24) | ((uint32_t(getpid()) % 200 + 20) << 16) | ((uint32_t(mono_ns() / 1000) % 200 + 1) << 8);
    for (uint32_t c = 0; c < o.channels; ++c) chan_names.push_back(o.channel_prefix + std::to_string(c));
    subs_in_channel.assign(o.channels, 0);
    acked_in_channel.assign(o.channels, 0);
    subs.resize(o.subs);
    uint64_t per_chan = (o.messages + o.channels - 1) / o.channels;
    for (uint32_t i = 0; i < o.subs; ++i) {
      Sub& s = subs[i];
      s.idx = i;
      s.channel = i % o.channels;
      s.tp = o.transports[i % o.transports.size()];
      s.port_idx = uint16_t(i % o.ports.size());
      s.seen.assign((per_chan + 63) / 64, 0);
    }
    w.assign(o.messages + 2, 0);
    acked.assign(o.messages + 2, 0);
    pids = expand_pids(o.pids);
    payload_pad.assign(o.size, 'x');
    rng ^= uint32_t(getpid()) * 2654435761u;
  }

  // --- epoll helpers -----------------------------------------------------------------------------
  void ep_add(int fd, uint64_t tag, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  }
  void ep_mod(int fd, uint64_t tag, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = tag;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
  }
  static uint64_t sub_tag(const Sub& s) { return (uint64_t(s.gen & 0x7fffffff) << 32) | s.idx; }
  static uint64_t pub_tag(uint32_t i, uint32_t gen) { return kPubFlag | (uint64_t(gen & 0x7fffffff) << 32) | i; }

  int open_socket(uint32_t src_index) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o.src_ips > 1) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(src_base + 1 + src_index % o.src_ips);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) { /* fall back to default */ }
    }
    return fd;
  }

  // Abortive close (RST): no TIME_WAIT left behind on the generator side, like a dropped network.
  static void hard_close(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
  }

  // --- subscribers: connect and requests ------------------------------------------------------------
  string host_header() const { return o.host + ":" + std::to_string(o.port); }

  string handshake_request(Sub& s) {
    const string& ch = chan_names[s.channel];
    string r;
    r.reserve(320);
    auto resume_hdr = [&](string& rq) {
      if (!s.last_id.empty()) { rq += "Last-Event-ID: "; rq += s.last_id; rq += "\r\n"; }
    };
    if (s.tp == Tp::ws) {
      string path;
      if (o.target == Target::pushwire) path = o.pusher_key.empty() ? "/ws" : "/app/" + o.pusher_key + "?protocol=7";
      else if (o.target == Target::nchan) path = "/ws/" + ch;
      else path = "/ws?channel=" + ch + (s.last_id.empty() ? "" : "&last_event_id=" + s.last_id);
      r = "GET " + path + " HTTP/1.1\r\nHost: " + host_header() +
          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: cHVzaHdpcmUtbG9hZGdlbg==\r\n"
          "Sec-WebSocket-Version: 13\r\n";
      if (o.target == Target::nchan && o.nchan_meta) r += "Sec-WebSocket-Protocol: ws+meta.nchan\r\n";
      if (o.target == Target::nchan) resume_hdr(r);
      r += "\r\n";
    } else if (s.tp == Tp::sse) {
      string path = o.target == Target::pushwire ? "/sse?channels=" + ch
                  : o.target == Target::nchan ? "/sse/" + ch : "/sse?channel=" + ch;
      r = "GET " + path + " HTTP/1.1\r\nHost: " + host_header() + "\r\nAccept: text/event-stream\r\n";
      resume_hdr(r);
      r += "\r\n";
    } else {
      r = poll_request(s);
    }
    return r;
  }

  string poll_request(Sub& s) {
    const string& ch = chan_names[s.channel];
    string r;
    if (o.target == Target::pushwire) {
      string q = "/poll?channels=" + ch;
      if (!s.poll_open) q += "&open=1";
      if (!s.last_id.empty()) q += "&cursor=" + s.last_id;
      if (s.poll_open && !s.client_id.empty()) q += "&client=" + s.client_id;
      r = "GET " + q + " HTTP/1.1\r\nHost: " + host_header() + "\r\n\r\n";
    } else {
      r = "GET /poll/" + ch + " HTTP/1.1\r\nHost: " + host_header() + "\r\n";
      if (!s.lp_mod.empty()) r += "If-Modified-Since: " + s.lp_mod + "\r\n";
      if (!s.lp_etag.empty()) r += "If-None-Match: " + s.lp_etag + "\r\n";
      r += "\r\n";
    }
    return r;
  }

  void start_connect(Sub& s) {
    int fd = open_socket(s.idx);
    s.t_start = mono_ns();
    if (!t_first_connect) t_first_connect = s.t_start;
    ++s.attempts;
    if (fd < 0) { connect_failed(s, "socket() failed: " + string(strerror(errno))); return; }
    sockaddr_in to = dst;
    to.sin_port = htons(uint16_t(o.ports[s.port_idx]));
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (r != 0 && errno != EINPROGRESS) {
      string e = strerror(errno);
      ::close(fd);
      connect_failed(s, "connect: " + e);
      return;
    }
    s.fd = fd;
    ++s.gen;
    s.st = St::connecting;
    s.in.clear(); s.body.clear(); s.out.clear();
    s.chunked = false; s.chunk_state = 0; s.chunk_left = 0; s.ev_has_id = false;
    s.close_code = 0; s.disconnect_code = 0; s.got_advice = false; s.advice_ms = -1;
    s.poll_open = s.tp == Tp::poll && o.target == Target::pushwire ? false : s.poll_open;
    ++pending;
    s.in_pending = true;
    uint32_t ev = EPOLLOUT | EPOLLRDHUP;
    ep_add(fd, sub_tag(s), ev);
  }

  void connect_failed(Sub& s, const string& why) {
    if (s.in_pending) { s.in_pending = false; --pending; }
    if (s.fd >= 0) { hard_close(s.fd); s.fd = -1; }
    s.st = St::closed;
    note_error(why);
    if (o.expect_refusal || s.refused) {
      if (!s.counted_failure) {
        s.counted_failure = true;
        ++resolved;
        if (s.refused) ++refused; else ++failed;
      }
      return;
    }
    if (s.attempts < 5 && phase != DONE) {
      s.st = St::waiting;
      s.port_idx = uint16_t((s.port_idx + 1) % o.ports.size());
      reconnect_q.push({mono_ns() + int64_t(100 + 100 * s.attempts) * 1000000, s.idx});
    } else if (!s.counted_failure) {
      s.counted_failure = true;
      ++failed;
      ++resolved;
    }
  }

  void send_sub(Sub& s, const string& data) { send_sub(s, data.data(), data.size()); }
  void send_sub(Sub& s, const char* d, size_t n) {
    if (s.fd < 0) return;
    if (!s.out.empty()) { s.out.append(d, n); return; }
    ssize_t r = ::send(s.fd, d, n, MSG_NOSIGNAL);
    if (r < 0) { if (errno != EAGAIN) return; r = 0; }
    if (size_t(r) < n) {
      s.out.assign(d + r, n - size_t(r));
      ep_mod(s.fd, sub_tag(s), EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
  }

  // Client→server WebSocket frame, masked as RFC 6455 §5.3 requires of clients.
  string ws_frame(uint8_t opcode, const char* d, size_t n) {
    string f;
    f.reserve(n + 14);
    f.push_back(char(0x80 | opcode));
    if (n < 126) f.push_back(char(0x80 | n));
    else if (n < 65536) { f.push_back(char(0x80 | 126)); f.push_back(char(n >> 8)); f.push_back(char(n & 0xff)); }
    else { f.push_back(char(0x80 | 127)); for (int i = 7; i >= 0; --i) f.push_back(char((uint64_t(n) >> (8 * i)) & 0xff)); }
    uint32_t m = next_rand();
    char mk[4] = {char(m), char(m >> 8), char(m >> 16), char(m >> 24)};
    f.append(mk, 4);
    for (size_t i = 0; i < n; ++i) f.push_back(char(d[i] ^ mk[i & 3]));
    return f;
  }

  void mark_ready(Sub& s, int64_t now) {
    if (s.ready) return;
    s.ready = true;
    if (s.in_pending) { s.in_pending = false; --pending; }
    if (s.st == St::handshake) s.st = St::open;
    if (!s.ever_ready) {
      s.ever_ready = true;
      s.t_ready = now;
      ++ready_count;
      ++resolved;
      t_last_ready = now;
    } else {
      s.t_back = now;
      if (storm_fired) { ++storm_back; storm_returns_ns.push_back(now - t_storm); }
    }
    if (s.stalled && phase < STALL_DRAIN) epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);  // stops reading
  }

  void on_sub_writable(Sub& s) {
    if (s.st == St::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err) { s.refused = o.expect_refusal; if (o.expect_refusal) ++refused_reset; connect_failed(s, string("connect: ") + strerror(err)); return; }
      s.st = St::handshake;
      ep_mod(s.fd, sub_tag(s), EPOLLIN | EPOLLRDHUP);
      string req = handshake_request(s);
      send_sub(s, req);
      if (s.tp == Tp::poll && o.target == Target::nchan) mark_ready(s, mono_ns());  // parked at once
      return;
    }
    if (!s.out.empty()) {
      ssize_t r = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
      if (r > 0) s.out.erase(0, size_t(r));
      if (s.out.empty() && !(s.stalled && s.ready && phase < STALL_DRAIN)) ep_mod(s.fd, sub_tag(s), EPOLLIN | EPOLLRDHUP);
    }
  }

  // The connection ended (EOF, RST, close frame or protocol error).
  void sub_closed(Sub& s, int64_t now, const char* why) {
    if (s.fd < 0) return;
    bool was_ready = s.ready;
    if (!was_ready) {
      // Failed during the handshake: refusal (HTTP 503 / close 4015 / reset) or error.
      if (o.expect_refusal && !s.refused) {
        s.refused = true;
        if (s.close_code == 4015 || s.disconnect_code == 4015) ++refused_4015;
        else ++refused_reset;
      }
      connect_failed(s, string("closed during handshake: ") + why);
      return;
    }
    hard_close(s.fd);
    s.fd = -1;
    s.ready = false;
    s.st = St::closed;
    if (phase == DONE || phase == STALL_DRAIN) return;
    if (s.stalled) return;
    // Come back with the last position, as a client would.
    int64_t delay_ns = 0;
    if (o.storm == Storm::server && storm_fired) {
      if (s.advice_ms >= 0) delay_ns = s.advice_ms * 1000000;
      else ++storm_no_advice;
      ++storm_dropped;
      s.t_drop = now;
    } else if (o.storm == Storm::kill && storm_fired) {
      // Its node died: come back at once on the next node, from the last position.
      ++storm_dropped;
      s.t_drop = now;
      s.port_idx = uint16_t((s.port_idx + 1) % o.ports.size());
    } else {
      ++unexpected_disconnects;
      note_error(string("subscriber disconnected: ") + why + " code " + std::to_string(s.close_code ? s.close_code : s.disconnect_code));
      if (s.reconnects > 20) return;
      delay_ns = 50'000'000;
    }
    ++s.reconnects;
    s.attempts = 0;
    s.st = St::waiting;
    reconnect_q.push({now + delay_ns, s.idx});
  }

  // --- subscribers: reading -------------------------------------------------------------------------
  void on_sub_readable(Sub& s, int64_t now) {
    for (int rounds = 0; rounds < 4 && s.fd >= 0; ++rounds) {
      ssize_t r = ::recv(s.fd, rbuf.data(), rbuf.size(), 0);
      if (r == 0) { sub_closed(s, now, "EOF"); return; }
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        sub_closed(s, now, strerror(errno));
        return;
      }
      now = mono_ns();  // arrival time of these bytes, for the latency figures
      feed(s, rbuf.data(), size_t(r), now);
      if (size_t(r) < rbuf.size()) return;
    }
  }

  // Bytes from the socket into the state machine. Parses straight from the read buffer when nothing
  // is left over from the previous read (the common case), else appends and parses from s.in.
  void feed(Sub& s, const char* d, size_t n, int64_t now) {
    if (s.st == St::handshake) {
      s.in.append(d, n);
      size_t he = s.in.find("\r\n\r\n");
      if (he == string::npos) { if (s.in.size() > 65536) sub_closed(s, now, "header too large"); return; }
      if (s.tp == Tp::poll) { on_poll_data(s, now); return; }
      const char* b = s.in.data();
      const char* e = b + he + 2;
      int status = 0;
      if (s.in.size() > 12) status = std::atoi(b + 9);
      if ((s.tp == Tp::ws && status != 101) || (s.tp == Tp::sse && status != 200)) {
        s.http_status = uint16_t(status);
        if (status == 503 && o.expect_refusal) { s.refused = true; ++refused_503; }
        char msg[64];
        std::snprintf(msg, sizeof msg, "HTTP status %d", status);
        sub_closed(s, now, msg);
        return;
      }
      if (s.tp == Tp::sse) {
        string_view te = header_value(b, e, "transfer-encoding:");
        s.chunked = te.find("chunked") != string_view::npos;
      }
      string rest = s.in.substr(he + 4);
      s.in.clear();
      s.st = St::open;
      if (s.tp == Tp::ws) {
        if (o.target == Target::pushwire && !o.pusher_key.empty()) {
          string sub = "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"" + chan_names[s.channel] + "\"}}";
          send_sub(s, ws_frame(1, sub.data(), sub.size()));
        } else if (o.target == Target::pushwire) {
          static const char kConnect[] = "{\"cmd\":\"connect\",\"id\":1}";
          string sub = "{\"cmd\":\"subscribe\",\"id\":2,\"channel\":\"" + chan_names[s.channel] + "\"";
          if (s.have_pos) sub += ",\"since\":{\"epoch\":\"" + s.epoch + "\",\"offset\":" + std::to_string(s.offset) + "}";
          sub += "}";
          string out = ws_frame(1, kConnect, sizeof kConnect - 1) + ws_frame(1, sub.data(), sub.size());
          send_sub(s, out);
        } else {
          mark_ready(s, now);
        }
      } else if (o.target != Target::pushwire) {
        mark_ready(s, now);
      }
      if (!rest.empty()) feed(s, rest.data(), rest.size(), now);
      return;
    }
    if (s.tp == Tp::poll) { s.in.append(d, n); on_poll_data(s, now); return; }
    if (s.stalled && s.ready && phase < STALL_DRAIN) return;  // not reading (deleted from epoll)
    if (s.tp == Tp::ws) {
      if (s.in.empty()) {
        size_t used = parse_ws(s, d, n, now);
        if (used < n && s.fd >= 0) s.in.assign(d + used, n - used);
      } else {
        s.in.append(d, n);
        size_t used = parse_ws(s, s.in.data(), s.in.size(), now);
        if (s.fd >= 0) s.in.erase(0, used);
      }
    } else {
      if (s.chunked) dechunk(s, d, n, now);
      else feed_sse(s, d, n, now);
    }
  }

  void dechunk(Sub& s, const char* d, size_t n, int64_t now) {
    const char* p = d;
    const char* e = d + n;
    while (p < e && s.fd >= 0) {
      if (s.chunk_state == 1) {
        size_t take = size_t(std::min<uint64_t>(s.chunk_left, uint64_t(e - p)));
        feed_sse(s, p, take, now);
        p += take;
        s.chunk_left -= take;
        if (!s.chunk_left) s.chunk_state = 2;
      } else {
        // size line or the CRLF after data: accumulate in s.in until a full line
        const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
        if (!nl) { s.in.append(p, size_t(e - p)); return; }
        s.in.append(p, size_t(nl - p));
        p = nl + 1;
        if (s.chunk_state == 2) { s.chunk_state = 0; s.in.clear(); continue; }
        uint64_t sz = std::strtoull(s.in.c_str(), nullptr, 16);
        s.in.clear();
        if (sz == 0) { s.chunk_state = 3; sub_closed(s, now, "stream ended"); return; }
        s.chunk_left = sz;
        s.chunk_state = 1;
      }
    }
  }

  void feed_sse(Sub& s, const char* d, size_t n, int64_t now) {
    const char* p = d;
    const char* e = d + n;
    if (!s.body.empty()) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
      if (!nl) { s.body.append(p, n); return; }
      s.body.append(p, size_t(nl - p));
      string line;
      line.swap(s.body);
      sse_line(s, line.data(), line.data() + line.size(), now);
      p = nl + 1;
    }
    while (p < e && s.fd >= 0) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
      if (!nl) { s.body.assign(p, size_t(e - p)); return; }
      sse_line(s, p, nl, now);
      p = nl + 1;
    }
  }

  void sse_line(Sub& s, const char* b, const char* e, int64_t now) {
    if (e > b && e[-1] == '\r') --e;
    if (b == e) { s.ev_has_id = false; return; }  // end of event
    if (*b == ':') return;
    if (e - b >= 5 && std::memcmp(b, "data:", 5) == 0) {
      b += 5;
      if (b < e && *b == ' ') ++b;
      if (s.ev_has_id) s.last_id = s.ev_id;
      if (o.target == Target::pushwire) pw_frame(s, b, e, now);
      else payload(s, b, e, now);
      return;
    }
    if (e - b >= 3 && std::memcmp(b, "id:", 3) == 0) {
      b += 3;
      if (b < e && *b == ' ') ++b;
      s.ev_id.assign(b, size_t(e - b));
      s.ev_has_id = true;
      return;
    }
  }

  size_t parse_ws(Sub& s, const char* p, size_t n, int64_t now) {
    size_t pos = 0;
    while (n - pos >= 2 && s.fd >= 0) {
      uint8_t b0 = uint8_t(p[pos]), b1 = uint8_t(p[pos + 1]);
      uint64_t len = b1 & 0x7f;
      size_t hl = 2;
      if (len == 126) {
        if (n - pos < 4) break;
        len = (uint64_t(uint8_t(p[pos + 2])) << 8) | uint8_t(p[pos + 3]);
        hl = 4;
      } else if (len == 127) {
        if (n - pos < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | uint8_t(p[pos + 2 + i]);
        hl = 10;
      }
      if (b1 & 0x80) { sub_closed(s, now, "masked server frame"); return pos; }  // RFC 6455 5.1
      if (len > (64u << 20)) { sub_closed(s, now, "frame too large"); return pos; }
      if (n - pos < hl + len) break;
      const char* pl = p + pos + hl;
      pos += hl + size_t(len);
      ws_frame_in(s, b0, pl, size_t(len), now);
    }
    return pos;
  }

  void ws_frame_in(Sub& s, uint8_t b0, const char* pl, size_t len, int64_t now) {
    uint8_t op = b0 & 0x0f;
    bool fin = b0 & 0x80;
    if (op == 1 || op == 2 || op == 0) {
      if (!fin || op == 0) {
        s.body.append(pl, len);
        if (!fin) return;
        string msg;
        msg.swap(s.body);
        ws_message(s, msg.data(), msg.size(), now);
        return;
      }
      ws_message(s, pl, len, now);
    } else if (op == 8) {
      if (len >= 2) s.close_code = uint16_t((uint8_t(pl[0]) << 8) | uint8_t(pl[1]));
      if (s.stalled) ++s.stall_frames;
      char why[48];
      std::snprintf(why, sizeof why, "close frame %u", s.close_code);
      sub_closed(s, now, why);
    } else if (op == 9) {
      string pong = ws_frame(10, pl, len);
      send_sub(s, pong);
    }
  }

  void ws_message(Sub& s, const char* p, size_t n, int64_t now) {
    const char* e = p + n;
    if (o.target == Target::pushwire && !o.pusher_key.empty()) {
      pusher_message(s, p, e, now);
    } else if (o.target == Target::pushwire) {
      while (p < e && s.fd >= 0) {
        const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
        const char* le = nl ? nl : e;
        if (le > p) pw_frame(s, p, le, now);
        p = nl ? nl + 1 : e;
      }
    } else if (o.target == Target::nchan && o.nchan_meta) {
      // ws+meta.nchan: "id: <id>\ncontent-type: <type>\n\n<body>"
      const char* hb = find(p, e, "\n\n");
      if (!hb) return;
      if (e - p > 4 && std::memcmp(p, "id: ", 4) == 0) {
        const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
        s.last_id.assign(p + 4, size_t(nl - p - 4));
      }
      payload(s, hb + 2, e, now);
    } else {
      payload(s, p, e, now);
    }
  }

  // One Pusher message (one per WebSocket message): `{"event":…,"channel":…,"data":"<JSON as a
  // string>"}`. The payload is the data string, unescaped.
  void pusher_message(Sub& s, const char* b, const char* e, int64_t now) {
    static constexpr string_view kInternal = "{\"event\":\"pusher";
    if (size_t(e - b) >= kInternal.size() && std::memcmp(b, kInternal.data(), kInternal.size()) == 0) {
      string_view m(b, size_t(e - b));
      if (m.find("subscription_succeeded") != string_view::npos) mark_ready(s, now);
      else if (m.find("\"pusher:ping\"") != string_view::npos) {
        static const char kPong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
        send_sub(s, ws_frame(1, kPong, sizeof kPong - 1));
      } else if (m.find("pusher:error") != string_view::npos || m.find("subscription_error") != string_view::npos) {
        note_error("pusher: " + string(m.substr(0, 200)));
      }
      return;
    }
    const char* d = find(b, e, "\"data\":\"");
    if (!d) { ++bad; return; }
    d += 8;
    unescaped.clear();
    for (; d < e && *d != '"'; ++d) {
      if (*d == '\\' && d + 1 < e) ++d;   // the payload's escapes are \" and \\ only
      unescaped.push_back(*d);
    }
    payload(s, unescaped.data(), unescaped.data() + unescaped.size(), now);
  }
  string unescaped;

  // One Pushwire protocol frame (a JSON object on one line).
  void pw_frame(Sub& s, const char* b, const char* e, int64_t now) {
    static constexpr string_view kMsg = "{\"type\":\"message\"";
    if (size_t(e - b) >= kMsg.size() && std::memcmp(b, kMsg.data(), kMsg.size()) == 0) {
      pw_message(s, b, e, now);
      return;
    }
    string type;
    if (!field_str(b, e, "\"type\":\"", type)) { ++bad; return; }
    if (type == "message") { pw_message(s, b, e, now); return; }
    if (type == "subscribed") {
      string ep;
      uint64_t off = 0;
      if (field_str(b, e, "\"epoch\":\"", ep) && field_u64(b, e, "\"offset\":", off)) {
        if (!s.have_pos || ep != s.epoch) { s.epoch = ep; s.offset = off; s.have_pos = true; }
      }
      if (find(b, e, "\"recovered\":false")) { ++recovered_false; note_error("subscribed with recovered:false"); }
      mark_ready(s, now);
    } else if (type == "disconnect") {
      uint64_t code = 0, after = 0;
      field_u64(b, e, "\"code\":", code);
      s.disconnect_code = uint16_t(code);
      if (field_u64(b, e, "\"after\":", after)) s.advice_ms = int64_t(after);
      else s.advice_ms = 0;
      s.got_advice = true;
      if (s.stalled) ++s.stall_frames;
    } else if (type == "error") {
      ++errors_frames;
      note_error("error frame: " + string(b, size_t(std::min<std::ptrdiff_t>(e - b, 200))));
    } else if (type == "connected" && s.tp == Tp::poll) {
      // long-poll: the opening poll's `connected` assigns the lease id, sent back as client=
      string id;
      if (field_str(b, e, "\"client\":\"", id)) s.client_id = id;
    }
  }

  void pw_message(Sub& s, const char* b, const char* e, int64_t now) {
    // The envelope precedes "data"; look for epoch/offset only in the first bytes.
    const char* dpos = find(b, std::min(e, b + 400), "\"data\":");
    const char* he = dpos ? dpos : std::min(e, b + 400);
    uint64_t off = 0;
    if (field_u64(b, he, "\"offset\":", off)) {
      if (o.storm != Storm::none || s.tp == Tp::ws) {
        const char* ep = find(b, he, "\"epoch\":\"");
        if (ep) {
          ep += 9;
          const char* q = static_cast<const char*>(memchr(ep, '"', size_t(he - ep)));
          if (q && (size_t(q - ep) != s.epoch.size() || std::memcmp(ep, s.epoch.data(), s.epoch.size()) != 0)) {
            s.epoch.assign(ep, size_t(q - ep));
            s.offset = 0;
          }
        }
      }
      if (!payload(s, dpos ? dpos : b, e, now)) return;  // duplicate: position unchanged
      if (s.have_pos && off <= s.offset && s.offset && !last_ooo) ++ooo;  // against the server's own order
      if (s.have_pos && off > s.offset + 1) offset_gaps += off - s.offset - 1;  // the server skipped offsets
      s.offset = std::max(s.offset, off);
      s.have_pos = true;
      return;
    }
    payload(s, b, e, now);
  }

  // A delivered message body: {"seq":N,"ts":T,"p":"..."}. Returns false for a duplicate.
  bool payload(Sub& s, const char* b, const char* e, int64_t now) {
    uint64_t seq = 0, ts = 0;
    if (!field_u64(b, e, "\"seq\":", seq) || !field_u64(b, e, "\"ts\":", ts)) { ++bad; return true; }
    if (s.stalled) { ++s.stall_frames; return true; }
    if (seq == 0 || seq > o.messages) { ++bad; return true; }
    uint32_t ch = uint32_t((seq - 1) % o.channels);
    if (ch != s.channel) { ++bad; return true; }
    uint64_t bit = (seq - 1) / o.channels;
    uint64_t& word = s.seen[bit >> 6];
    uint64_t m = 1ull << (bit & 63);
    if (word & m) { ++dup; return false; }
    word |= m;
    ++s.unique;
    last_ooo = seq <= s.maxw;
    if (last_ooo) ++ooo;  // seq was acknowledged before a message this subscriber already has was sent
    s.maxw = std::max(s.maxw, w[seq]);
    ++delivered;
    lat.add(now - int64_t(ts));
    t_last_delivery = now;
    // Caught up: a message published after the storm arrived (in order, so every earlier one did).
    // After a kill only the killed node's subscribers count.
    if (storm_fired && !s.caught_up && seq > storm_s0 && (o.storm != Storm::kill || s.t_drop >= t_storm)) {
      s.caught_up = true;
      s.t_caught = now;
      ++storm_caught;
      storm_catchup_ns.push_back(now - t_storm);
    }
    return true;
  }

  // Long-poll: complete HTTP responses in s.in.
  void on_poll_data(Sub& s, int64_t now) {
    for (;;) {
      size_t he = s.in.find("\r\n\r\n");
      if (he == string::npos) return;
      const char* b = s.in.data();
      const char* hend = b + he + 2;
      int status = s.in.size() > 12 ? std::atoi(b + 9) : 0;
      string_view te = header_value(b, hend, "transfer-encoding:");
      string bodytxt;
      size_t total;
      if (te.find("chunked") != string_view::npos) {
        size_t p = he + 4;
        bool done = false;
        for (;;) {
          size_t nl = s.in.find("\r\n", p);
          if (nl == string::npos) return;
          uint64_t sz = std::strtoull(s.in.c_str() + p, nullptr, 16);
          if (sz == 0) {
            size_t end = s.in.find("\r\n", nl + 2);
            if (end == string::npos) return;
            total = end + 2;
            done = true;
            break;
          }
          if (s.in.size() < nl + 2 + sz + 2) return;
          bodytxt.append(s.in, nl + 2, sz);
          p = nl + 2 + sz + 2;
        }
        if (!done) return;
      } else {
        string_view cl = header_value(b, hend, "content-length:");
        size_t len = cl.empty() ? 0 : size_t(std::strtoull(string(cl).c_str(), nullptr, 10));
        if (s.in.size() < he + 4 + len) return;
        bodytxt.assign(s.in, he + 4, len);
        total = he + 4 + len;
      }
      string headers(b, size_t(hend - b));
      s.in.erase(0, total);
      const char* hb = headers.data();
      const char* hx = hb + headers.size();
      if (o.target == Target::pushwire) {
        if (status != 200) {
          if (status == 503 && o.expect_refusal) { s.refused = true; ++refused_503; }
          note_error("poll HTTP status " + std::to_string(status));
          sub_closed(s, now, "poll status");
          return;
        }
        string_view cur = header_value(hb, hx, "pushwire-cursor:");
        const char* p = bodytxt.data();
        const char* e = p + bodytxt.size();
        while (p < e) {
          const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(e - p)));
          const char* le = nl ? nl : e;
          if (le > p) pw_frame(s, p, le, now);
          p = nl ? nl + 1 : e;
        }
        if (!cur.empty()) s.last_id.assign(cur);
        s.poll_open = true;
      } else {
        if (status == 200) {
          string_view lm = header_value(hb, hx, "last-modified:");
          string_view et = header_value(hb, hx, "etag:");
          s.lp_mod.assign(lm);
          s.lp_etag.assign(et);
          payload(s, bodytxt.data(), bodytxt.data() + bodytxt.size(), now);
        } else if (status != 304 && status != 408) {
          note_error("nchan poll HTTP status " + std::to_string(status));
        }
      }
      if (s.fd < 0) return;
      if (s.st == St::handshake) { s.st = St::open; }
      if (phase >= DONE) return;
      string req = poll_request(s);
      send_sub(s, req);
    }
  }

  // --- publisher -----------------------------------------------------------------------------------------
  bool open_pub(uint32_t i) {
    HttpConn& c = pubs[i];
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&pub_dst), sizeof pub_dst) != 0) { ::close(fd); return false; }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c.fd = fd;
    ++c.gen;
    c.in.clear();
    c.out.clear();
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.u64 = pub_tag(i, c.gen);
    epoll_ctl(ep_pub, EPOLL_CTL_ADD, fd, &e);
    return true;
  }

  string publish_request(uint64_t seq, int64_t ts) {
    uint32_t ch = uint32_t((seq - 1) % o.channels);
    char head[96];
    int hl = std::snprintf(head, sizeof head, "{\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"p\":\"", seq, ts);
    size_t pad = o.size > size_t(hl) + 2 ? o.size - size_t(hl) - 2 : 0;
    string body;
    if (o.target == Target::pushwire) {
      body.reserve(o.size + 96);
      body = "{\"channel\":\"" + chan_names[ch] + "\",\"data\":";
      body.append(head, size_t(hl));
      body.append(payload_pad, 0, pad);
      body += "\"}";
      if (o.storm != Storm::none) body += ",\"idempotency_key\":\"lg" + o.channel_prefix + "-" + std::to_string(seq) + "\"";
      body += "}";
    } else {
      body.append(head, size_t(hl));
      body.append(payload_pad, 0, pad);
      body += "\"}";
    }
    string path = o.target == Target::pushwire ? "/api/publish"
                : o.target == Target::nchan ? "/pub/" + chan_names[ch] : "/pub?channel=" + chan_names[ch];
    string r = "POST " + path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.pub_port) +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (o.target == Target::pushwire) r += "Authorization: Bearer " + o.api_key + "\r\n";
    r += "\r\n";
    r += body;
    return r;
  }

  void http_send(uint32_t i, const string& req) {
    HttpConn& c = pubs[i];
    c.busy = true;
    c.last_req = req;
    c.t_sent = mono_ns();
    if (c.fd < 0 && !open_pub(i)) { note_error("publisher connect failed"); return; }
    ssize_t r = ::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL);
    if (r < 0) r = 0;
    if (size_t(r) < req.size()) {
      c.out.assign(req, size_t(r), string::npos);
      pub_mod(i, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
  }
  void pub_mod(uint32_t i, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.u64 = pub_tag(i, pubs[i].gen);
    epoll_ctl(ep_pub, EPOLL_CTL_MOD, pubs[i].fd, &e);
  }

  bool send_publish(uint32_t i) {
    if (sent >= o.messages) return false;
    uint64_t seq = ++sent;
    w[seq] = ack_prefix;
    pubs[i].seq = seq;
    http_send(i, publish_request(seq, mono_ns()));
    return true;
  }

  void on_pub_event(uint32_t i, uint32_t events, int64_t now) {
    HttpConn& c = pubs[i];
    if ((events & EPOLLOUT) && !c.out.empty()) {
      ssize_t r = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (r > 0) c.out.erase(0, size_t(r));
      if (c.out.empty()) pub_mod(i, EPOLLIN | EPOLLRDHUP);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) return;
    for (;;) {
      ssize_t r = ::recv(c.fd, rbuf.data(), rbuf.size(), 0);
      if (r > 0) { c.in.append(rbuf.data(), size_t(r)); if (size_t(r) == rbuf.size()) continue; }
      bool eof = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
      while (parse_pub_response(i, now)) {}
      if (eof) {
        ::close(c.fd);
        c.fd = -1;
        if (c.busy) {  // the request is lost with the connection: send it again on a new one
          ++pub_resent;
          if (pub_resent > 100) { note_error("publisher connection keeps failing"); c.busy = false; ++pub_errors; return; }
          string req = c.last_req;
          http_send(i, req);
        }
      }
      return;
    }
  }

  bool parse_pub_response(uint32_t i, int64_t now) {
    HttpConn& c = pubs[i];
    size_t he = c.in.find("\r\n\r\n");
    if (he == string::npos) return false;
    const char* b = c.in.data();
    const char* hend = b + he + 2;
    int status = c.in.size() > 12 ? std::atoi(b + 9) : 0;
    size_t total;
    string body;
    string_view te = header_value(b, hend, "transfer-encoding:");
    if (te.find("chunked") != string_view::npos) {
      size_t p = he + 4;
      for (;;) {
        size_t nl = c.in.find("\r\n", p);
        if (nl == string::npos) return false;
        uint64_t sz = std::strtoull(c.in.c_str() + p, nullptr, 16);
        if (sz == 0) {
          size_t end = c.in.find("\r\n", nl + 2);
          if (end == string::npos) return false;
          total = end + 2;
          break;
        }
        if (c.in.size() < nl + 2 + sz + 2) return false;
        body.append(c.in, nl + 2, sz);
        p = nl + 2 + sz + 2;
      }
    } else {
      string_view cl = header_value(b, hend, "content-length:");
      size_t len = cl.empty() ? 0 : size_t(std::strtoull(string(cl).c_str(), nullptr, 10));
      if (c.in.size() < he + 4 + len) return false;
      body.assign(c.in, he + 4, len);
      total = he + 4 + len;
    }
    c.in.erase(0, total);
    c.busy = false;
    bool ok = status >= 200 && status < 300;
    if (c.seq == 0) {  // API request (disconnect)
      storm_api_status = uint32_t(status);
      storm_api_body = body.substr(0, 200);
      if (!ok) note_error("API call HTTP " + std::to_string(status) + ": " + body.substr(0, 200));
      return true;
    }
    uint64_t seq = c.seq;
    c.seq = 0;
    if (!ok) {
      ++pub_errors;
      note_error("publish HTTP " + std::to_string(status) + ": " + body.substr(0, 200));
    } else {
      ++acks;
      acked[seq] = 1;
      ++acked_in_channel[(seq - 1) % o.channels];
      while (ack_prefix + 1 <= o.messages && acked[ack_prefix + 1]) ++ack_prefix;
    }
    if (phase == PUBLISH && o.mode == "closed" && i < npub_pub) send_publish(i);
    (void)now;
    return true;
  }

  // --- phases ----------------------------------------------------------------------------------------------
  void start_publish(int64_t now) {
    phase = PUBLISH;
    t_phase = now;
    win0_s = sample_procs(pids, true);
    m0 = machine_stat();
    getrusage(RUSAGE_SELF, &ru0);
    t_win0 = mono_ns();
    if (o.messages == 0) { finish_publish(now); return; }
    if (o.mode == "closed")
      for (uint32_t i = 0; i < npub_pub; ++i) send_publish(i);
  }

  uint64_t expected_total() const {
    uint64_t t = 0;
    for (uint32_t c = 0; c < o.channels; ++c) t += live_in_channel[c] * acked_in_channel[c];
    return t;
  }

  void finish_publish(int64_t now) {
    phase = DRAIN;
    t_pub_done = now;
    t_phase = now;
  }

  void end_window(int64_t now) {
    t_win1 = mono_ns();
    win1_s = sample_procs(pids, true);
    if (o.storm == Storm::kill && storm_fired) {
      win1_s.utime += killed_s.utime;
      win1_s.stime += killed_s.stime;
      win1_s.run_ns += killed_s.run_ns;
    }
    m1 = machine_stat();
    getrusage(RUSAGE_SELF, &ru1);
    if (o.stall) {
      phase = STALL_DRAIN;
      t_phase = now;
      for (Sub& s : subs)
        if (s.stalled && s.fd >= 0) {
          epoll_event e{};
          e.events = s.ready ? EPOLLIN | EPOLLRDHUP : EPOLLIN | EPOLLOUT | EPOLLRDHUP;
          e.data.u64 = sub_tag(s);
          if (epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &e) != 0 && errno == EEXIST) epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &e);
          if (getenv("LOADGEN_DEBUG")) std::fprintf(stderr, "stall drain: sub %u fd %d ready %d st %d\n", s.idx, s.fd, s.ready, int(s.st));
        }
    } else {
      phase = DONE;
    }
  }

  void tick(int64_t now) {
    // RSS sampling for the peak, every 100 ms.
    if (!pids.empty() && now >= next_sample) {
      next_sample = now + 100'000'000;
      ProcSample p = sample_procs(pids, false);
      rss_peak = std::max(rss_peak, p.rss_kb);
    }
    while (!reconnect_q.empty() && reconnect_q.top().first <= now && phase < STALL_DRAIN) {
      uint32_t i = reconnect_q.top().second;
      reconnect_q.pop();
      Sub& s = subs[i];
      if (s.st == St::waiting) {
        if (pending >= o.max_pending) { reconnect_q.push({now + 1'000'000, i}); break; }
        start_connect(s);
      }
    }
    if (now - t0 > int64_t(o.timeout_s * 1e9) && phase < DONE) {
      timed_out = true;
      note_error("run timed out");
      if (phase >= PUBLISH && phase <= DRAIN) end_window(now);
      phase = DONE;
      return;
    }
    switch (phase) {
      case CONNECT: {
        double el = secs(t0, now);
        uint64_t allowed = std::min<uint64_t>(o.subs, uint64_t(el * o.connect_rate) + 1);
        while (started < allowed && pending < o.max_pending) start_connect(subs[started++]);
        if (resolved >= o.subs || now - t0 > int64_t(o.connect_timeout_s * 1e9)) {
          t_connect_done = now;
          if (resolved < o.subs) note_error("connect phase timed out");
          phase = IDLE;
          t_phase = now;
        }
        break;
      }
      case IDLE:
        if (now - t_phase >= int64_t(o.idle_ms * 1e6)) {
          idle_s = sample_procs(pids, false);
          if (!o.ready_file.empty()) {
            FILE* f = std::fopen(o.ready_file.c_str(), "w");
            if (f) { std::fprintf(f, "%u\n", ready_count); std::fclose(f); }
          }
          phase = WAIT_GO;
          t_phase = now;
        }
        break;
      case WAIT_GO: {
        struct stat st;
        bool go = o.go_file.empty() || ::stat(o.go_file.c_str(), &st) == 0;
        if (!go && now - t_phase > int64_t(o.go_timeout_s * 1e9)) { note_error("go file never appeared"); go = true; }
        if (go) {
          if (o.expect_refusal) { t_win0 = t_win1 = now; phase = DONE; break; }
          for (uint32_t i = 0; i < pubs.size(); ++i) if (pubs[i].fd < 0) open_pub(i);
          start_publish(now);
        }
        break;
      }
      case PUBLISH: {
        if (o.mode == "rate") {
          uint64_t due = std::min<uint64_t>(o.messages, uint64_t(secs(t_win0, now) * o.rate) + 1);
          while (sent < due) {
            uint32_t freec = UINT32_MAX;
            for (uint32_t i = 0; i < npub_pub; ++i) if (!pubs[i].busy && pubs[i].seq == 0) { freec = i; break; }
            if (freec == UINT32_MAX) { ++rate_lag; break; }
            send_publish(freec);
          }
        }
        if (o.storm != Storm::none && !storm_fired && now - t_win0 >= int64_t(o.storm_at_ms * 1e6)) fire_storm(now);
        bool all_sent = sent >= o.messages;
        bool idle = true;
        for (auto& c : pubs) if (c.busy) { idle = false; break; }
        if (all_sent && idle) finish_publish(now);
        break;
      }
      case DRAIN:
        if (delivered >= expected_total() && (o.storm == Storm::none || storm_back >= storm_dropped)) { end_window(t_last_delivery ? now : now); break; }
        if (now - t_phase > int64_t(o.drain_ms * 1e6)) { note_error("drain timed out: deliveries missing"); end_window(now); }
        break;
      case STALL_DRAIN:
        if (now - t_phase > int64_t(o.stall_drain_ms * 1e6)) phase = DONE;
        break;
      default: break;
    }
  }

  void fire_storm(int64_t now) {
    storm_fired = true;
    t_storm = now;
    storm_s0 = sent;
    if (o.storm == Storm::kill) {
      // The node and its children (nginx's workers): each subscriber notices on its own socket.
      std::vector<int> victims = expand_pids({o.kill_pid});
      killed_s = sample_procs(victims, true);
      for (int p : victims) ::kill(p, SIGKILL);
    } else if (o.storm == Storm::client) {
      for (Sub& s : subs) {
        if (s.fd < 0 || !s.ready) continue;
        hard_close(s.fd);
        s.fd = -1;
        s.ready = false;
        s.st = St::waiting;
        s.t_drop = now;
        ++s.reconnects;
        s.attempts = 0;
        ++storm_dropped;
        reconnect_q.push({now, s.idx});
      }
    } else {
      // POST /api/disconnect on a spare API connection.
      uint32_t i = uint32_t(pubs.size() - 1);
      string body = "{\"all\":true,\"reconnect\":true,\"after_ms\":0,\"jitter_ms\":" + std::to_string(o.jitter_ms) + "}";
      string r = "POST /api/disconnect HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.pub_port) +
                 "\r\nContent-Type: application/json\r\nAuthorization: Bearer " + o.api_key +
                 "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      pubs[i].seq = 0;
      http_send(i, r);
    }
  }

  // --- main loop ---------------------------------------------------------------------------------------------
  int run() {
    init();
    t0 = mono_ns();
    before = sample_procs(pids, false);
    rss_peak = before.rss_kb;
    // Publisher connections: K for the closed loop, a pool for the fixed rate, one spare for the API.
    uint32_t npub = o.mode == "rate" ? std::max<uint32_t>(4, uint32_t(std::ceil(o.rate / 50.0))) : o.inflight;
    npub = std::min<uint32_t>(npub, 64);
    pubs.resize(npub + (o.storm == Storm::server ? 1 : 0));
    npub_pub = npub;
    for (uint32_t i = 0; i < o.stall; ++i) subs[o.subs - 1 - i].stalled = true;  // the last ones stall
    live_in_channel.assign(o.channels, 0);
    for (Sub& s : subs) if (!s.stalled) ++live_in_channel[s.channel];
    std::vector<epoll_event> evs(4096);
    // Subscriber read policy. By default (--read-interval-us 0, in every mode) each subscriber
    // socket is read as soon as epoll reports it readable, as a browser does: one recv (and, on
    // loopback, the ACK it sends) per wakeup, so a server gains from batching only what piles up
    // while a reader is genuinely busy. With --read-interval-us D > 0 the generator is a "late
    // reader": while publishing, subscriber sockets are read at most once per D us, so frames pile
    // up in the socket buffers and each recv takes whatever accumulated. That cuts the recvs and
    // ACKs per delivery (generator and server CPU alike) and is not what a browser does;
    // compare.mjs runs it only as the separately named lateread-* scenarios. The publisher's sockets (own epoll set) are always served at once,
    // and once every publish is acknowledged (DRAIN) the tail is read at once either way.
    const int64_t interval_ns = int64_t(o.read_interval_us * 1000);
    int64_t next_sub_read = 0;
    while (phase != DONE) {
      int64_t now = mono_ns();
      tick(now);
      if (phase == DONE) break;
      int64_t wait_ns = (phase == CONNECT || phase == PUBLISH || !reconnect_q.empty()) ? 1'000'000 : 20'000'000;
      // Only while publishing: once every publish is acknowledged (DRAIN) the tail is read at once,
      // so the end of the measured window is exact.
      bool defer = interval_ns > 0 && phase == PUBLISH && now < next_sub_read;
      if (defer) {
        wait_ns = std::min(wait_ns, next_sub_read - now);
        serve_pubs(wait_ns);
        continue;
      }
      timespec ts{time_t(wait_ns / 1000000000), long(wait_ns % 1000000000)};
      int n = epoll_pwait2(ep, evs.data(), int(evs.size()), &ts, nullptr);
      bool pubs_ready = false;
      for (int round = 0; n > 0; ++round) {
        now = mono_ns();
        for (int k = 0; k < n; ++k) {
          if (evs[k].data.u64 == kPubSet) { pubs_ready = true; continue; }
          handle_sub_event(evs[k], now);
        }
        if (n < int(evs.size()) || round > 16) break;
        n = epoll_wait(ep, evs.data(), int(evs.size()), 0);
      }
      if (pubs_ready) serve_pubs(0);
      if (interval_ns > 0 && phase == PUBLISH) next_sub_read = mono_ns() + interval_ns;
    }
    return report();
  }

  void serve_pubs(int64_t wait_ns) {
    epoll_event pe[64];
    timespec ts{time_t(wait_ns / 1000000000), long(wait_ns % 1000000000)};
    int n = epoll_pwait2(ep_pub, pe, 64, &ts, nullptr);
    int64_t now = mono_ns();
    for (int k = 0; k < n; ++k) {
      uint64_t tag = pe[k].data.u64;
      uint32_t idx = uint32_t(tag & 0xffffffff);
      uint32_t gen = uint32_t((tag >> 32) & 0x7fffffff);
      if (idx < pubs.size() && (pubs[idx].gen & 0x7fffffff) == gen && pubs[idx].fd >= 0) on_pub_event(idx, pe[k].events, now);
    }
  }

  void handle_sub_event(const epoll_event& e, int64_t now) {
    uint64_t tag = e.data.u64;
    uint32_t ev = e.events;
    uint32_t idx = uint32_t(tag & 0xffffffff);
    uint32_t gen = uint32_t((tag >> 32) & 0x7fffffff);
    if (idx >= subs.size()) return;
    Sub& s = subs[idx];
    if ((s.gen & 0x7fffffff) != gen || s.fd < 0) return;
    if (ev & EPOLLOUT) on_sub_writable(s);
    if (s.fd < 0) return;
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) on_sub_readable(s, now);
  }

  // --- report ------------------------------------------------------------------------------------------------
  int report() {
    uint64_t expected = expected_total();
    uint64_t lost = expected > delivered ? expected - delivered : 0;
    double win = t_win0 && t_win1 > t_win0 ? secs(t_win0, t_win1) : 0;
    if (!win) { win0_s = win1_s = ProcSample{}; m0 = m1 = MachineStat{}; ru0 = ru1; }
    // deliveries/s over the time from the first publish to the last delivery
    double dwin = t_last_delivery > t_win0 ? secs(t_win0, t_last_delivery) : win;
    double dps = dwin > 0 ? double(delivered) / dwin : 0;
    long tick_hz = sysconf(_SC_CLK_TCK);
    double su = double(win1_s.utime - win0_s.utime) / double(tick_hz);
    double ss = double(win1_s.stime - win0_s.stime) / double(tick_hz);
    double srun = double(win1_s.run_ns - win0_s.run_ns) / 1e9;
    double scpu = srun > 0 ? srun : su + ss;
    double us_per = delivered ? scpu * 1e6 / double(delivered) : 0;
    double lg_win = cpu_of(ru1) - cpu_of(ru0);
    rusage rall;
    getrusage(RUSAGE_SELF, &rall);
    double idle_frac = m1.total > m0.total ? double(m1.idle - m0.idle) / double(m1.total - m0.total) : 1;
    bool saturated = idle_frac < 0.05 && win > 0;
    double conn_s = t_last_ready > t_first_connect ? secs(t_first_connect, t_last_ready) : 0;
    double conn_rate = conn_s > 0 ? double(ready_count) / conn_s : 0;
    int64_t rss_per_conn = ready_count && idle_s.ok ? (int64_t(idle_s.rss_kb) - int64_t(before.rss_kb)) * 1024 / int64_t(ready_count) : 0;
    uint64_t stalled_n = 0, stall_frames = 0;
    stall_closed = stall_4008 = 0;
    std::vector<uint32_t> stall_codes;
    for (Sub& s : subs)
      if (s.stalled) {
        ++stalled_n;
        stall_frames += s.stall_frames;
        uint16_t c = s.close_code ? s.close_code : s.disconnect_code;
        if (s.fd < 0 || c) ++stall_closed;
        if (c == 4008) ++stall_4008;
        stall_codes.push_back(c);
      }
    std::vector<string> warnings;
    if (saturated) warnings.push_back("machine ran out of idle CPU during the publish window (idle " + std::to_string(int(idle_frac * 100)) + "%): deliveries/s no longer ranks servers; CPU per delivery still does");
    if (scpu > 0 && lg_win > 0.5 * scpu) warnings.push_back("load generator used more than half the server's CPU in the window");
    if (rate_lag) warnings.push_back("publisher could not hold the fixed rate (" + std::to_string(rate_lag) + " ticks without a free connection)");
    if (pids.empty()) warnings.push_back("no --server-pid: no RSS or server CPU figures");
    bool ok = lost == 0 && dup == 0 && ooo == 0 && pub_errors == 0 && !timed_out && failed == 0 && bad == 0;
    if (o.expect_refusal) ok = resolved >= o.subs && !timed_out;

    auto pct = [&](double p) { return double(lat.pct(p)) / 1000.0; };
    std::sort(storm_returns_ns.begin(), storm_returns_ns.end());
    std::sort(storm_catchup_ns.begin(), storm_catchup_ns.end());
    auto vp = [](const std::vector<int64_t>& v, double p) -> double {
      if (v.empty()) return 0;
      size_t i = std::min(v.size() - 1, size_t(p * double(v.size())));
      return double(v[i]) / 1e6;
    };
    string tps;
    for (size_t i = 0; i < o.transports.size(); ++i) { if (i) tps += ","; tps += tp_name(o.transports[i]); }

    char buf[8192];
    string j = "{";
    auto add = [&](const char* fmt, auto... a) { std::snprintf(buf, sizeof buf, fmt, a...); j += buf; };
    add("\"label\":\"%s\",\"target\":\"%s\",\"transport\":\"%s\",\"subscribers\":%u,\"channels\":%u,", o.label.c_str(), target_name(o.target), tps.c_str(), o.subs, o.channels);
    add("\"message_size\":%u,\"messages\":%" PRIu64 ",\"mode\":\"%s\",\"inflight\":%u,\"rate\":%g,", o.size, o.messages, o.mode.c_str(), o.inflight, o.rate);
    add("\"published\":%" PRIu64 ",\"publish_errors\":%" PRIu64 ",\"publish_resent\":%" PRIu64 ",", acks, pub_errors, pub_resent);
    add("\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64 ",\"out_of_order\":%" PRIu64 ",\"malformed\":%" PRIu64 ",", expected, delivered, lost, dup, ooo, bad);
    add("\"recovered_false\":%" PRIu64 ",\"error_frames\":%" PRIu64 ",\"unexpected_disconnects\":%" PRIu64 ",", recovered_false, errors_frames, unexpected_disconnects);
    add("\"window_s\":%.4f,\"deliveries_per_s\":%.1f,\"publishes_per_s\":%.1f,", win, dps, dwin > 0 ? double(acks) / dwin : 0.0);
    add("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"samples\":%" PRIu64 "},", pct(0.5), pct(0.9), pct(0.99), double(lat.max) / 1000.0, lat.n);
    add("\"connect\":{\"ready\":%u,\"failed\":%u,\"refused\":%u,\"refused_http_503\":%u,\"refused_close_4015\":%u,\"refused_reset\":%u,\"unresolved\":%u,\"seconds\":%.3f,\"rate_per_s\":%.1f},", ready_count, failed, refused, refused_503, refused_4015, refused_reset, o.subs > resolved ? o.subs - resolved : 0, conn_s, conn_rate);
    add("\"rss_kb\":{\"before\":%" PRIu64 ",\"idle\":%" PRIu64 ",\"peak\":%" PRIu64 "},\"rss_per_conn_bytes\":%" PRId64 ",", before.rss_kb, idle_s.rss_kb, rss_peak, rss_per_conn);
    add("\"server_cpu_s\":{\"user\":%.3f,\"sys\":%.3f,\"total\":%.4f},\"server_cpu_us_per_delivery\":%.3f,", su, ss, scpu, us_per);
    add("\"loadgen_cpu_s\":{\"window\":%.4f,\"total\":%.3f},\"loadgen_cpu_us_per_delivery\":%.3f,", lg_win, cpu_of(rall), delivered ? lg_win * 1e6 / double(delivered) : 0.0);
    add("\"read_interval_us\":%.0f,\"machine_idle_frac\":%.3f,\"cpu_saturated\":%s,", o.read_interval_us, idle_frac, saturated ? "true" : "false");
    if (o.stall) {
      string codes;
      for (Sub& s : subs)
        if (s.stalled) codes += (codes.empty() ? "" : ",") + std::to_string(s.close_code) + "/" + std::to_string(s.disconnect_code) + (s.fd < 0 ? "/closed" : "/open");
      add("\"stall\":{\"stalled\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"closed_4008\":%" PRIu64 ",\"frames_when_drained\":%" PRIu64 ",\"rss_growth_kb\":%" PRId64 ",\"close_frame_disconnect_frame\":\"%s\"},",
          stalled_n, stall_closed, stall_4008, stall_frames, int64_t(rss_peak) - int64_t(idle_s.rss_kb), codes.c_str());
    }
    if (o.storm != Storm::none)
      add("\"storm\":{\"kind\":\"%s\",\"dropped\":%u,\"back\":%u,\"caught_up\":%u,\"no_advice\":%u,\"api_status\":%u,\"return_ms\":{\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"max\":%.1f},\"catchup_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}},",
          o.storm == Storm::client ? "client" : o.storm == Storm::kill ? "kill" : "server", storm_dropped, storm_back, storm_caught, storm_no_advice, storm_api_status,
          vp(storm_returns_ns, 0), vp(storm_returns_ns, 0.5), vp(storm_returns_ns, 0.9), storm_returns_ns.empty() ? 0.0 : double(storm_returns_ns.back()) / 1e6,
          vp(storm_catchup_ns, 0.5), vp(storm_catchup_ns, 0.99), storm_catchup_ns.empty() ? 0.0 : double(storm_catchup_ns.back()) / 1e6);
    // Which messages went missing, for the first subscriber that lacks some (diagnostics).
    string missing;
    for (Sub& s : subs) {
      if (s.stalled) continue;
      uint64_t have = acked_in_channel[s.channel];
      if (s.unique >= have) continue;
      int shown = 0;
      for (uint64_t seq = s.channel + 1; seq <= o.messages && shown < 20; seq += o.channels) {
        uint64_t bit = (seq - 1) / o.channels;
        if (!acked[seq] || (s.seen[bit >> 6] >> (bit & 63)) & 1) continue;
        missing += (shown++ ? "," : "") + std::to_string(seq);
      }
      missing = "subscriber " + std::to_string(s.idx) + " (" + tp_name(s.tp) + ") lacks seq " + missing;
      break;
    }
    add("\"offset_gaps\":%" PRIu64 ",\"missing_example\":\"%s\",", offset_gaps, missing.c_str());
    j += "\"warnings\":[";
    for (size_t i = 0; i < warnings.size(); ++i) { if (i) j += ","; j += "\"" + warnings[i] + "\""; }
    j += "],\"first_error\":\"";
    for (char c : first_error) { if (c == '"' || c == '\\') j += '\\'; if (uint8_t(c) >= 0x20) j += c; }
    add("\",\"timed_out\":%s,\"ok\":%s}", timed_out ? "true" : "false", ok ? "true" : "false");

    if (!o.quiet) {
      std::printf("== %s %s %s: %u subs, %u ch, %" PRIu64 " x %u B, %s%s\n", o.label.c_str(), target_name(o.target), tps.c_str(), o.subs, o.channels, o.messages, o.size, o.mode.c_str(),
                  o.mode == "rate" ? (" " + std::to_string(int(o.rate)) + "/s").c_str() : (" K=" + std::to_string(o.inflight)).c_str());
      std::printf("  %-28s %.0f us%s\n", "subscriber read interval", o.read_interval_us, o.read_interval_us > 0 ? " (late reader)" : " (read when readable)");
      std::printf("  %-28s %.0f\n", "deliveries/s", dps);
      std::printf("  %-28s %" PRIu64 " / %" PRIu64 " / %" PRIu64 " (expected %" PRIu64 ", delivered %" PRIu64 ")\n", "lost / dup / out-of-order", lost, dup, ooo, expected, delivered);
      std::printf("  %-28s %.0f / %.0f / %.0f / %.0f\n", "latency us p50/p90/p99/max", pct(0.5), pct(0.9), pct(0.99), double(lat.max) / 1000);
      std::printf("  %-28s %u ready, %u failed, %u refused in %.2f s (%.0f/s)\n", "connect", ready_count, failed, refused, conn_s, conn_rate);
      std::printf("  %-28s %" PRIu64 " / %" PRIu64 " / %" PRIu64 " KB, %" PRId64 " B/conn\n", "server RSS before/idle/peak", before.rss_kb, idle_s.rss_kb, rss_peak, rss_per_conn);
      std::printf("  %-28s %.3f s (user %.2f sys %.2f), %.3f us/delivery\n", "server CPU in window", scpu, su, ss, us_per);
      std::printf("  %-28s %.3f s in window (%.3f us/delivery), %.3f s total\n", "loadgen CPU", lg_win, delivered ? lg_win * 1e6 / double(delivered) : 0.0, cpu_of(rall));
      std::printf("  %-28s %.0f%%%s\n", "machine idle in window", idle_frac * 100, saturated ? "  ** WARNING: no idle CPU left **" : "");
      if (o.storm != Storm::none)
        std::printf("  %-28s dropped %u, back %u, caught up %u; return ms p50 %.0f max %.0f; catch-up ms p50 %.0f max %.0f\n", "storm", storm_dropped, storm_back, storm_caught,
                    vp(storm_returns_ns, 0.5), storm_returns_ns.empty() ? 0.0 : double(storm_returns_ns.back()) / 1e6, vp(storm_catchup_ns, 0.5),
                    storm_catchup_ns.empty() ? 0.0 : double(storm_catchup_ns.back()) / 1e6);
      if (o.stall) std::printf("  %-28s %" PRIu64 " stalled, %" PRIu64 " closed (%" PRIu64 " with 4008), RSS growth %" PRId64 " KB\n", "stalled readers", stalled_n, stall_closed, stall_4008, int64_t(rss_peak) - int64_t(idle_s.rss_kb));
      for (auto& wv : warnings) std::printf("  WARNING: %s\n", wv.c_str());
      if (!first_error.empty()) std::printf("  first error: %s\n", first_error.c_str());
      std::printf("  %s\n", ok ? "OK" : "FAILED");
    }
    std::printf("%s\n", j.c_str());
    std::fflush(stdout);
    if (!o.json_path.empty()) {
      FILE* f = std::fopen(o.json_path.c_str(), "w");
      if (f) { std::fprintf(f, "%s\n", j.c_str()); std::fclose(f); }
    }
    for (Sub& s : subs) if (s.fd >= 0) hard_close(s.fd);
    for (auto& c : pubs) if (c.fd >= 0) ::close(c.fd);
    return ok ? 0 : 1;
  }
};

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Loadgen lg;
  lg.o = parse_args(argc, argv);
  return lg.run();
}
