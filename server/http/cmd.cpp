// /cmd: the commands of a one-way client (SSE, long-poll), answered in the response body. A fresh
// protocol session runs them (connect first: the token comes in the connect command or the
// Authorization header) and collects the replies.
#include "protocol/frame_codec.hpp"
#include "server/http/handlers.hpp"
#include "server/transport/shell.hpp"

namespace pushwire::server {

using protocol::code;

void handle_cmd(node& n, const http_in& in, local_subscribers& subs, unsigned io_thread,
                std::function<void(std::function<void()>)> post, http_respond respond) {
  if (in.method != "POST") return respond(error_reply(code::bad_frame, "use POST"));
  // All or nothing, like a WebSocket batch: over the limit, nothing runs (the connect counts).
  if (protocol::batch_size(in.body) > n.cfg.max_batch)
    return respond(error_reply(code::bad_frame, "more than " + std::to_string(n.cfg.max_batch) +
                                                    " commands in one request: none was executed"));
  auto now = n.clk.now_ms();
  auto sp = n.stream_policy(false);
  sp.queue_bytes = n.cfg.body_limit + n.cfg.max_message_bytes;   // one reply body, built at once
  // The shell lives until every command has its answer: at once with the memory stores, later when
  // a completion arrives from another thread or a store behind the network.
  auto sh = std::make_shared<collect_shell>(n, subs, io_thread, n.new_client_id(), sp);
  sh->owner = sh;
  sh->post = std::move(post);
  auto answer = [sh, respond = std::move(respond)] {
    if (sh->session().requests_pending()) return;
    sh->on_settled = nullptr;
    sh->owner.reset();
    sh->release();
    http_reply r;
    r.content_type = "application/x-ndjson";
    for (auto& f : sh->frames) r.body += frame_text(f);
    if (sh->closed && sh->session().user().empty() && sh->frames.size() == 1) r.status = http_status(*sh->closed);
    respond(std::move(r));
  };
  std::string body = in.body;
  if (!in.authorization.empty()) {
    protocol::command first;
    protocol::decode_error err;
    std::string_view line(body);
    line = line.substr(0, line.find('\n'));
    if (protocol::decode_command(line, first, err) && first.kind == protocol::command_kind::connect &&
        first.token.empty()) {
      first.token = in.authorization;
      sh->session().handle_command(first, now);
      body.erase(0, std::min(body.size(), line.size() + 1));
    }
  }
  sh->session().handle_text(body, now);
  sh->drain(now);
  if (!sh->session().requests_pending()) return answer();
  sh->on_settled = answer;
}

}  // namespace pushwire::server
