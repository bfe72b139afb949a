// ringcast-bench protocols — what a subscriber speaks on top of RFC 6455, so the same
// scenarios drive ringcast and the servers teams run instead (perf/peers/).
//
//   ringcast  JSON commands on /ws ({"op":"subscribe",...} → {"op":"reply","ok":true});
//             deliveries are envelopes whose "data" is the published object
//   ws        a plain broadcast server (nchan, Node ws): the channel is in the URL
//             (/sub/{channel}); subscribed once the upgrade completes; every text
//             message is the published body verbatim
//   socketio  Socket.IO v4 over the Engine.IO v4 websocket transport (no polling):
//               server: 0{"sid":..,"pingInterval":..}   Engine.IO open
//               client: 40                              Socket.IO connect, main namespace
//               server: 40{"sid":..}                    connected: subscribed from here
//               server: 42["tick",{...}]                an event: one delivery
//               server: 2   client: 3                   Engine.IO ping / pong
//             (44{..} is a connect error, 1 an Engine.IO close.)
//
// Publishing to peers goes through --publish-url (fanout_publisher.h): a raw POST whose
// body is the data object, any 2xx accepted.
#pragma once

#include "client.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::bench {

enum class wire_protocol : uint8_t { ringcast, ws, socketio };

std::optional<wire_protocol> parse_protocol(std::string_view name) noexcept;
std::string_view protocol_name(wire_protocol p) noexcept;

/// `text` with every "{channel}" replaced by `channel`.
std::string substitute_channel(std::string_view text, std::string_view channel);

/// What one Engine.IO text message is to a Socket.IO client.
enum class sio_kind : uint8_t { open, connected, ping, event, connect_error, close, other };

sio_kind classify_socketio(std::string_view text) noexcept;

/// The client's two Socket.IO frames, masked once and shared read-only by every connection
/// (a loopback benchmark has no proxy to poison; see scenario_echo.cc): "40" and "3".
struct socketio_frames {
    std::vector<std::byte> connect;
    std::vector<std::byte> pong;

    void build(client& cl);
};

/// The protocol layer every scenario puts in front of its own message handling: answers
/// Engine.IO pings, completes the Socket.IO connect, and says when a connection is
/// subscribed (ready) and when a message is a delivery.
class protocol_layer {
public:
    enum class verdict : uint8_t {
        handled,  ///< consumed by the protocol (open, ping)
        ready,    ///< the connection is now subscribed (socketio: 40 arrived)
        delivery, ///< application data: the scenario's message
        refused,  ///< the server refused the connect (44) or closed the session (1)
    };

    protocol_layer() = default;
    protocol_layer(wire_protocol p, client& cl) : _protocol(p) {
        if (p == wire_protocol::socketio) {
            _frames.build(cl);
        }
    }

    wire_protocol protocol() const noexcept { return _protocol; }
    /// Ready as soon as the upgrade completed (plain ws broadcast servers).
    bool ready_on_open() const noexcept { return _protocol == wire_protocol::ws; }

    /// ringcast and ws messages are all deliveries; socketio ones are sorted out here.
    verdict on_text(client& cl, uint32_t conn, std::string_view text) noexcept;

private:
    wire_protocol _protocol = wire_protocol::ringcast;
    socketio_frames _frames;
};

} // namespace ringcast::bench
