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
//
// Long-polling (socket.io-client's default first transport) carries only the Engine.IO
// handshake and the upgrade: the server answers a CONNECT once the session is on its
// WebSocket, so everything after the handshake travels there. A polling session lives on
// the shard that answered its handshake, its *owner*, named by the sid's first three hex
// digits; a request for it that another shard accepted (SO_REUSEPORT spreads a client's
// connections) is handed to the owner over the mesh, and its answer handed back:
//
//   GET  ?transport=polling            ─► owner: "0{sid,upgrades:[websocket],…}"
//   POST ?sid  "40{token}"            ─► owner keeps the packets ─► "ok"
//   GET  ?sid                          ─► held by the shard that has the connection
//   WS   ?sid  "2probe" ─► "3probe", owner answers the held GET "6" (noop)
//        "5"   ─► owner hands over the kept packets and forgets the session ─► replayed on
//              the WebSocket as if they had come there (the CONNECT is answered now)
#pragma once

#include <ringcast/core.h>
#include <ringcast/socketio.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ringcast::net {

/// Commands one Socket.IO connection may have waiting for their replies, and their bytes:
/// past either, an emit is answered 429 at once and not handed over. They stay under what
/// the engine holds per connection in order (1,024 commands, 4 MiB), so the engine never
/// refuses one of them without its id, and every command handed over gets its reply (the
/// command rate is checked before: engine::over_rate).
inline constexpr std::size_t sio_max_awaiting = 1024;
inline constexpr std::size_t sio_max_awaiting_bytes = 3u << 20;

/// Polling sessions one shard keeps (each lives until its upgrade, at most the handshake
/// timeout); past it a new handshake is refused with 503.
inline constexpr std::size_t sio_max_polling_sessions = 4096;
/// What a polling session keeps of the client's packets until its upgrade: its CONNECTs
/// (one per namespace) and little else. Past either bound the session is dropped (400).
inline constexpr std::size_t sio_max_polling_packets = 16;
inline constexpr std::size_t sio_max_polling_bytes = 64u << 10;
/// Engine.IO messages a WebSocket that said "5" may send before the owner handed the
/// session over (it waits a mesh round trip; a client sends its buffered packets at once).
inline constexpr std::size_t sio_max_early_messages = 64;

/// The sid's owner: its first three hex digits (make_owned_sid), or none for a sid that has
/// none or names no shard.
std::optional<shard_id> sid_owner(std::string_view sid, unsigned shards) noexcept;
/// A new sid owned by `owner`: three hex digits, then socketio::make_sid()'s 20 characters.
result<std::string, std::string_view> make_owned_sid(shard_id owner);

/// A room a Socket.IO connection joined (its join's ACK said ok): where it stood then, for
/// connection state recovery.
struct sio_room {
    std::string nsp;
    std::string channel;
    std::string epoch;          ///< the channel's epoch in the join's reply
    uint64_t joined_offset = 0; ///< the reply's offset: every later message was to come
    uint64_t joined_seq = 0;    ///< the shard's Socket.IO delivery sequence at the reply
};

/// A room to resubscribe after a recovery: from `position` (with recover) when known.
struct sio_room_position {
    std::string nsp;
    std::string channel;
    std::string epoch;
    std::optional<uint64_t> position;
};

/// A disconnected Socket.IO namespace kept for connection state recovery, by its pid, on
/// the shard its connection was on (the pid's owner), until `expires_ms`
/// (--socketio-recovery-ms).
struct sio_parked {
    std::string user;
    std::string nsp;
    std::vector<sio_room> rooms;
    uint64_t expires_ms = 0;
};
/// Parked sessions per shard, and their rooms (~360 B each: 256 K rooms ≈ 90 MB); past
/// either the one expiring soonest goes first (counted).
inline constexpr std::size_t sio_max_parked = 65536;
inline constexpr std::size_t sio_max_parked_rooms = 262144;

/// One polling session on its owner.
struct sio_polling {
    /// The Engine.IO messages the client POSTed (their text after the type, "0…" for a
    /// CONNECT), in order, for the WebSocket to replay.
    std::vector<std::string> packets;
    std::size_t bytes = 0;
    uint64_t expires_ms = 0;
    /// The GET being held for it (by the shard that has its connection), to answer "6"
    /// at the probe; seq 0: none.
    shard_id poll_shard{};
    conn_handle poll_conn{};
    uint32_t poll_seq = 0;
    bool probed = false;
};

/// A polling request handed to the owner, its answer handed back, and the upgrade's probe
/// and hand-over (socketio_session.h's file comment has the flow).
struct sio_msg {
    enum class op : uint8_t {
        post,   ///< to owner: `body` is a POST's payload; answered with `response`
        get,    ///< to owner: a GET; answered at once (400, "6") or held by the asker
        probe,  ///< to owner: the WebSocket said "2probe": answer the held GET "6"
        take,   ///< to owner: the WebSocket said "5": hand the packets over (taken)
        answer, ///< to asker: `response` for the request on `conn` numbered `seq`
        taken,  ///< to the WebSocket's shard: `packets` (found: the session existed)
        /// to the pid's owner: a CONNECT with `sid` = the pid, `body` = the last delivery
        /// tag the client received, `headers` = the user, `packets[0]` = the namespace
        restore,
        restored, ///< to the asker: `rooms` to resubscribe (found: the pid was parked)
    } what = op::get;
    std::string sid;
    conn_handle conn;  ///< the asking connection (HTTP request, or the WebSocket)
    uint32_t seq = 0;  ///< answer: which of the connection's requests it answers
    std::string body;  ///< post
    int status = 200;     ///< answer: the HTTP status
    std::string response; ///< answer: the body
    /// post, get: the asker's extra response headers (CORS), echoed in the answer.
    std::string headers;
    std::vector<std::string> packets; ///< taken
    bool found = false; ///< taken, restored
    std::vector<sio_room_position> rooms; ///< restored
};

namespace kinds {
struct sio_to_owner {
    using payload = sio_msg;
    static constexpr std::string_view name = "net.sio_to_owner";
};
struct sio_to_asker {
    using payload = sio_msg;
    static constexpr std::string_view name = "net.sio_to_asker";
};
} // namespace kinds

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
    /// client asked for no ACK; an error is then emitted as "ringcast:error"), and what
    /// the reply changes: a join or leave of `channel`, or a room resubscribed by a
    /// recovery.
    enum class purpose : uint8_t { other, join, leave, restore };
    struct awaiting_reply {
        std::string nsp;
        std::optional<uint64_t> ack_id;
        purpose why = purpose::other;
        std::string channel;
        std::size_t bytes = 0; ///< the command's, counted in awaiting_bytes
    };
    std::map<uint64_t, awaiting_reply> awaiting;
    std::size_t awaiting_bytes = 0;
    uint64_t next_command = 1;
    /// Rooms joined (bounded by the engine's channel limit: only ok joins are added), and
    /// the pid each connected namespace was given (connection state recovery on).
    std::vector<sio_room> rooms;
    std::vector<std::pair<std::string, std::string>> pids;
    /// A CONNECT that recovers: its reply waits until the owner answered and every room's
    /// resubscription replied; `recovered` stays true while each of them did.
    struct recovering_connect {
        std::string nsp;
        std::string pid;
        uint32_t outstanding = 0;
        bool recovered = true;
        /// Shards yet to answer the restore (every shard is asked), and whether one had it.
        unsigned shards_waiting = 0;
        bool found = false;
    };
    std::vector<recovering_connect> recovering;
    /// Heartbeat: when the next ping goes; when the unanswered one went (0: none).
    uint64_t next_ping_ms = 0;
    uint64_t ping_sent_ms = 0;
    /// The upgrade: a connection with no CONNECT by upgraded_ms + the handshake timeout
    /// is closed.
    uint64_t upgraded_ms = 0;
    /// An upgrade from polling: the session's sid while it is being taken over ("2probe"
    /// not yet seen, or "5" sent to the owner and its packets not back); empty otherwise.
    std::string polling_sid;
    bool probed = false;
    bool taking = false;
    /// Messages that came after "5" while the owner's packets were on their way.
    std::vector<std::string> early;

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
