// See protocol.h.
#include "protocol.h"

namespace ringcast::bench {

std::optional<wire_protocol> parse_protocol(std::string_view name) noexcept {
    if (name == "ringcast") {
        return wire_protocol::ringcast;
    }
    if (name == "ws") {
        return wire_protocol::ws;
    }
    if (name == "socketio") {
        return wire_protocol::socketio;
    }
    return std::nullopt;
}

std::string_view protocol_name(wire_protocol p) noexcept {
    switch (p) {
    case wire_protocol::ringcast:
        return "ringcast";
    case wire_protocol::ws:
        return "ws";
    case wire_protocol::socketio:
        return "socketio";
    }
    return "";
}

std::string substitute_channel(std::string_view text, std::string_view channel) {
    constexpr std::string_view key = "{channel}";
    std::string out;
    out.reserve(text.size() + channel.size());
    // Bounded by the text: each step consumes at least one character.
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t at = text.find(key, pos);
        if (at == std::string_view::npos) {
            out.append(text.substr(pos));
            break;
        }
        out.append(text.substr(pos, at - pos));
        out.append(channel);
        pos = at + key.size();
    }
    return out;
}

sio_kind classify_socketio(std::string_view text) noexcept {
    if (text.empty()) {
        return sio_kind::other;
    }
    switch (text[0]) {
    case '0':
        return sio_kind::open;
    case '1':
        return sio_kind::close;
    case '2':
        return sio_kind::ping;
    case '4':
        if (text.size() >= 2) {
            switch (text[1]) {
            case '0':
                return sio_kind::connected;
            case '2':
                return sio_kind::event;
            case '4':
                return sio_kind::connect_error;
            case '1':
                return sio_kind::close; // Socket.IO disconnect
            default:
                break;
            }
        }
        return sio_kind::other;
    default:
        return sio_kind::other;
    }
}

void socketio_frames::build(client& cl) {
    const auto frame = [&](std::string_view text) {
        return ws::encode_client_frame(
            ws::opcode::text,
            std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                       text.size()),
            cl.random_mask());
    };
    connect = frame("40");
    pong = frame("3");
}

protocol_layer::verdict protocol_layer::on_text(client& cl, uint32_t conn,
                                                std::string_view text) noexcept {
    if (_protocol != wire_protocol::socketio) {
        return verdict::delivery;
    }
    switch (classify_socketio(text)) {
    case sio_kind::event:
        return verdict::delivery;
    case sio_kind::open:
        // A full queue here means the connection is closing; the scenario sees the close.
        (void)cl.queue_data(conn, _frames.connect);
        return verdict::handled;
    case sio_kind::ping:
        (void)cl.queue_data(conn, _frames.pong);
        return verdict::handled;
    case sio_kind::connected:
        return verdict::ready;
    case sio_kind::connect_error:
    case sio_kind::close:
        return verdict::refused;
    case sio_kind::other:
        break;
    }
    return verdict::handled;
}

} // namespace ringcast::bench
