// socketio.h — the Engine.IO v4 / Socket.IO v5 codec: pure functions over bytes, no I/O.
//
// What it owns: decoding what a socket.io-client 4.x sends and encoding what the server
// answers, at two layers (docs/socketio.md has the wire formats and the limits):
//
//   HTTP long-polling body            WebSocket message
//   "4...\x1e4...\x1eb<base64>"       text "4..."  /  binary <bytes>
//          │ decode_payload                 │ decode_eio_text (binary: a message as is)
//          ▼                                ▼
//   Engine.IO packets: open close ping pong message upgrade noop
//          │ message (type 4): its data is one Socket.IO packet or one binary attachment
//          ▼
//   sio_decoder: "2/chat,17[\"ev\",{…}]"  +  N attachments for BINARY_EVENT / BINARY_ACK
//          ▼
//   sio_packet: type, namespace, ack id, raw JSON payload, event name, raw args
//
// Every decoder returns a result with a named error, never throws on bad input (only
// std::bad_alloc, like any allocation) and never reads outside its input; every bound is
// a parameter (eio_limits, sio_limits) whose default follows the reference server where it
// has one (docs/socketio.md "Limits"). The module depends on core (result), simdjson (JSON validation) and
// OpenSSL (sid randomness) only, so it is fuzzed and tested alone (tests/unit/socketio,
// tests/fuzz/socketio_packet_fuzz.cc, tests/differential/socketio_js.js against the npm
// engine.io-parser and socket.io-parser).
#pragma once

#include <ringcast/core.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::socketio {

// ---------------------------------------------------------------------------------------
// Engine.IO v4
// ---------------------------------------------------------------------------------------

/// Engine.IO packet types; the wire form is the digit '0' + value.
enum class eio_type : uint8_t {
    open = 0,
    close = 1,
    ping = 2,
    pong = 3,
    message = 4,
    upgrade = 5,
    noop = 6
};

/// Text or binary data: a binary message travels as a WebSocket binary message, or as
/// "b" + base64 in a long-polling payload.
enum class eio_encoding : uint8_t { text, binary };

enum class eio_error : uint8_t {
    empty_packet,      // a packet (or a payload record) with no type character
    unknown_type,      // a type character outside '0'..'6' (and not 'b' in a payload)
    bad_base64,        // "b" + something that is not canonical padded base64
    payload_too_large, // a long-polling body longer than eio_limits::max_payload_bytes
    too_many_packets,  // more records than eio_limits::max_packets_per_payload
};

/// A stable reason phrase for logs and close reasons.
std::string_view describe(eio_error e) noexcept;

/// Bounds on one long-polling body. Defaults: engine.io's maxHttpBufferSize (1e6 bytes);
/// a socket.io-client batches its write buffer under the server's maxPayload, so a count
/// bound only stops a body of empty-ish records.
struct eio_limits {
    std::size_t max_payload_bytes = 1'000'000;
    std::size_t max_packets_per_payload = 256;
};

/// One text packet: its type and the bytes after the type character (a view into the
/// decoded input).
struct eio_text_packet {
    eio_type type;
    std::string_view data;
};

/// Decodes one Engine.IO text packet: a WebSocket text message, or one record of a
/// long-polling payload that does not start with 'b'. Any bytes may follow the type.
result<eio_text_packet, eio_error> decode_eio_text(std::string_view packet) noexcept;

/// One packet of a long-polling payload: a text packet's bytes after its type (a view into
/// the decoded body), or a binary message's decoded bytes (owned).
struct eio_packet {
    eio_type type;
    eio_encoding encoding;
    std::string_view text;
    std::string binary;
    std::string_view data() const noexcept {
        return encoding == eio_encoding::binary ? std::string_view(binary) : text;
    }
};

/// Decodes a long-polling POST body: records separated by 0x1E, each a text packet or
/// "b" + base64 (a binary message). Fails on the first bad record (engine.io-parser stops
/// there too), on a body over max_payload_bytes or with more than max_packets_per_payload
/// records. An empty body is one empty record: empty_packet. Text views point into `body`.
result<std::vector<eio_packet>, eio_error> decode_payload(std::string_view body,
                                                          const eio_limits& limits = {});

/// "<digit><data>": one text packet (a WebSocket text message, or a payload record).
std::string encode_eio_text(eio_type type, std::string_view data);

/// What encode_payload joins: text packets by type and data, binary messages by bytes.
struct eio_outgoing {
    eio_type type;
    eio_encoding encoding;
    std::string_view data;
};

/// Joins packets into one long-polling response body (0x1E between records; a binary
/// message as "b" + padded base64, always of type message).
std::string encode_payload(std::span<const eio_outgoing> packets);

/// The fields of the open packet (engine.io's handshake). `websocket_upgrade` lists
/// "websocket" in upgrades (false for a connection that already is a WebSocket).
struct eio_handshake {
    std::string_view sid;
    bool websocket_upgrade = true;
    uint32_t ping_interval_ms = 25'000;
    uint32_t ping_timeout_ms = 20'000;
    uint32_t max_payload_bytes = 1'000'000;
};

/// The open packet: `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,
/// "maxPayload":…}`. `sid` must be make_sid()'s output (base64url, no escaping needed).
std::string encode_open(const eio_handshake& handshake);

/// The upgrade probe exchange on the new WebSocket: the client sends "2probe", the server
/// answers "3probe", the client sends "5" (upgrade) and the polling transport is retired.
inline constexpr std::string_view probe_ping = "2probe";
inline constexpr std::string_view probe_pong = "3probe";
inline constexpr std::string_view upgrade_packet = "5";
/// The heartbeat: the server sends "2", the client answers "3".
inline constexpr std::string_view ping_packet = "2";
inline constexpr std::string_view pong_packet = "3";

/// Random bytes behind one sid (120 bits, as engine.io's base64id).
inline constexpr std::size_t sid_random_bytes = 15;
/// A new session id: sid_random_bytes from OpenSSL's CSPRNG (RAND_bytes) as unpadded
/// base64url (20 characters). Fails only when the CSPRNG does.
result<std::string, std::string_view> make_sid();

/// Strict padded base64 (RFC 4648 §4), the form engine.io-parser writes after "b".
std::string base64_encode(std::string_view bytes);
/// Decodes canonical padded base64 into `out`; false on anything else (whitespace, missing
/// padding, non-zero unused bits).
bool base64_decode(std::string_view text, std::string& out);

// ---------------------------------------------------------------------------------------
// Socket.IO v5
// ---------------------------------------------------------------------------------------

/// Socket.IO packet types; the wire form is the digit '0' + value.
enum class sio_type : uint8_t {
    connect = 0,
    disconnect = 1,
    event = 2,
    ack = 3,
    connect_error = 4,
    binary_event = 5,
    binary_ack = 6,
};

enum class sio_error : uint8_t {
    empty_packet,          // no type character
    unknown_type,          // type outside '0'..'6'
    bad_attachment_count,  // BINARY_*: no "<digits>-", zero, or a leading zero
    too_many_attachments,  // more than sio_limits::max_attachments
    namespace_too_long,    // longer than sio_limits::max_namespace_bytes
    bad_namespace,         // control bytes or invalid UTF-8 in the namespace
    ack_id_too_long,       // more than sio_limits::max_ack_id_digits digits
    bad_json,              // the payload is not one valid JSON value (RFC 8259)
    missing_payload,       // EVENT / ACK / CONNECT_ERROR without a payload
    unexpected_payload,    // DISCONNECT with a payload
    bad_payload,           // wrong JSON shape for the type (CONNECT: object; EVENT:
                           // array, first a string; ACK: array; CONNECT_ERROR: string/object),
                           // or a payload that does not start with '[', '{' or '"'
    reserved_event_name,   // an event named connect, connect_error, disconnect, …
    bad_placeholder,       // {"_placeholder":true,"num":N} with N not an attachment index
    unexpected_text,       // a text packet while attachments are awaited
    unexpected_binary,     // an attachment when none is awaited
    attachments_too_large, // attachments beyond sio_limits::max_attachment_bytes
    packet_too_large,      // a text packet beyond sio_limits::max_packet_bytes
};

/// A stable reason phrase for logs and close reasons.
std::string_view describe(sio_error e) noexcept;

/// Bounds on what a client may send. max_attachments is socket.io-parser's default (10);
/// attachment bytes match engine.io's default maxPayload (1e6).
struct sio_limits {
    std::size_t max_packet_bytes = 1'000'000;
    std::size_t max_namespace_bytes = 128;
    /// 15 digits keep every id below 2^53, exact in a JavaScript number.
    std::size_t max_ack_id_digits = 15;
    std::size_t max_attachments = 10;
    std::size_t max_attachment_bytes = 1'000'000;
};

/// One decoded Socket.IO packet. Views point into the text they were decoded from (for
/// sio_decoder: into the decoder, valid until its next feed or reset).
struct sio_packet {
    sio_type type = sio_type::connect;
    /// "/" when the packet names none.
    std::string_view nsp = "/";
    std::optional<uint64_t> ack_id;
    /// BINARY_EVENT / BINARY_ACK: the attachments announced ("N-"); 0 otherwise.
    std::size_t attachments = 0;
    /// The JSON payload exactly as sent (validated); empty when there is none.
    std::string_view data;
    /// EVENT / BINARY_EVENT: the event name, unescaped.
    std::string event;
    /// EVENT / BINARY_EVENT: the arguments after the name; ACK / BINARY_ACK: all elements —
    /// as the raw JSON between the array's brackets ("1,{\"a\":2}"), trimmed; empty when none.
    std::string_view args;
};

/// Decodes one Socket.IO packet from an Engine.IO message's text. Checks the header, the
/// payload's JSON validity (simdjson) and its shape for the type, and for binary packets
/// that every placeholder's num is below the announced count. It does not collect
/// attachments (sio_decoder does).
result<sio_packet, sio_error> decode_sio(std::string_view text, const sio_limits& limits = {});

/// What ringcast reads from a CONNECT payload (the client's `auth` option, merged by
/// socket.io-client 4.6+ with `pid` and `offset` on a reconnect with recovery).
struct connect_auth {
    std::optional<std::string> token;  // the JWT (`auth: {token}`)
    std::optional<std::string> pid;    // the private session id from our CONNECT reply
    std::optional<std::string> offset; // the offset of the last event the client received
};

/// Reads `token`, `pid` and `offset` from a CONNECT packet's data (sio_packet::data: empty
/// or a validated JSON object); other members are ignored. bad_payload when one of the
/// three is not a string or appears twice (JSON.parse would take the last, another reader
/// the first; a token must not have two readings), bad_json when `data` is not valid JSON.
result<connect_auth, sio_error> parse_connect_auth(std::string_view data);

/// Per-connection decoder: a text packet in, a packet out — or, for BINARY_EVENT /
/// BINARY_ACK, nothing until exactly `attachments` binary messages have followed.
///
///   idle ──text (not binary)──► ready            idle ──text (binary, N)──► awaiting(N)
///   awaiting(k) ──binary──► awaiting(k-1) … ──last binary──► ready
///   awaiting ──text──► error: unexpected_text     idle ──binary──► error: unexpected_binary
///
/// After an error the decoder is idle again; the caller closes the connection. Not
/// thread-safe; one per connection (its namespaces share one packet stream). Movable —
/// packet()'s views point into a heap buffer that moves along — but not copyable (a copy's
/// views would point into the original).
class sio_decoder {
public:
    enum class status : uint8_t { ready, awaiting_attachments };

    explicit sio_decoder(const sio_limits& limits = {}) : _limits(limits) {}
    sio_decoder(const sio_decoder&) = delete;
    sio_decoder& operator=(const sio_decoder&) = delete;
    sio_decoder(sio_decoder&&) noexcept = default;
    sio_decoder& operator=(sio_decoder&&) noexcept = default;

    /// A text Engine.IO message (its data after the '4'). On `ready`, packet() holds it.
    result<status, sio_error> feed_text(std::string_view text);
    /// A binary Engine.IO message. On `ready`, packet() and attachments() hold the packet.
    result<status, sio_error> feed_binary(std::string_view bytes);

    /// The last complete packet; valid until the next feed or reset.
    const sio_packet& packet() const noexcept { return _packet; }
    /// Its attachments in arrival order (= placeholder num order); empty for text packets.
    std::span<const std::string> attachments() const noexcept { return _attachments; }
    /// Attachments still expected (0 when idle).
    std::size_t awaiting() const noexcept { return _awaiting; }
    void reset() noexcept;

private:
    sio_limits _limits;
    std::vector<char> _text; // not std::string: its small-string buffer would move
    sio_packet _packet;
    std::vector<std::string> _attachments;
    std::size_t _awaiting = 0;
    std::size_t _attachment_bytes = 0;
};

// ---- encoders: what the server sends. Each returns the Socket.IO packet text; the caller
// wraps it in an Engine.IO message ("4" + text) or uses the eio_* helpers below.
//
// Preconditions on every encoder (the caller's values, not a client's): `nsp` starts with
// '/' and contains no ','; a string argument (event name, message, sid, pid, offset) is
// valid UTF-8 (it is JSON-escaped here); a `*_json` argument is already valid JSON text
// (a value, or for `args_json` a comma-separated list of values, possibly empty).

/// CONNECT reply: `0/ns,{"sid":…}` plus `"pid":…` when connection state recovery is on
/// (socket.io 4.6+; the client stores it and sends it back with its last offset in the
/// CONNECT payload of a reconnect).
std::string encode_connect(std::string_view nsp, std::string_view sid,
                           std::optional<std::string_view> pid = std::nullopt);
/// CONNECT_ERROR: `4/ns,{"message":…}` plus `"data":<data_json>` when given.
std::string encode_connect_error(std::string_view nsp, std::string_view message,
                                 std::optional<std::string_view> data_json = std::nullopt);
/// DISCONNECT: `1/ns,` (just "1" for "/").
std::string encode_disconnect(std::string_view nsp);
/// EVENT: `2/ns,<id>["event",<args_json>,"offset"]`; the ack id asks the client for an
/// ACK; the offset is the recovery position appended as the last argument (what
/// socket.io's session-aware adapter does for broadcast events without an ack).
std::string encode_event(std::string_view nsp, std::string_view event, std::string_view args_json,
                         std::optional<uint64_t> ack_id = std::nullopt,
                         std::optional<std::string_view> offset = std::nullopt);
/// ACK: `3/ns,<id>[<args_json>]`.
std::string encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view args_json);

/// The fan-out form, one text shared by every subscriber of a shard: the Engine.IO message
/// `42/ns,["event",<data_json>]` (+ `,"offset"` before the `]`), `data_json` spliced as
/// is — the publish path validated it, so it is not parsed again. Appends to `out`.
void append_eio_event(std::string& out, std::string_view nsp, std::string_view event,
                      std::string_view data_json,
                      std::optional<std::string_view> offset = std::nullopt);

/// JSON string literal of valid UTF-8 `text`, escaped as JSON.stringify does.
void append_json_string(std::string& out, std::string_view text);

} // namespace ringcast::socketio
