#include "server/http/chunk_line.hpp"

namespace pushwire::server {

namespace {

bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// qdtext and the character after a backslash: HTAB, SP, VCHAR, obs-text (no other control).
bool is_text(char c) {
  auto u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

// A cursor over one line; each step consumes what it accepts.
struct line_reader {
  std::string_view s;
  std::size_t i = 0;
  bool done() const { return i == s.size(); }
  char peek() const { return s[i]; }
  void skip_bws() { while (!done() && (peek() == ' ' || peek() == '\t')) ++i; }
  bool token() {
    std::size_t start = i;
    while (!done() && is_tchar(peek())) ++i;
    return i > start;
  }
  bool quoted() {
    ++i;   // the opening quote
    while (!done()) {
      char c = s[i++];
      if (c == '"') return true;
      if (c == '\\') {
        if (done() || !is_text(peek())) return false;
        ++i;
      } else if (!is_text(c)) {
        return false;
      }
    }
    return false;   // the line ended inside the quotes
  }
};

bool valid_line(std::string_view line) {
  line_reader r{line};
  while (!r.done() && is_hex(r.peek())) ++r.i;
  if (r.i == 0) return false;
  for (;;) {
    r.skip_bws();
    if (r.done()) return r.i == line.size() && (line.back() != ' ' && line.back() != '\t');
    if (r.peek() != ';') return false;
    ++r.i;
    r.skip_bws();
    if (!r.token()) return false;
    std::size_t before = r.i;
    r.skip_bws();
    if (r.done() || r.peek() == ';') {
      if (r.done() && r.i != before) return false;   // trailing whitespace after a name
      continue;
    }
    if (r.peek() != '=') return false;
    ++r.i;
    r.skip_bws();
    if (r.done()) return false;
    if (r.peek() == '"') {
      if (!r.quoted()) return false;
    } else if (!r.token()) {
      return false;
    }
  }
}

}  // namespace

bool broken_chunk_line(std::string_view pending) {
  if (pending.starts_with("\r\n")) pending.remove_prefix(2);
  auto eol = pending.find("\r\n");
  if (eol == std::string_view::npos) return false;
  return !valid_line(pending.substr(0, eol));
}

}  // namespace pushwire::server
