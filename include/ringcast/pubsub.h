// ringcast pubsub — channels, subscriptions, publishing and fan-out (DESIGN §2-4).
//
// This header has two parts:
//  1. The wire protocol (pure functions, no state): parsing client commands and backend
//     publish requests, validating names, writing the message envelope and replies. They
//     take bytes and return values, so unit tests, fuzzers and the server share them.
//  2. The runtime (channel index, home-shard ordering, mesh fan-out): added below.
//
// The protocol itself is specified in docs/protocol.md.
#pragma once

#include <ringcast/core.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::pubsub {

// ---- 1. wire protocol ------------------------------------------------------------------

/// Delivery priority: 1 critical (never dropped silently), 2 high, 3 normal, 4 low.
enum class priority : uint8_t { critical = 1, high = 2, normal = 3, low = 4 };

/// Channel names: 1-255 bytes of [A-Za-z0-9_.:@*-].
bool valid_channel(std::string_view name) noexcept;
/// Event names: 1-255 printable ASCII bytes except '"' and '\'.
bool valid_event(std::string_view name) noexcept;
/// User ids: 1-64 bytes of [A-Za-z0-9_.@-].
bool valid_user_id(std::string_view id) noexcept;
/// The namespace of a channel: the part before the first ':' (empty when none).
std::string_view channel_namespace(std::string_view channel) noexcept;

enum class command_op : uint8_t { subscribe, unsubscribe, publish, ping };

struct recover_point {
    std::string_view epoch;
    uint64_t offset = 0;
};

/// One parsed client command. Views point into the text given to parse_command().
struct command {
    command_op op = command_op::ping;
    bool has_id = false;
    uint64_t id = 0;              ///< echoed in the reply when has_id
    std::string_view channel;     ///< subscribe, unsubscribe, publish (valid_channel)
    std::string_view event;       ///< publish; "message" when absent (valid_event)
    std::string_view data;        ///< publish: raw JSON text of "data", validated; "null" when absent
    priority prio = priority::normal;
    bool has_recover = false;
    recover_point recover;        ///< subscribe with "recover"
};

/// Why a command was refused; `code` per docs/protocol.md (400 ...), `message` static text.
struct command_error {
    int code = 400;
    std::string_view message;
    bool has_id = false; ///< the id could be read, so the reply can echo it
    uint64_t id = 0;
};

/// Parses one client text message (docs/protocol.md "Client → server"). Strict JSON
/// (RFC 8259, UTF-8): duplicate keys take the last value; unknown keys are ignored; `data`
/// is validated completely and kept byte for byte. Never throws; bounded work per byte.
result<command, command_error> parse_command(std::string_view text) noexcept;

/// A backend publish (POST /api/publish, /api/send, /api/broadcast items).
struct publish_request {
    std::string_view channel; ///< empty for /api/send and whole-server broadcasts
    std::string_view event = "message";
    std::string_view data = "null";
    priority prio = priority::normal;
    std::string_view user_id;              ///< "userId"; empty when absent
    std::vector<std::string_view> channels; ///< "channels" (broadcast to a list)
};

/// Parses a POST body: one request, or {"messages":[...]} into several. Views point into
/// `body`. The error's message says which field is wrong (e.g. "messages[3].channel").
result<std::vector<publish_request>, command_error> parse_publish_body(std::string_view body);

/// The fields of one envelope (docs/protocol.md "Server → client").
struct envelope {
    std::string_view message_id;
    std::string_view event;
    std::string_view channel;
    std::string_view data; ///< raw JSON, already validated
    priority prio = priority::normal;
    uint64_t timestamp_ms = 0;
    std::string_view user_id; ///< empty → "userId":null
    uint64_t offset = 0;
};

/// Exact byte length of write_envelope()'s output for `e`.
std::size_t envelope_size(const envelope& e) noexcept;
/// Writes `e` as one JSON object into `out` (exactly envelope_size(e) bytes) and returns
/// the bytes written. Names are already valid (no escaping needed), data is raw JSON.
std::size_t write_envelope(const envelope& e, std::span<char> out) noexcept;

/// {"op":"reply","id":<id|null>,"ok":true<extra>} where `extra_fields` is either empty or
/// starts with ',' (e.g. ",\"offset\":5").
std::string reply_ok(bool has_id, uint64_t id, std::string_view extra_fields = {});
/// {"op":"reply","id":<id|null>,"ok":false,"error":{"code":N,"message":"..."}} with the
/// message JSON-escaped.
std::string reply_error(bool has_id, uint64_t id, int code, std::string_view message);

} // namespace ringcast::pubsub
