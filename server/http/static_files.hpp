// The demo pages (--web-root) and the client bundle at /pushwire/ (--client-root), served as a CDN
// would serve them:
//   - MIME types browsers need (text/javascript for .js/.mjs, application/wasm);
//   - precompressed siblings made at build time (`f.br`, `f.gz` next to `f`, client-wasm/build.mjs)
//     chosen by Accept-Encoding (brotli, then gzip, else the file itself), with Vary: Accept-Encoding;
//     a sibling older than its file is ignored (a stale build never serves old bytes);
//   - validators: a strong ETag per representation (a hash of the file's bytes, plus the coding) and
//     Last-Modified (the file's mtime), answered with 304 on If-None-Match, or on If-Modified-Since
//     when the request has no If-None-Match (RFC 9110 §13.2.2);
//   - Cache-Control: a URL that names this release (`?v=<version>`, `pushwire-server --version`)
//     never changes, so it is cached for a year, immutable; every other URL is `no-cache` (the
//     browser keeps it and revalidates: a 304 without a body).
// Paths never leave their root.
#pragma once
#include <string_view>

#include "server/http/http_types.hpp"
#include "server/ops/config.hpp"

namespace pushwire::server {

struct static_request {
  std::string_view path;                 // percent-encoded, as in the request line, without the query
  std::string_view version;              // the `v` query parameter ("" when absent)
  std::string_view if_none_match;        // request headers ("" when absent)
  std::string_view if_modified_since;
  std::string_view accept_encoding;
};

http_reply serve_static(const config& cfg, const static_request& req);

// Whether Accept-Encoding `header` accepts `coding` ("br", "gzip"): listed with q > 0, or covered
// by "*" with q > 0 and not listed with q=0. Exposed for tests.
bool accepts_encoding(std::string_view header, std::string_view coding);

}  // namespace pushwire::server
