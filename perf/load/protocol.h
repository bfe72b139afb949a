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
//               (--socketio-join EVENT, a server whose rooms are joined by an event, as
//               ringcastd's /socket.io/: after 40{..} the client emits
//               42<id>["EVENT","<channel>"] and is subscribed at the ACK 43<id>[{"ok":true..}];
//               events may carry extra arguments after the data, e.g. ringcast's delivery
//               tag: 42["tick",{...},"<tag>"])
//               server: 2   client: 3                   Engine.IO ping / pong
//             (44{..} is a connect error, 1 an Engine.IO close.)
//
// Publishing to peers goes through --publish-url (fanout_publisher.h): a raw POST whose
// body is the data object, any 2xx accepted.
//
// Credentials (ringcast only): --token-file gives each connection a JWT, sent as ?token= on
// the upgrade's path; global connection i presents line i mod N of the file.
#pragma once

#include "client.h"

#include <array>
#include <cstddef>
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

/// `path` with `name=value` added to its query ("?" first, "&" after). Both must already be
/// valid in a query (nothing is escaped here).
std::string with_query_param(std::string_view path, std::string_view name, std::string_view value);

/// Longest token --token-file takes: ringcastd's request line is at most 8 KiB
/// (http::request_limits), and the path and query come before the token.
constexpr std::size_t max_token_bytes = 4096;

/// Reads --token-file (setup time): one JWT per line, LF or CRLF, the last line end optional.
/// Every line must be a compact JWT — base64url characters and dots only, 1..max_token_bytes
/// — so it goes into the query unescaped; at most `max_tokens` lines. Returns false with a
/// sentence naming the file and line in `error` otherwise (an empty line is refused too: it
/// would shift which connection gets which token).
bool read_token_file(const std::string& path, std::size_t max_tokens, std::vector<std::string>& out,
                     std::string& error);

/// ringcast envelopes end with "offset":N (docs/protocol.md "Server → client"): the
/// channel offset of a delivered message, read backwards from the closing brace (a few
/// compares per delivery, no search). Falls back to a search for "offset": when the text
/// does not end that way; -1 when there is no offset at all.
int64_t envelope_offset(std::string_view text) noexcept;

/// The number right after `key` in `text` (digits only); -1 when the key or the digits are
/// missing. A memmem: for replies and fallbacks, not for every delivery.
int64_t number_after(std::string_view text, std::string_view key) noexcept;

/// {"op":"ack","channel":"<channel>","offset": — what every ack of `channel` starts with
/// (no "id": the server sends no reply then, only errors). `channel` is a bench channel
/// name (chat:bench-N), which needs no JSON escaping.
std::string ack_command_prefix(std::string_view channel);

/// Longest masked ack frame write_ack_frame() writes for a prefix of `prefix_bytes`: the
/// 2-byte header with a 7-bit length + 4-byte key, the prefix, 20 digits and "}". The
/// command stays under 126 bytes (the 7-bit length) for channel names up to ~50 bytes.
constexpr std::size_t max_ack_frame_bytes(std::size_t prefix_bytes) noexcept {
    return 6 + prefix_bytes + 20 + 1;
}

/// Writes the masked client text frame of `prefix` + `offset` + "}" into `out` (room for
/// max_ack_frame_bytes) and returns its size; 0 when the command would not fit a 7-bit
/// length (prefix too long). No allocation: this runs once per ack.
std::size_t write_ack_frame(std::byte* out, std::string_view prefix, uint64_t offset,
                            std::array<std::byte, 4> mask) noexcept;

/// What one Engine.IO text message is to a Socket.IO client.
enum class sio_kind : uint8_t { open, connected, ping, event, ack, connect_error, close, other };

sio_kind classify_socketio(std::string_view text) noexcept;

/// --socketio-join: the masked frame of `42<ack_id>["<event>","<room>"]` (setup time; one
/// per channel, shared by its subscribers like the frames below). `event` and `room` need
/// no JSON escaping (main.cc checks the event name; rooms are bench channel names).
std::vector<std::byte> socketio_join_frame(client& cl, std::string_view event,
                                           std::string_view room, uint32_t ack_id);

/// An ACK `43<id>[{"ok":true...}...]` for `ack_id`: 1 when it says ok:true, 0 when it is
/// for that id and does not (ok:false, an error), -1 when it is not an ACK of `ack_id`.
/// A few compares: once per subscriber at the join, never on deliveries.
int socketio_ack_ok(std::string_view text, uint32_t ack_id) noexcept;

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
        ack,      ///< socketio: an ACK (43<id>[...]), the answer to an event we emitted
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
