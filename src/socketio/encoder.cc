// encoder.cc — the Socket.IO packets the server sends, and the JSON string literal they
// share (its escaping is core::append_json_escaped). Every encoder writes
// "<type>[<nsp>,][<ack id>]<json>"; the namespace is left out for "/" as socket.io-parser's
// encoder does.
//
//   encode_event("/chat", "msg", "{\"a\":1}", 7, "42")  ->  2/chat,7["msg",{"a":1},"42"]
//
// Contracts and preconditions are in include/ringcast/socketio.h.
#include "text.h"

#include <ringcast/core.h>
#include <ringcast/socketio.h>

namespace ringcast::socketio {

namespace {

void append_header(std::string& out, sio_type type, std::string_view nsp,
                   std::optional<uint64_t> ack_id) {
    out += static_cast<char>('0' + static_cast<uint8_t>(type));
    if (nsp != "/") {
        out += nsp;
        out += ',';
    }
    if (ack_id) {
        detail::append_uint(out, *ack_id);
    }
}

void append_event_array(std::string& out, std::string_view event, std::string_view values,
                        std::optional<std::string_view> offset) {
    out += '[';
    append_json_string(out, event);
    if (!values.empty()) {
        out += ',';
        out += values;
    }
    if (offset) {
        out += ',';
        append_json_string(out, *offset);
    }
    out += ']';
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    core::append_json_escaped(out, text);
    out += '"';
}

std::string encode_connect(std::string_view nsp, std::string_view sid,
                           std::optional<std::string_view> pid) {
    std::string out;
    append_header(out, sio_type::connect, nsp, std::nullopt);
    out += "{\"sid\":";
    append_json_string(out, sid);
    if (pid) {
        out += ",\"pid\":";
        append_json_string(out, *pid);
    }
    out += '}';
    return out;
}

std::string encode_connect_error(std::string_view nsp, std::string_view message,
                                 std::optional<std::string_view> data_json) {
    std::string out;
    append_header(out, sio_type::connect_error, nsp, std::nullopt);
    out += "{\"message\":";
    append_json_string(out, message);
    if (data_json) {
        out += ",\"data\":";
        out += *data_json;
    }
    out += '}';
    return out;
}

std::string encode_disconnect(std::string_view nsp) {
    std::string out;
    append_header(out, sio_type::disconnect, nsp, std::nullopt);
    return out;
}

std::string encode_event(std::string_view nsp, std::string_view event, std::string_view args_json,
                         std::optional<uint64_t> ack_id, std::optional<std::string_view> offset) {
    std::string out;
    append_header(out, sio_type::event, nsp, ack_id);
    append_event_array(out, event, args_json, offset);
    return out;
}

std::string encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view args_json) {
    std::string out;
    append_header(out, sio_type::ack, nsp, ack_id);
    out += '[';
    out += args_json;
    out += ']';
    return out;
}

void append_eio_event(std::string& out, std::string_view nsp, std::string_view event,
                      std::string_view data_json, std::optional<std::string_view> offset) {
    out.reserve(out.size() + 16 + nsp.size() + event.size() + data_json.size() +
                (offset ? offset->size() : 0));
    out += static_cast<char>('0' + static_cast<uint8_t>(eio_type::message));
    append_header(out, sio_type::event, nsp, std::nullopt);
    append_event_array(out, event, data_json, offset);
}

} // namespace ringcast::socketio
