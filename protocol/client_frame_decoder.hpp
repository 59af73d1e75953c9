// The frames a client receives (server -> client), decoded for the client machine alone.
//
// Same verdicts, codes, reasons and fields as frame_codec's decode_frame (which the server and the
// tests keep using): tests/protocol/client_frame_decoder_test.cpp and the client_fuzz target hold
// the two together. The difference is the form: each frame kind's checks are a short program of
// (check, field) steps run by one small interpreter, in decode_frame's order, instead of a switch
// with a call per check — in the wasm client that is a kilobyte less code.
#pragma once
#include <string_view>

#include "protocol/frame.hpp"
#include "protocol/frame_codec.hpp"

namespace pushwire::protocol {

bool decode_server_frame(std::string_view text, frame& out, decode_error& err);

}  // namespace pushwire::protocol
