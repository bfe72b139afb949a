// Private to src/net: the state of one Socket.IO connection on /socket.io/ (docs/socketio.md).
//
// A Socket.IO client is a pubsub session that speaks another wire: the gateway turns its
// packets into docs/protocol.md commands for the engine, and the engine's replies back into
// ACKs (pubsub::reply_sink); channel messages are re-framed by fan-out once per shard
// (src/pubsub/socketio_wire.h). What the translation needs between packets lives here.
//
//   upgrade ─► open packet "0{sid,…}" ─► CONNECT "40{token}" ─► session opened ─► "40{sid}"
//   EVENT join_room(room) ─► {"op":"subscribe",…,"id":K} ─► engine ─► reply K ─► ACK
//   EVENT E(room, data)   ─► {"op":"publish",…,"id":K}   ─► engine ─► reply K ─► ACK
//   heartbeat: "2" every ping interval, "3" within the ping timeout, else closed
#pragma once

#include <ringcast/socketio.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ringcast::net {

/// Commands one Socket.IO connection may have waiting for their replies. A command the
/// engine drops without a reply (one over the command rate) would otherwise stay here:
/// past this many, the oldest is forgotten (its ACK never comes; the client's own ack
/// timeout covers it). The engine holds at most 1,024 commands per connection in order.
inline constexpr std::size_t sio_max_awaiting = 1024;

struct sio_connection {
    explicit sio_connection(const socketio::sio_limits& limits) : decoder(limits) {}

    socketio::sio_decoder decoder;
    /// The Engine.IO session id of the open packet.
    std::string sid;
    /// --insecure: ?user= of the upgrade, the user the first CONNECT opens the session as.
    std::string user;
    /// Namespaces the client connected ("/" and --socketio-namespace ones); at most 1 +
    /// the configured ones.
    std::vector<std::string> namespaces;
    /// Where a command's reply goes: the namespace and the client's ack id (none: the
    /// client asked for no ACK; an error is then emitted as "ringcast:error").
    struct awaiting_reply {
        std::string nsp;
        std::optional<uint64_t> ack_id;
    };
    std::map<uint64_t, awaiting_reply> awaiting;
    uint64_t next_command = 1;
    /// Heartbeat: when the next ping goes; when the unanswered one went (0: none).
    uint64_t next_ping_ms = 0;
    uint64_t ping_sent_ms = 0;
    /// The upgrade: a connection with no CONNECT by upgraded_ms + the handshake timeout
    /// is closed.
    uint64_t upgraded_ms = 0;

    bool connected(std::string_view nsp) const noexcept {
        for (const std::string& n : namespaces) {
            if (n == nsp) {
                return true;
            }
        }
        return false;
    }
};

} // namespace ringcast::net
