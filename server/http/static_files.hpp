// The demo pages (--web-root) and the client bundle at /pushwire/ (--client-root), with the MIME
// types browsers need (text/javascript, application/wasm). Paths never leave their root. Every
// file carries a strong ETag (a hash of its bytes), so a browser revalidating it (Cache-Control:
// no-cache: the URLs are not versioned) gets 304 and no body when it has not changed.
#pragma once
#include <string_view>

#include "server/http/http_types.hpp"
#include "server/ops/config.hpp"

namespace pushwire::server {

// `if_none_match`: the request's If-None-Match header ("" when absent).
http_reply serve_static(const config& cfg, std::string_view path, std::string_view if_none_match);

}  // namespace pushwire::server
