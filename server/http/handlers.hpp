// The handlers that answer an HTTP request without taking the connection over. No networking
// header: the HTTP session reads the request and writes what they answer.
#pragma once
#include "server/http/http_types.hpp"
#include "server/node/node.hpp"
#include "server/transport/local_subscribers.hpp"

namespace pushwire::server {

// /api/* (api.cpp): publish, publish_batch, disconnect, history, presence, channels, stats.
void handle_api(node& n, const http_in& in, http_respond respond);
// /demo/publish (--demo only; demo_publish.cpp): publishes into the demo namespace, rate limited.
void handle_demo_publish(node& n, const http_in& in, http_respond respond);
// /cmd (cmd.cpp): a batch of commands from a one-way client, answered with their replies.
// `post` runs a function on the calling I/O thread (for completions that arrive later).
void handle_cmd(node& n, const http_in& in, local_subscribers& subs, unsigned io_thread,
                std::function<void(std::function<void()>)> post, http_respond respond);

}  // namespace pushwire::server
