// ringcast ws — RFC 6455 framing, our own, written for the hot path.
//
// What it owns: the incremental frame parser (unmasking, fragmentation with interleaved
// control frames, UTF-8 validation that fails fast, size limits, close-frame validation),
// the frame writer, the UTF-8 validator and the one table of close codes.
//
// Where it sits: bytes handed over by the shard's receive path (src/net/connection.cc) go
// through frame_parser::feed(); complete messages come out through a frame_sink. The writer
// frames a message once; the result is queued by reference (core send queue).
//
// The parser is pure: bytes in, events out. It knows nothing about io_uring or sockets, so
// unit tests, fuzzers, the wslay differential test and the server drive the same code.
// Runs on the connection's shard only; no locking, no exceptions. It allocates only to
// reassemble a message that spans reads or fragments, bounded by max_message_bytes.
#pragma once

#include <ringcast/core.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::ws {

/// RFC 6455 §5.2 opcodes. Values 0x3-0x7 and 0xB-0xF are reserved (close 1002).
enum class opcode : uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Close status codes: RFC 6455 §7.4.1 plus ringcast's own 4000-4999 range. This enum and
/// describe() in close_codes.cc are the one table (docs/close-codes.md mirrors it).
enum class close_code : uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005, ///< never sent: reported when a close frame carried no code
    abnormal = 1006,  ///< never sent: reported when the TCP connection ended without a close
    invalid_payload = 1007,
    policy_violation = 1008,
    message_too_big = 1009,
    mandatory_extension = 1010,
    internal_error = 1011,
    try_again_later = 1013,
    token_expired = 4001,
    forbidden = 4003,
    too_many_connections = 4008,
};

/// Short English text for a close code (used as the close reason when none is given).
std::string_view describe(close_code code) noexcept;

/// The close codes counted one by one (closes by code in /api/stats and /metrics): every
/// close_code, in order; slot close_code_other counts any other code a client sent (its
/// own 3000-4999, or 1012/1014).
inline constexpr close_code counted_close_codes[] = {close_code::normal,
                                                     close_code::going_away,
                                                     close_code::protocol_error,
                                                     close_code::unsupported_data,
                                                     close_code::no_status,
                                                     close_code::abnormal,
                                                     close_code::invalid_payload,
                                                     close_code::policy_violation,
                                                     close_code::message_too_big,
                                                     close_code::mandatory_extension,
                                                     close_code::internal_error,
                                                     close_code::try_again_later,
                                                     close_code::token_expired,
                                                     close_code::forbidden,
                                                     close_code::too_many_connections};
inline constexpr std::size_t close_code_other = std::size(counted_close_codes);
inline constexpr std::size_t close_code_slots = close_code_other + 1;
/// Where `code` is counted: its index in counted_close_codes, or close_code_other.
std::size_t close_code_slot(uint16_t code) noexcept;

/// WebSocket closes of one shard by code. `sent`: the server began the closing handshake
/// with that code; `received`: the client did (1005 for a close frame without a code, 1006
/// for a connection that ended without any). Each close is counted once, by the side that
/// began it. Plain integers, one writer: the shard's gateway and pubsub engine each keep
/// one, and the stats gather adds them up.
struct close_counts {
    uint64_t sent[close_code_slots] = {};
    uint64_t received[close_code_slots] = {};

    void close_sent(close_code code) noexcept {
        ++sent[close_code_slot(static_cast<uint16_t>(code))];
    }
    void close_received(uint16_t code) noexcept { ++received[close_code_slot(code)]; }
    void merge(const close_counts& o) noexcept {
        for (std::size_t i = 0; i < close_code_slots; ++i) {
            sent[i] += o.sent[i];
            received[i] += o.received[i];
        }
    }
};

/// RFC 6455 §7.4: may a peer send this code in a close frame? True for 1000-1003,
/// 1007-1014 and 3000-4999; false for everything else (including 1005, 1006, 1015).
bool close_code_valid_on_wire(uint16_t code) noexcept;

/// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
/// Fails fast: feed() returns false on the first byte that cannot continue a valid
/// sequence, even if the message is not complete yet (needed for RFC 6455 §8.1 fail-fast
/// across fragments). 4 bytes of state.
class utf8_validator {
public:
    /// Feeds the next bytes; false as soon as they cannot be a prefix of valid UTF-8.
    bool feed(std::span<const std::byte> bytes) noexcept;
    /// True when everything fed so far ends on a character boundary.
    bool complete() const noexcept { return _state == 0; }
    void reset() noexcept { _state = 0; }

private:
    uint32_t _state = 0;
};

/// Whole-buffer check: valid and complete UTF-8.
bool is_valid_utf8(std::span<const std::byte> bytes) noexcept;

/// Which side of the connection a parser serves. A server requires masked frames from its
/// client (RFC 6455 §5.1: an unmasked client frame → 1002); a client requires unmasked ones.
enum class role : uint8_t { server, client };

struct parser_limits {
    /// Largest message after reassembly; a larger one closes with 1009 as soon as its
    /// announced length (or running total of fragments) exceeds this, before buffering it.
    std::size_t max_message_bytes = 16u << 20;
};

/// Receives the parser's events, synchronously, from inside frame_parser::feed().
/// Payload spans are valid only during the call.
class frame_sink {
public:
    virtual ~frame_sink() = default;
    /// A complete data message: text (already validated UTF-8) or binary.
    virtual void on_message(opcode type, std::span<const std::byte> payload) noexcept = 0;
    /// A complete data message sent with RSV1 (RFC 7692): `payload` is the raw deflate
    /// data of the whole message, not yet inflated nor UTF-8 checked. Called only by a
    /// parser told accept_compressed(); the default ignores it for sinks that never are.
    virtual void on_compressed_message(opcode type, std::span<const std::byte> payload) noexcept {
        static_cast<void>(type);
        static_cast<void>(payload);
    }
    virtual void on_ping(std::span<const std::byte> payload) noexcept = 0;
    virtual void on_pong(std::span<const std::byte> payload) noexcept = 0;
    /// The peer's close frame: code is 1005 (no_status) when the frame had no body; the
    /// reason is validated UTF-8. After this the parser consumes nothing more.
    virtual void on_close(uint16_t code, std::string_view reason) noexcept = 0;
};

enum class parse_status : uint8_t {
    ok,     ///< every byte consumed; waiting for more
    closed, ///< a valid close frame was delivered; bytes after it are ignored
    error,  ///< protocol violation: fail the connection with `code` and `reason`
};

struct parse_result {
    parse_status status = parse_status::ok;
    close_code code = close_code::normal; ///< meaningful when status == error
    std::string_view reason;              ///< static text, meaningful when status == error
};

namespace detail {
enum class violation : uint8_t; // frame_parser.cc: the table of protocol failures
} // namespace detail

/// Incremental RFC 6455 frame parser and message assembler.
///
///   feed(bytes) ──► header ──► payload ──► (control frame)  → sink.on_ping/pong/close
///                     ▲            │       (data, fin)      → sink.on_message
///                     └────────────┘       (data, !fin)     → keep assembling
///
/// Accepts any split of the byte stream (down to one byte per feed). Unmasks in place, so
/// input is mutable; an unfragmented message wholly inside the input is delivered without a
/// copy. Checks: reserved bits (RSV1 only where accept_compressed() allows it) → 1002, reserved opcodes →
/// 1002, masking per role → 1002, control frames > 125 bytes or fragmented → 1002,
/// continuation without a started message or a new data frame inside one → 1002,
/// close payload of 1 byte, invalid close code or non-UTF-8 reason → 1002 / 1007,
/// invalid UTF-8 in text (fail fast, also across fragments) → 1007, over the limit → 1009.
/// After `closed` or `error`, feed() consumes nothing and returns the same status.
/// Idle (between messages) it holds no heap memory.
class frame_parser {
public:
    explicit frame_parser(role side = role::server, parser_limits limits = {}) noexcept;

    parse_result feed(std::span<std::byte> bytes, frame_sink& sink) noexcept;

    /// Bytes currently held for a partial frame header or message.
    std::size_t buffered_bytes() const noexcept { return _message.size() + _header_len; }
    /// Heap held for reassembly (capacity, not size): what a shard's inbound budget counts.
    std::size_t held_bytes() const noexcept { return _message.capacity(); }
    /// permessage-deflate was negotiated: RSV1 on a message's first data frame marks it
    /// compressed (delivered by on_compressed_message, its limit applying to the compressed
    /// bytes here and to the inflated ones by the sink). RSV1 on a continuation or control
    /// frame stays a protocol error (1002), as do RSV2 and RSV3.
    void accept_compressed() noexcept { _compression = true; }
    /// Gives up on the stream: frees the reassembly buffer at once, and feed() consumes
    /// nothing more (status closed). For a connection closed by policy, such as its shard's
    /// inbound budget, whose memory must go before its close handshake ends.
    void abandon() noexcept;

private:
    // Layout: 80 bytes, no heap while idle (static_assert in frame_parser.cc). A control
    // frame split across reads borrows the tail of _message instead of a 125-byte array.
    enum class state : uint8_t { header, payload, done };

    parse_result parse_header(std::span<std::byte> in, std::size_t& pos) noexcept;
    parse_result decode_header(const std::byte* header) noexcept;
    parse_result consume_payload(std::span<std::byte> chunk, frame_sink& sink) noexcept;
    parse_result consume_data(std::span<std::byte> chunk, bool last, frame_sink& sink) noexcept;
    parse_result deliver_control(std::span<std::byte> payload, frame_sink& sink) noexcept;
    parse_result fail(detail::violation why) noexcept;
    parse_result final_result() const noexcept;
    void release_message() noexcept;

    std::vector<std::byte> _message;     // reassembly: fragments or a frame split by reads
    parser_limits _limits;
    uint64_t _payload_left = 0;          // of the current frame
    utf8_validator _utf8;                // of the text message being assembled
    std::array<std::byte, 14> _header{}; // a header split across reads
    std::array<std::byte, 4> _mask{};
    uint8_t _header_len = 0;
    uint8_t _control_len = 0;            // control payload bytes parked at _message's tail
    uint8_t _mask_offset = 0;
    uint8_t _failure = 0;                // a violation once done; 0 when closed cleanly
    opcode _frame_op = opcode::continuation;
    opcode _message_op = opcode::continuation; // continuation: no message in progress
    bool _fin = false;
    bool _masked = false;
    bool _compression = false;        // accept_compressed(): RSV1 is permessage-deflate's
    bool _message_compressed = false; // the message in progress came with RSV1
    role _role;
    state _state = state::header;
};

/// Largest frame header: 2 + 8 (64-bit length) + 4 (mask key).
inline constexpr std::size_t max_frame_header_bytes = 14;

enum class fin : bool { no, yes };

/// Header size for a frame of `payload_bytes` (unmasked server frame).
std::size_t frame_header_size(uint64_t payload_bytes, bool masked = false) noexcept;

/// Writes a frame header into `out` (at least max_frame_header_bytes long) and returns the
/// bytes written. With `mask_key`, sets the mask bit and appends the key (client frames).
std::size_t write_frame_header(std::byte* out, opcode op, uint64_t payload_bytes,
                               fin final_frame = fin::yes,
                               const std::array<std::byte, 4>* mask_key = nullptr) noexcept;

/// XORs `data` with `key`, starting at key position `key_offset` (0-3); word-at-a-time.
void apply_mask(std::span<std::byte> data, std::array<std::byte, 4> key,
                std::size_t key_offset = 0) noexcept;

/// A complete unmasked (server) frame: header + payload, one buffer.
std::vector<std::byte> encode_frame(opcode op, std::span<const std::byte> payload,
                                    fin final_frame = fin::yes);

/// A complete masked (client) frame, for tests, fuzz seeds and load generators.
std::vector<std::byte> encode_client_frame(opcode op, std::span<const std::byte> payload,
                                           std::array<std::byte, 4> mask_key,
                                           fin final_frame = fin::yes);

/// Largest close frame: header 2 + code 2 + reason 123 (RFC 6455 §5.5: control ≤ 125).
inline constexpr std::size_t max_close_frame_bytes = 2 + 125;

/// Writes an unmasked close frame with `code` and `reason` (cut to 123 bytes at a UTF-8
/// character boundary) into `out` (at least max_close_frame_bytes); returns bytes written.
std::size_t write_close_frame(std::span<std::byte> out, close_code code,
                              std::string_view reason) noexcept;

/// A complete unmasked server frame in a shareable core::frame: framed once, then queued
/// by reference on any number of connections.
core::frame_ref make_server_frame(opcode op, std::span<const std::byte> payload);
core::frame_ref make_server_frame(opcode op, std::string_view text);
/// A server close frame with `code` and `reason` (see write_close_frame).
core::frame_ref make_close_frame(close_code code, std::string_view reason);


// --- permessage-deflate (RFC 7692) ----------------------------------------------------------
//
// negotiate_deflate() reads the client's Sec-WebSocket-Extensions and picks the first
// permessage-deflate offer we can honour; deflate_response_header() writes the agreement.
// A deflater compresses one message at a time with no context kept between messages (the
// shard shares one: a compressed frame is then valid for every subscriber); an inflater
// decompresses a client's messages under a size limit, with or without context takeover.
// docs/protocol.md "Compression" has the wire rules, docs/decisions.md the reasons.

/// What both sides agreed for one connection. The server never keeps context between the
/// messages it sends (server_no_context_takeover is in every response).
struct deflate_agreement {
    /// Largest LZ77 window the client lets us use (8-15; 15 when it did not say). We always
    /// compress with a 32 KiB window and send a compressed frame only to a client whose
    /// window covers the message (deflate_fits), so this bounds what we send compressed.
    uint8_t server_max_window_bits = 15;
    /// The client's window for what it sends (8-15); our inflate window is at least this.
    uint8_t client_max_window_bits = 15;
    /// The client offered client_max_window_bits with a value: the response names it.
    bool client_window_named = false;
    /// The client offered server_max_window_bits: the response names it.
    bool server_window_named = false;
    /// The client resets its context after each message: its messages can be inflated by
    /// a shared (per-shard) inflater; otherwise it needs one of its own that lives across
    /// messages.
    bool client_no_context_takeover = false;
};

/// Why negotiation produced no agreement (every case still upgrades without compression).
enum class deflate_verdict : uint8_t {
    accepted,     ///< an offer was taken: see the agreement
    not_offered,  ///< no Sec-WebSocket-Extensions, or no permessage-deflate offer in it
    malformed,    ///< the header does not parse (RFC 6455 §9.1): declined as a whole
    unsupported,  ///< every permessage-deflate offer had a parameter we cannot honour
};

struct deflate_negotiation {
    deflate_verdict verdict = deflate_verdict::not_offered;
    deflate_agreement agreement; ///< meaningful when verdict == accepted
};

/// Reads `header_value` (every Sec-WebSocket-Extensions field of the request joined by
/// ", ", which RFC 9110 §5.3 makes equivalent) and accepts the first permessage-deflate
/// offer whose parameters are all known, unrepeated and valid (RFC 7692 §7.1: an offer
/// with anything else is declined, and the next offer tried). Values may be tokens or
/// quoted strings. Never allocates; any input is safe.
deflate_negotiation negotiate_deflate(std::string_view header_value) noexcept;

/// The response's Sec-WebSocket-Extensions value for `a` (without the header name or CRLF):
/// "permessage-deflate; server_no_context_takeover" plus the parameters the offer named.
std::string deflate_response_value(const deflate_agreement& a);

/// Does a message of `payload_bytes`, compressed with no context takeover, fit a client
/// window of `window_bits`? Its back-references reach at most payload_bytes - 1 bytes back,
/// so any message no longer than the window does; a 15-bit window takes everything.
constexpr bool deflate_fits(std::size_t payload_bytes, uint8_t window_bits) noexcept {
    return window_bits >= 15 || payload_bytes <= (std::size_t{1} << window_bits);
}

/// One raw-deflate compressor that keeps no context between messages. Not copyable; about
/// 270 KiB of zlib state (window 15, memLevel 8), so one per shard, not per connection.
class deflater {
public:
    deflater();
    ~deflater();
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;

    /// Compresses one message given as consecutive `pieces` (a spliced frame's parts) and
    /// returns a complete server frame of type `op` with RSV1 set, its payload the deflate
    /// stream without the trailing 00 00 ff ff (RFC 7692 §7.2.1). Null when zlib fails
    /// (out of memory): the caller sends the message uncompressed.
    core::frame_ref compress_frame(opcode op, std::span<const std::span<const std::byte>> pieces);
    /// The same, into a plain buffer (tests, the load generator): payload only, no header.
    bool compress(std::span<const std::span<const std::byte>> pieces, std::vector<std::byte>& out);

private:
    struct state;
    std::unique_ptr<state> _z;
};

/// Why an inflate failed.
enum class inflate_status : uint8_t {
    ok,
    too_big,  ///< the inflated message would exceed the limit (close 1009)
    invalid,  ///< not a valid deflate stream (close 1007, docs/protocol.md "Compression")
    no_memory ///< zlib could not allocate (close 1011)
};

/// Counts the heap of the inflaters one shard keeps for clients with context takeover.
/// Plain integer, one writer (the shard's gateway).
struct inflate_memory {
    std::size_t held_bytes = 0;
};

/// Decompresses a client's messages (RFC 7692 §7.2.2). With context takeover it keeps its
/// window across messages (one per connection); without it, it resets before each message
/// and can be shared by every such connection of a shard. zlib's allocations are counted
/// in `memory` (when given) for the shard's --deflate-memory-budget-bytes.
class inflater {
public:
    /// `window_bits`: 9-15 (a client's 8 is inflated with 9, a larger window being always
    /// safe); `context_takeover`: keep the window between messages.
    inflater(uint8_t window_bits, bool context_takeover, inflate_memory* memory = nullptr);
    ~inflater();
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;

    /// Inflates one whole message (`compressed` with the 00 00 ff ff tail appended here)
    /// into `out` (cleared first), growing it in steps and failing with too_big as soon as
    /// the output would pass `max_bytes`, so a bomb never holds more than max_bytes plus
    /// one step. `out`'s capacity is the caller's to release.
    inflate_status inflate(std::span<const std::byte> compressed, std::size_t max_bytes,
                           std::vector<std::byte>& out) noexcept;
    /// Heap zlib holds for this inflater now.
    std::size_t held_bytes() const noexcept;

private:
    struct state;
    std::unique_ptr<state> _z;
};

/// Heap one context-takeover inflater of `window_bits` may hold at most: zlib's inflate
/// state (about 7 KiB) plus its window. What the memory budget reserves per connection.
std::size_t inflater_cost_bytes(uint8_t window_bits) noexcept;

} // namespace ringcast::ws
