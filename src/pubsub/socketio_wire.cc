// Re-framing the engine's output for Socket.IO connections (socketio_wire.h has the model).
#include "socketio_wire.h"

#include "envelope_text.h"

#include <ringcast/socketio.h>
#include <ringcast/ws.h>

namespace ringcast::pubsub {

namespace {

using namespace envelope_text;
constexpr std::string_view open_op = "{\"op\":\"";

/// The text between `from` and the next '"' after it, or empty.
std::string_view name_after(std::string_view text, std::string_view marker) noexcept {
    const std::size_t at = text.find(marker);
    if (at == std::string_view::npos) {
        return {};
    }
    const std::size_t start = at + marker.size();
    const std::size_t end = text.find('"', start);
    return end == std::string_view::npos ? std::string_view() : text.substr(start, end - start);
}

/// An event name socket.io-parser refuses (the client closes with "parse error"): it goes
/// out as "ringcast:<name>" instead.
bool reserved_by_socketio(std::string_view event) noexcept {
    for (const std::string_view reserved : {"connect", "connect_error", "disconnect",
                                            "disconnecting", "newListener", "removeListener"}) {
        if (event == reserved) {
            return true;
        }
    }
    return false;
}

/// The payload of an unmasked server frame as one string (a spliced body copied in).
std::string payload_of(const core::frame& f) {
    const std::byte* wire = f.data();
    const auto len7 = std::to_integer<uint8_t>(wire[1]) & 0x7f;
    const std::size_t header = len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
    core::frame_piece pieces[3];
    const unsigned n = core::frame_pieces(f, header, pieces);
    std::string out;
    out.reserve(f.size() - header);
    for (unsigned i = 0; i < n; ++i) {
        out.append(reinterpret_cast<const char*>(pieces[i].data), pieces[i].size);
    }
    return out;
}

} // namespace

std::string socketio_namespace_of(std::string_view channel, const socketio_config& cfg) {
    const std::size_t colon = channel.find(':');
    if (colon != std::string_view::npos) {
        const std::string_view ns = channel.substr(0, colon);
        for (const std::string& name : cfg.namespaces) {
            if (name == ns) {
                return "/" + name;
            }
        }
    }
    return "/";
}

core::frame_ref socketio_frame(const core::frame_ref& plain, std::string_view channel,
                               const socketio_config& cfg, std::string_view tag) {
    if (!plain || plain->own_size() < 2 ||
        (std::to_integer<uint8_t>(plain->data()[0]) & 0x0f) != uint8_t(ws::opcode::text)) {
        return {};
    }
    const std::string payload = payload_of(*plain.get());
    const std::string_view text = payload;
    std::string out;
    if (text.starts_with(open_id)) {
        // A channel message: its event, with its data as the one argument.
        const std::string_view event = name_after(text, before_event);
        const std::string_view own_channel = name_after(text, before_channel);
        const std::size_t data_at = text.find(before_data);
        // The data is followed only by names and numbers: the last "priority" is ours.
        const std::size_t data_end = text.rfind(before_priority);
        if (event.empty() || data_at == std::string_view::npos ||
            data_end == std::string_view::npos || data_end < data_at + before_data.size()) {
            return {};
        }
        const std::size_t data_start = data_at + before_data.size();
        const std::string nsp =
            socketio_namespace_of(channel.empty() ? own_channel : channel, cfg);
        out.reserve(text.size() + 16);
        const std::string renamed =
            reserved_by_socketio(event) ? "ringcast:" + std::string(event) : std::string();
        socketio::append_eio_event(out, nsp, renamed.empty() ? event : std::string_view(renamed),
                                   text.substr(data_start, data_end - data_start),
                                   tag.empty() ? std::nullopt : std::optional(tag));
    } else if (text.starts_with(open_op)) {
        // A presence event or another object of ours: emitted under its "op".
        const std::size_t end = text.find('"', open_op.size());
        if (end == std::string_view::npos) {
            return {};
        }
        const std::string nsp = socketio_namespace_of(channel, cfg);
        socketio::append_eio_event(out, nsp, text.substr(open_op.size(), end - open_op.size()),
                                   text);
    } else {
        return {};
    }
    return ws::make_server_frame(ws::opcode::text, std::as_bytes(std::span(out)));
}

} // namespace ringcast::pubsub
