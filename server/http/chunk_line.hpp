// The line that starts a chunk of a chunked request body (RFC 9112 §7.1):
//   chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
//   name = token, value = token / quoted-string.
// Beast's parser scans a quoted extension value past the line's end, so a line such as `5;a="x`
// made it wait for bytes that can never fix it (until the request timeout). The HTTP session asks
// this check about what the parser left unread while it waits: a complete line that breaks the
// grammar is answered 400 at once. No networking header: a pure function, tested on its own.
#pragma once
#include <string_view>

namespace pushwire::server {

// `pending`: the unparsed bytes of a chunked body while the parser needs more (they start at a
// chunk line, possibly after the CRLF that ends the previous chunk's data). True when they hold a
// complete chunk line (up to CRLF) that is not valid; false when it is valid or not complete yet.
bool broken_chunk_line(std::string_view pending);

}  // namespace pushwire::server
