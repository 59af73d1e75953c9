// The demo pages (--web-root) and the client bundle at /pushwire/ (--client-root), with the MIME
// types browsers need (text/javascript, application/wasm). Paths never leave their root.
#pragma once
#include <string_view>

#include "server/http/http_types.hpp"
#include "server/ops/config.hpp"

namespace pushwire::server {

http_reply serve_static(const config& cfg, std::string_view path);

}  // namespace pushwire::server
