// Hostile input, table-driven (issue 18, "Must deliver" 4): malformed HTTP, malformed WebSocket
// frames and malformed protocol commands, written byte for byte to the real server binary over raw
// sockets. Each row asserts the documented answer (docs/protocol.md "Hostile input"): an HTTP
// status, a WebSocket close code or a protocol error code, and it must come at once (well inside
// the request timeout, which is set long here). After every row the server must still answer
// /healthz and /api/stats, and its descriptor count (/proc/<pid>/fd) must come back to what it was
// before the row.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/server/raw_peer.hpp"
#include "tests/server/spawned_server.hpp"
#include "tests/server/test_client.hpp"

namespace {

using namespace test;

constexpr std::size_t header_limit = 2048;
constexpr int answer_ms = 3000;   // "at once": the request timeout below is 30 s

class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv = new spawned_server({"--api-key", "k", "--log-level", "error", "--threads", "2",
                              "--header-limit", std::to_string(header_limit), "--body-limit", "8192",
                              "--max-message-bytes", "1024", "--max-batch", "4", "--max-token-bytes", "512",
                              "--request-timeout-ms", "30000", "--token-secret", "secret",
                              "--shutdown-timeout-ms", "300"});
    // Counted before any connection: a row's connections, and the health checks', all end.
    baseline = srv->port ? srv->open_fds() : -1;
  }
  static void TearDownTestSuite() {
    delete srv;
    srv = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(srv->port, 0) << srv->log();
    ASSERT_GT(baseline, 0);
    ASSERT_TRUE(healthy()) << srv->log();
  }
  // The server answers and holds no descriptor more than before the row (its side of the row's
  // connection closes once ours has).
  void TearDown() override {
    ASSERT_TRUE(srv->alive()) << "the server died\n" << srv->log();
    EXPECT_TRUE(healthy()) << srv->log();
    int now = 0;
    EXPECT_TRUE(eventually([&] { return (now = srv->open_fds()) == baseline; }, std::chrono::seconds(5)))
        << "descriptors: " << now << ", before the row: " << baseline;
  }
  static bool healthy() {
    return http_call(srv->port, http::verb::get, "/healthz").status == 200 &&
           http_call(srv->port, http::verb::get, "/api/stats", {}, {{"Authorization", "Bearer k"}}).status == 200;
  }

  static spawned_server* srv;
  static int baseline;
};
spawned_server* Hostile::srv = nullptr;
int Hostile::baseline = 0;

// ---- HTTP ----

struct http_row {
  const char* name;
  std::vector<std::string> pieces;   // written one after another (several writes)
  unsigned status;                   // the documented answer
};

std::string head_of(std::size_t bytes, std::size_t fields) {
  // "GET /healthz HTTP/1.1\r\n" + fields "X-Fnnnn: v...\r\n" + "\r\n", exactly `bytes` long.
  std::string start = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  std::string out = start;
  std::size_t left = bytes - start.size() - 2;
  for (std::size_t i = 0; i < fields; ++i) {
    std::string name = "X-F" + std::to_string(10000 + i) + ": ";
    std::size_t share = i + 1 == fields ? left : left / (fields - i);
    std::string value(share - name.size() - 2, 'v');
    out += name + value + "\r\n";
    left -= share;
  }
  return out + "\r\n";
}

std::string chunked(std::string_view target, std::string_view chunks) {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n\r\n" +
         std::string(chunks);
}
std::string with_length(std::string_view target, std::string_view cl, std::string_view body) {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: " +
         std::string(cl) + "\r\n\r\n" + std::string(body);
}
std::string post(std::string_view target, std::string_view body) {
  return with_length(target, std::to_string(body.size()), body);
}
std::string upgrade(std::string_view key, std::string_view version = "13") {
  return "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
         std::string(key) + "\r\nSec-WebSocket-Version: " + std::string(version) + "\r\n\r\n";
}

const std::vector<http_row>& http_rows() {
  static const std::vector<http_row> rows = {
      // Request line.
      {"garbage request line", {"HELLO\r\n\r\n"}, 400},
      {"method only", {"GET\r\n\r\n"}, 400},
      {"no version", {"GET /healthz\r\n\r\n"}, 400},
      {"bad version", {"GET /healthz HTTP/x.y\r\nHost: x\r\n\r\n"}, 400},
      {"space in target", {"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"}, 400},
      {"NUL in target", {[] {
                            static const char req[] = "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n";
                            return std::string(req, sizeof req - 1);
                          }()},
       400},
      {"bare LF line ends", {"GET /healthz HTTP/1.1\nHost: x\n\n"}, 400},
      {"request line over the header limit", {"GET /" + std::string(header_limit, 'a') + " HTTP/1.1\r\n\r\n"}, 431},
      // Header fields.
      {"field without colon", {"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"}, 400},
      {"space before colon", {"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"}, 400},
      {"control byte in a value", {std::string("GET /healthz HTTP/1.1\r\nX-A: a\x01z\r\n\r\n")}, 400},
      {"empty field name", {"GET /healthz HTTP/1.1\r\n: x\r\n\r\n"}, 400},
      {"head of N+1 bytes in one field", {head_of(header_limit + 1, 1)}, 431},
      {"head of N+1 bytes in 60 fields", {head_of(header_limit + 1, 60)}, 431},
      {"head of 4N bytes in 300 fields", {head_of(4 * header_limit, 300)}, 431},
      {"head of N+1 bytes, one byte per write",
       [] {
         std::vector<std::string> bytes;
         for (char c : head_of(header_limit + 1, 20)) bytes.emplace_back(1, c);
         return bytes;
       }(),
       431},
      // Bodies: Content-Length.
      {"Content-Length not a number", {with_length("/api/publish", "abc", "{}")}, 400},
      {"Content-Length negative", {with_length("/api/publish", "-1", "{}")}, 400},
      {"Content-Length over 2^64", {with_length("/api/publish", "99999999999999999999999", "{}")}, 400},
      {"two different Content-Lengths",
       {"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"}, 400},
      {"Content-Length over the body limit", {with_length("/api/publish", "8193", "")}, 413},
      {"Content-Length with chunked",
       {"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"}, 400},
      {"unknown transfer coding",
       {"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nTransfer-Encoding: gzip\r\n\r\n{}"}, 400},
      // Bodies: chunked.
      {"chunk size not hex", {chunked("/api/publish", "zz\r\n{}\r\n0\r\n\r\n")}, 400},
      {"chunk size overflows", {chunked("/api/publish", "fffffffffffffffffffff\r\n")}, 400},
      {"chunk data longer than its size", {chunked("/api/publish", "2\r\n{}}}\r\n0\r\n\r\n")}, 400},
      {"chunk extension with an unterminated quote", {chunked("/api/publish", "5;a=\"x\r\nhello\r\n0\r\n\r\n")}, 400},
      {"unterminated quote, line sent first", {chunked("/api/publish", "5;a=\"x\r\n"), "hello\r\n"}, 400},
      {"unterminated quote in the last chunk", {chunked("/api/publish", "2\r\n{}\r\n0;a=\"x\r\n\r\n")}, 400},
      {"chunk extension without a name", {chunked("/api/publish", "2;=x\r\n{}\r\n0\r\n\r\n")}, 400},
      {"chunked body over the body limit", {chunked("/api/publish", "2001\r\n")}, 413},
      // Methods, paths, queries.
      {"unknown method on a page", {"BREW /index.html HTTP/1.1\r\nHost: x\r\n\r\n"}, 405},
      {"DELETE on a page", {"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"}, 405},
      {"GET on a POST endpoint", {"GET /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"}, 400},
      {"POST on a GET endpoint", {with_length("/api/stats", "2", "{}")}, 400},
      {"API without the key", {"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n"}, 401},
      {"API with a wrong key", {"GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer kk\r\n\r\n"}, 401},
      {"unknown API endpoint", {"GET /api/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"}, 400},
      {"path climbing out of the web root", {"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"}, 404},
      {"encoded climb", {"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"}, 404},
      {"bad percent escape in a query",
       {"GET /api/history?channel=%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"}, 400},
      {"history limit over 2^53",
       {"GET /api/history?channel=a&limit=9007199254740993 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"}, 400},
      {"history limit negative",
       {"GET /api/history?channel=a&limit=-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"}, 400},
      {"SSE with a malformed resume token", {"GET /sse?channels=a&since=%%%% HTTP/1.1\r\nHost: x\r\n\r\n"}, 400},
      {"SSE with a forged token", {"GET /sse?channels=a&token=a.b.c HTTP/1.1\r\nHost: x\r\n\r\n"}, 401},
      {"SSE with an over-long token", {"GET /sse?channels=a&token=" + std::string(600, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"}, 401},
      {"poll with a malformed client id", {"GET /poll?channels=a&client=bob HTTP/1.1\r\nHost: x\r\n\r\n"}, 400},
      {"poll with a malformed cursor", {"GET /poll?channels=a&cursor=zz HTTP/1.1\r\nHost: x\r\n\r\n"}, 400},
      // WebSocket upgrades.
      {"WebSocket key not base64", {upgrade("!!!!!!!!!!!!!!!!!!!!!!==")}, 400},
      {"WebSocket key of 8 bytes", {upgrade("AAAAAAAAAAA=")}, 400},
      {"WebSocket key missing", {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"}, 400},
      {"WebSocket version 12", {upgrade("dGhlIHNhbXBsZSBub25jZQ==", "12")}, 426},
      // /cmd bodies.
      {"cmd body not JSON", {post("/cmd", "nope!")}, 400},
      {"cmd without connect", {post("/cmd", R"({"cmd":"subscribe","id":1,"channel":"a"})")}, 400},
      // API bodies.
      {"publish body not JSON", {post("/api/publish", "{")}, 400},
      {"publish body an array", {post("/api/publish", "[]")}, 400},
      {"publish channel a number", {post("/api/publish", R"({"channel":5,"data":1})")}, 400},
      {"publish data over the message size", {post("/api/publish", R"({"channel":"a","data":")" + std::string(1100, 'd') + "\"}")}, 413},
      {"publish_batch messages not an array", {post("/api/publish_batch", R"({"messages":{}})")}, 400},
      {"disconnect with an empty body", {post("/api/disconnect", "")}, 400},
      {"disconnect with a numeric client", {post("/api/disconnect", R"({"client":7})")}, 400},
      {"disconnect with a null user", {post("/api/disconnect", R"({"user":null})")}, 400},
      {"disconnect with a misspelled key", {post("/api/disconnect", R"({"usr":"alice"})")}, 400},
      {"disconnect with jitter 2^64-1", {post("/api/disconnect", R"({"all":true,"jitter_ms":18446744073709551615})")}, 400},
      {"disconnect with after_ms 2^53+1", {post("/api/disconnect", R"({"all":true,"after_ms":9007199254740993})")}, 400},
  };
  return rows;
}

class HostileHttp : public Hostile, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(HostileHttp, AnsweredWithItsStatusAtOnce) {
  const auto& row = http_rows()[GetParam()];
  raw_peer peer(srv->port);
  for (auto& p : row.pieces) peer.send(p);
  std::string body;
  EXPECT_EQ(peer.read_status(answer_ms, &body), row.status) << row.name << "\n" << body;
}

INSTANTIATE_TEST_SUITE_P(Rows, HostileHttp, ::testing::Range<std::size_t>(0, http_rows().size()),
                         [](const auto& info) {
                           std::string n = http_rows()[info.param].name;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// --header-limit is exact: the head (request line, fields, blank line) of N bytes passes, N + 1 is
// 431, whatever the number of fields and however it is written (issue 18, defect 12).
TEST_F(Hostile, HeaderLimitIsExactAtTheBoundary) {
  for (std::size_t fields : {1u, 10u, 100u}) {
    for (bool bytewise : {false, true}) {
      for (std::size_t size : {header_limit - 1, header_limit, header_limit + 1}) {
        raw_peer peer(srv->port);
        auto head = head_of(size, fields);
        ASSERT_EQ(head.size(), size);
        if (bytewise) {
          for (char c : head) peer.send(std::string_view(&c, 1));
        } else {
          peer.send(head);
        }
        EXPECT_EQ(peer.read_status(answer_ms), size > header_limit ? 431u : 200u)
            << size << " bytes in " << fields << " fields, " << (bytewise ? "one byte per write" : "one write");
      }
    }
  }
}

// ---- WebSocket frames ----

struct ws_row {
  const char* name;
  std::string bytes;   // written after the opening handshake and a good `connect`
  int close_code;      // the documented close code
};

std::string two_frames(std::string a, std::string b) { return a + b; }

const std::vector<ws_row>& ws_rows() {
  static const std::vector<ws_row> rows = {
      {"reserved data opcode 3", raw_peer::frame(0x83, "x"), 1002},
      {"reserved control opcode 11", raw_peer::frame(0x8b, ""), 1002},
      {"unmasked client frame", raw_peer::frame(0x81, R"({"cmd":"presence","id":2,"channel":"a"})", false), 1002},
      {"RSV1 without an extension", raw_peer::frame(0xc1, "x"), 1002},
      {"fragmented ping", raw_peer::frame(0x09, "x"), 1002},
      {"ping over 125 bytes", raw_peer::frame(0x89, std::string(126, 'p')), 1002},
      {"continuation without a start", raw_peer::frame(0x80, "x"), 1002},
      {"new message inside a fragmented one", two_frames(raw_peer::frame(0x01, "{"), raw_peer::frame(0x81, "{}")), 1002},
      {"close code 1005 on the wire", raw_peer::close_frame(std::string("\x03\xed", 2)), 1002},
      {"close code 999", raw_peer::close_frame(std::string("\x03\xe7", 2)), 1002},
      {"close payload of one byte", raw_peer::close_frame("\x03"), 1002},
      {"close reason not UTF-8", raw_peer::close_frame(std::string("\x03\xe8\xc3\x28", 4)), 1002},
      {"text not UTF-8", raw_peer::frame(0x81, "\xc3\x28"), 1007},
      {"text with a UTF-16 surrogate", raw_peer::frame(0x81, "\xed\xa0\x80"), 1007},
      {"message over the size limit", raw_peer::frame(0x81, std::string(64 * 1024, ' ')), 1009},
      {"length field of 2^63", raw_peer::frame(0x81, "", true, std::uint64_t{1} << 63), 1009},
      {"fragments over the size limit",
       two_frames(raw_peer::frame(0x01, std::string(40 * 1024, ' ')), raw_peer::frame(0x80, std::string(40 * 1024, ' '))), 1009},
  };
  return rows;
}

class HostileWs : public Hostile, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(HostileWs, ClosedWithItsCode) {
  const auto& row = ws_rows()[GetParam()];
  raw_peer peer(srv->port);
  ASSERT_TRUE(peer.ws_upgrade());
  peer.send(raw_peer::text(R"({"cmd":"connect","id":1})"));
  ASSERT_NE(peer.ws_text().find("\"connected\""), std::string::npos);
  peer.send(row.bytes);
  EXPECT_EQ(peer.ws_close_code(answer_ms), row.close_code) << row.name;
}

INSTANTIATE_TEST_SUITE_P(Rows, HostileWs, ::testing::Range<std::size_t>(0, ws_rows().size()),
                         [](const auto& info) {
                           std::string n = ws_rows()[info.param].name;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// ---- Protocol commands (over WebSocket) ----

struct command_row {
  const char* name;
  bool connect_first;
  std::string text;     // one WebSocket text message
  unsigned error;       // the code of the `error` frame that answers it (0: none expected)
  int close_code;       // the close code that follows (0: the connection stays open)
};

const std::vector<command_row>& command_rows() {
  static const std::vector<command_row> rows = {
      {"not JSON", true, "hello", 4000, 4000},
      {"JSON but not an object", true, "[1,2]", 4000, 4000},
      {"truncated object", true, R"({"cmd":"presence","id":2)", 4000, 4000},
      {"duplicate key", true, R"({"cmd":"presence","cmd":"history","id":2,"channel":"a"})", 4000, 4000},
      {"nesting deeper than 32", true, R"({"cmd":"publish","channel":"a","data":)" + std::string(40, '[') + std::string(40, ']') + "}", 4000, 4000},
      {"unknown command", true, R"({"cmd":"explode","id":2})", 4001, 0},
      {"cmd not a string", true, R"({"cmd":7,"id":2})", 4000, 4000},
      {"id a string", true, R"({"cmd":"presence","id":"2","channel":"a"})", 4000, 4000},
      {"id negative", true, R"({"cmd":"presence","id":-2,"channel":"a"})", 4000, 4000},
      {"id a fraction", true, R"({"cmd":"presence","id":2.5,"channel":"a"})", 4000, 4000},
      {"id over 2^53", true, R"({"cmd":"presence","id":9007199254740993,"channel":"a"})", 4000, 4000},
      {"id of 2^64", true, R"({"cmd":"presence","id":18446744073709551616,"channel":"a"})", 4000, 4000},
      {"id with an exponent", true, R"({"cmd":"presence","id":1e3,"channel":"a"})", 4000, 4000},
      {"channel a number", true, R"({"cmd":"subscribe","id":2,"channel":5})", 4000, 4000},
      {"channel name breaks the rules", true, R"({"cmd":"subscribe","id":2,"channel":"a b"})", 4002, 0},
      {"unknown namespace", true, R"({"cmd":"subscribe","id":2,"channel":"nope:a"})", 4002, 0},
      {"since not an object", true, R"({"cmd":"subscribe","id":2,"channel":"a","since":"x"})", 4000, 4000},
      {"since offset over 2^53", true,
       R"({"cmd":"subscribe","id":2,"channel":"a","since":{"epoch":"e","offset":9007199254740993}})", 4000, 4000},
      {"history limit over 2^53", true, R"({"cmd":"history","id":2,"channel":"a","limit":9007199254740993})", 4000, 4000},
      {"publish without data", true, R"({"cmd":"publish","id":2,"channel":"a"})", 4000, 4000},
      {"command before connect", false, R"({"cmd":"subscribe","id":2,"channel":"a"})", 4017, 4017},
      {"connect with a forged token", false, R"({"cmd":"connect","id":1,"token":"a.b.c"})", 4004, 4004},
      {"connect with an over-long token", false, R"({"cmd":"connect","id":1,"token":")" + std::string(600, 'a') + "\"}", 4004, 4004},
      {"batch over --max-batch", true,
       std::string(R"({"cmd":"history","id":2,"channel":"a"})") + "\n" + R"({"cmd":"history","id":3,"channel":"a"})" + "\n" +
           R"({"cmd":"history","id":4,"channel":"a"})" + "\n" + R"({"cmd":"history","id":5,"channel":"a"})" + "\n" +
           R"({"cmd":"history","id":6,"channel":"a"})",
       4000, 4000},
  };
  return rows;
}

class HostileCommand : public Hostile, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(HostileCommand, AnsweredWithItsCode) {
  const auto& row = command_rows()[GetParam()];
  raw_peer peer(srv->port);
  ASSERT_TRUE(peer.ws_upgrade());
  if (row.connect_first) {
    peer.send(raw_peer::text(R"({"cmd":"connect","id":1})"));
    ASSERT_NE(peer.ws_text().find("\"connected\""), std::string::npos);
  }
  peer.send(raw_peer::text(row.text));
  std::vector<std::string> texts;
  int close = row.close_code ? peer.ws_close_code(answer_ms, &texts) : 0;
  if (!row.close_code) texts.push_back(peer.ws_text(answer_ms));
  unsigned error = 0;
  for (auto& t : texts)
    for (auto& l : lines(t)) {
      auto f = parse(l);
      if (f.kind == pp::frame_kind::error && !error) error = static_cast<unsigned>(f.error_code);
    }
  EXPECT_EQ(error, row.error) << row.name;
  EXPECT_EQ(close, row.close_code) << row.name;
  if (!row.close_code) {
    // Still open and serving: the next command is answered.
    peer.send(raw_peer::text(R"({"cmd":"presence","id":9,"channel":"a"})"));
    auto reply = peer.ws_text(answer_ms);
    EXPECT_NE(reply.find("\"id\":9"), std::string::npos) << row.name << ": " << reply;
  }
}

INSTANTIATE_TEST_SUITE_P(Rows, HostileCommand, ::testing::Range<std::size_t>(0, command_rows().size()),
                         [](const auto& info) {
                           std::string n = command_rows()[info.param].name;
                           for (auto& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
