// RFC 6455 §5 incremental frame parser and message assembler.
//
//            ┌──────────── frame complete ◄──────────────┐
//            ▼                                           │
//   ┌─────────────────┐  header complete,  ┌─────────────┴─────────┐
//   │ header          │ ─────────────────► │ payload               │
//   │ split: parked   │  checks passed     │ unmask in place,      │
//   │ in _header      │                    │ UTF-8 check per chunk │
//   └────────┬────────┘                    └─────────────┬─────────┘
//            │ violation                 violation,      │
//            └──────────────► done ◄──── valid close ────┘
//
// Where payload bytes go:
//   * a final data frame whose whole payload is in the caller's buffer, with nothing
//     assembled before it: delivered from that buffer (no copy, no allocation);
//   * any other data bytes (fragments, a frame split by reads): appended to _message,
//     which is freed, not just cleared, as soon as the message is delivered or the parser
//     fails, so an idle connection holds no heap (ws.h contract);
//   * a control frame wholly in the buffer: delivered from it; one split by reads is parked
//     at the tail of _message (after any assembled fragments) and cut off again once
//     delivered, so a ping between fragments never disturbs the message.
//
// Allocation is bounded by max_message_bytes (+125 for a parked control frame). If the
// allocator itself fails, std::vector throws inside noexcept functions and the process
// terminates: out of memory is not a protocol event the connection could recover from.
#include "ringcast/ws.h"

#include <algorithm>
#include <cstring>

namespace ringcast::ws {

namespace detail {

// Every way a peer can fail the connection; indexes violation_table below.
enum class violation : uint8_t {
    none,
    reserved_bits,
    compressed_continuation,
    compressed_control,
    reserved_opcode,
    fragmented_control,
    control_too_long,
    client_frame_unmasked,
    server_frame_masked,
    continuation_without_message,
    data_frame_inside_message,
    length_top_bit,
    length_not_minimal,
    close_one_byte,
    close_code_invalid,
    close_reason_not_utf8,
    text_not_utf8,
    message_too_big,
};

} // namespace detail

namespace {

using detail::violation;

struct violation_entry {
    close_code code;
    std::string_view reason; // static text: parse_result::reason points here
};

// The one table of parser failures, in the order of enum class violation.
constexpr violation_entry violation_table[] = {
    {close_code::normal, ""},
    // §5.2: RSV1-3 must be 0 unless an extension defining them was negotiated.
    {close_code::protocol_error, "reserved bits set without a negotiated extension"},
    // RFC 7692 §6: RSV1 marks a compressed message on its first frame only, and never a
    // control frame (§6.1).
    {close_code::protocol_error, "RSV1 set on a continuation frame"},
    {close_code::protocol_error, "RSV1 set on a control frame"},
    // §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    {close_code::protocol_error, "reserved opcode"},
    // §5.5: control frames must not be fragmented.
    {close_code::protocol_error, "fragmented control frame"},
    // §5.5: control frames carry at most 125 bytes.
    {close_code::protocol_error, "control frame longer than 125 bytes"},
    // §5.1: a client masks every frame; a server masks none.
    {close_code::protocol_error, "client frame is not masked"},
    {close_code::protocol_error, "server frame is masked"},
    // §5.4: continuation frames only follow a non-final text/binary frame, and a new
    // text/binary frame only starts once the previous message has ended.
    {close_code::protocol_error, "continuation frame without a message in progress"},
    {close_code::protocol_error, "new data frame inside a fragmented message"},
    // §5.2: the most significant bit of a 64-bit length must be 0.
    {close_code::protocol_error, "64-bit payload length has its top bit set"},
    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    {close_code::protocol_error, "payload length is not minimally encoded"},
    // §5.5.1: a close body, if any, starts with a 2-byte status code.
    {close_code::protocol_error, "close frame with a 1-byte payload"},
    // §7.4: codes a peer may not send (1004-1006, 1015, 0-999, 1016-2999, 5000+).
    {close_code::protocol_error, "invalid close code"},
    // §5.5.1 / §8.1: the close reason and text messages must be valid UTF-8.
    {close_code::invalid_payload, "close reason is not valid UTF-8"},
    {close_code::invalid_payload, "text message is not valid UTF-8"},
    // §10.4: the endpoint's own limit on message size.
    {close_code::message_too_big, "message exceeds the size limit"},
};

static_assert(std::size(violation_table) ==
              static_cast<std::size_t>(violation::message_too_big) + 1);

constexpr uint8_t to_u8(std::byte b) noexcept {
    return std::to_integer<uint8_t>(b);
}

constexpr bool is_control(opcode op) noexcept {
    return (static_cast<uint8_t>(op) & 0x8) != 0;
}

constexpr bool is_defined_opcode(uint8_t op) noexcept {
    return op <= 0x2 || (op >= 0x8 && op <= 0xa);
}

// Largest payload each length form may carry when encoded minimally (§5.2).
constexpr uint64_t max_7bit_length = 125;
constexpr uint64_t max_16bit_length = 0xffff;

// Header bytes announced by the second header byte: 2 + extended length + mask key.
constexpr std::size_t header_size(std::byte second) noexcept {
    const uint8_t len7 = to_u8(second) & 0x7f;
    std::size_t n = (to_u8(second) & 0x80) != 0 ? 6 : 2;
    if (len7 == 126) {
        n += 2;
    } else if (len7 == 127) {
        n += 8;
    }
    return n;
}

// Everything the first two header bytes decide, so a bad frame fails before its extended
// length, mask key or payload arrives. Pure: called again when a split header completes.
constexpr violation check_start(std::byte first, std::byte second, role side,
                                bool message_in_progress, bool compression) noexcept {
    const uint8_t b0 = to_u8(first);
    const uint8_t b1 = to_u8(second);
    const uint8_t reserved = compression ? 0x30 : 0x70; // RSV1 belongs to permessage-deflate
    if ((b0 & reserved) != 0) {
        return violation::reserved_bits;
    }
    const uint8_t op = b0 & 0x0f;
    if ((b0 & 0x40) != 0 && (op & 0x8) != 0) {
        return violation::compressed_control;
    }
    if ((b0 & 0x40) != 0 && op == static_cast<uint8_t>(opcode::continuation)) {
        return violation::compressed_continuation;
    }
    if (!is_defined_opcode(op)) {
        return violation::reserved_opcode;
    }
    const bool masked = (b1 & 0x80) != 0;
    if (side == role::server && !masked) {
        return violation::client_frame_unmasked;
    }
    if (side == role::client && masked) {
        return violation::server_frame_masked;
    }
    const uint8_t len7 = b1 & 0x7f;
    if ((op & 0x8) != 0) {
        if ((b0 & 0x80) == 0) {
            return violation::fragmented_control;
        }
        if (len7 > max_7bit_length) {
            return violation::control_too_long;
        }
        if (op == static_cast<uint8_t>(opcode::close) && len7 == 1) {
            return violation::close_one_byte;
        }
        return violation::none;
    }
    if (op == static_cast<uint8_t>(opcode::continuation) && !message_in_progress) {
        return violation::continuation_without_message;
    }
    if (op != static_cast<uint8_t>(opcode::continuation) && message_in_progress) {
        return violation::data_frame_inside_message;
    }
    return violation::none;
}

uint64_t read_big_endian(const std::byte* p, std::size_t bytes) noexcept {
    uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
        value = value << 8 | to_u8(p[i]);
    }
    return value;
}

void append(std::vector<std::byte>& to, std::span<const std::byte> bytes) {
    to.insert(to.end(), bytes.begin(), bytes.end());
}

} // namespace

// 80 bytes: every connection carries one, so idle cost matters (the aim is a few hundred
// bytes per idle connection for all of ringcast: docs/architecture.md "Memory per
// connection").
static_assert(sizeof(frame_parser) <= 80);

frame_parser::frame_parser(role side, parser_limits limits) noexcept
    : _limits(limits), _role(side) {}

parse_result frame_parser::feed(std::span<std::byte> bytes, frame_sink& sink) noexcept {
    std::size_t pos = 0;
    while (_state != state::done) {
        if (_state == state::header) {
            if (pos == bytes.size()) {
                return {};
            }
            const parse_result r = parse_header(bytes, pos);
            if (r.status != parse_status::ok) {
                return r;
            }
            if (_state == state::header) {
                return {}; // header still incomplete; every byte parked
            }
        }
        // A zero-length frame completes here without needing another byte.
        const auto take = static_cast<std::size_t>(
            std::min<uint64_t>(_payload_left, bytes.size() - pos));
        if (take == 0 && _payload_left != 0) {
            return {};
        }
        const parse_result r = consume_payload(bytes.subspan(pos, take), sink);
        pos += take;
        if (r.status != parse_status::ok) {
            return r;
        }
    }
    return final_result();
}

// Consumes header bytes from bytes[pos...]. Leaves _state == payload once a valid header
// is decoded, header while more bytes are needed (all of them parked).
parse_result frame_parser::parse_header(std::span<std::byte> bytes, std::size_t& pos) noexcept {
    const std::size_t available = bytes.size() - pos;
    if (_header_len == 0 && available >= 2) {
        const std::size_t need = header_size(bytes[pos + 1]);
        if (available >= need) {
            const std::byte* header = bytes.data() + pos;
            pos += need;
            return decode_header(header);
        }
    }
    // Slow path: the header straddles reads.
    const auto park = [&](std::size_t upto) noexcept {
        const std::size_t n = std::min(upto - _header_len, bytes.size() - pos);
        std::memcpy(_header.data() + _header_len, bytes.data() + pos, n);
        _header_len = static_cast<uint8_t>(_header_len + n);
        pos += n;
    };
    if (_header_len < 2) {
        park(2);
        if (_header_len < 2) {
            return {};
        }
    }
    const violation early = check_start(_header[0], _header[1], _role,
                                        _message_op != opcode::continuation, _compression);
    if (early != violation::none) {
        return fail(early);
    }
    const std::size_t need = header_size(_header[1]);
    park(need);
    if (_header_len < need) {
        return {};
    }
    _header_len = 0;
    return decode_header(_header.data());
}

// Validates a complete header and sets up the frame. The limit check runs here, on the
// announced length, so an oversized message fails before any of it is buffered.
parse_result frame_parser::decode_header(const std::byte* header) noexcept {
    const violation early = check_start(header[0], header[1], _role,
                                        _message_op != opcode::continuation, _compression);
    if (early != violation::none) {
        return fail(early);
    }
    _fin = (to_u8(header[0]) & 0x80) != 0;
    _frame_op = static_cast<opcode>(to_u8(header[0]) & 0x0f);
    _masked = (to_u8(header[1]) & 0x80) != 0;
    uint64_t length = to_u8(header[1]) & 0x7f;
    const std::byte* rest = header + 2;
    if (length == 126) {
        length = read_big_endian(rest, 2);
        rest += 2;
        if (length <= max_7bit_length) {
            return fail(violation::length_not_minimal);
        }
    } else if (length == 127) {
        length = read_big_endian(rest, 8);
        rest += 8;
        if ((length >> 63) != 0) {
            return fail(violation::length_top_bit);
        }
        if (length <= max_16bit_length) {
            return fail(violation::length_not_minimal);
        }
    }
    if (_masked) {
        std::memcpy(_mask.data(), rest, _mask.size());
    }
    _mask_offset = 0;
    if (!is_control(_frame_op)) {
        // Invariant: _message holds only this message's assembled bytes (never more than
        // the limit) because control frames are always complete before the next header.
        if (length > _limits.max_message_bytes - _message.size()) {
            return fail(violation::message_too_big);
        }
        if (_frame_op != opcode::continuation) {
            _message_op = _frame_op;
            _message_compressed = (to_u8(header[0]) & 0x40) != 0;
            _utf8.reset();
        }
    }
    _payload_left = length;
    _state = state::payload;
    return {};
}

// Takes the next `chunk` of the current frame's payload (possibly empty for a zero-length
// frame); never more than _payload_left bytes.
parse_result frame_parser::consume_payload(std::span<std::byte> chunk, frame_sink& sink) noexcept {
    if (_masked) {
        apply_mask(chunk, _mask, _mask_offset);
        _mask_offset = static_cast<uint8_t>((_mask_offset + chunk.size()) & 3);
    }
    const bool last = chunk.size() == _payload_left;
    _payload_left -= chunk.size();
    if (last) {
        _state = state::header;
    }
    if (!is_control(_frame_op)) {
        return consume_data(chunk, last, sink);
    }
    if (last && _control_len == 0) {
        return deliver_control(chunk, sink);
    }
    append(_message, chunk);
    _control_len = static_cast<uint8_t>(_control_len + chunk.size());
    if (!last) {
        return {};
    }
    const std::size_t parked = _control_len;
    _control_len = 0;
    const parse_result r = deliver_control(std::span(_message).last(parked), sink);
    if (_state != state::done) {
        _message.resize(_message.size() - parked);
        if (_message.empty()) {
            release_message();
        }
    }
    return r;
}

// Data payload: UTF-8 is checked before the bytes are kept, so invalid text fails on the
// chunk that contains the bad byte (§8.1 fail fast), not at the end of the message.
parse_result frame_parser::consume_data(std::span<std::byte> chunk, bool last,
                                        frame_sink& sink) noexcept {
    // A compressed message's bytes are deflate data: its text is checked once inflated.
    const bool text = _message_op == opcode::text && !_message_compressed;
    if (text && !_utf8.feed(chunk)) {
        return fail(violation::text_not_utf8);
    }
    if (!last || !_fin) {
        append(_message, chunk);
        return {};
    }
    if (text && !_utf8.complete()) {
        return fail(violation::text_not_utf8); // ends inside a character
    }
    const opcode type = _message_op;
    _message_op = opcode::continuation;
    const auto deliver = [&](std::span<const std::byte> message) noexcept {
        if (_message_compressed) {
            sink.on_compressed_message(type, message);
        } else {
            sink.on_message(type, message);
        }
    };
    if (_message.empty()) {
        // Nothing assembled before this chunk, and it ends the message: it is the message.
        deliver(chunk);
        return {};
    }
    append(_message, chunk);
    deliver(_message);
    release_message();
    return {};
}

// A complete control payload (≤ 125 bytes, already unmasked).
parse_result frame_parser::deliver_control(std::span<std::byte> payload,
                                           frame_sink& sink) noexcept {
    if (_frame_op == opcode::ping) {
        sink.on_ping(payload);
        return {};
    }
    if (_frame_op == opcode::pong) {
        sink.on_pong(payload);
        return {};
    }
    // Close. §7.1.5: no body means "no status code received" (1005). A 1-byte body was
    // refused with the header.
    uint16_t code = static_cast<uint16_t>(close_code::no_status);
    std::string_view reason;
    if (!payload.empty()) {
        code = static_cast<uint16_t>(read_big_endian(payload.data(), 2));
        if (!close_code_valid_on_wire(code)) {
            return fail(violation::close_code_invalid);
        }
        const auto body = payload.subspan(2);
        if (!is_valid_utf8(body)) {
            return fail(violation::close_reason_not_utf8);
        }
        reason = {reinterpret_cast<const char*>(body.data()), body.size()};
    }
    _state = state::done;
    _failure = 0;
    sink.on_close(code, reason);
    release_message(); // after on_close: a parked close payload (and reason) lives there
    return final_result();
}

parse_result frame_parser::fail(violation why) noexcept {
    _state = state::done;
    _failure = static_cast<uint8_t>(why);
    _header_len = 0; // a failure found in a parked header leaves nothing held
    _control_len = 0;
    release_message();
    return final_result();
}

parse_result frame_parser::final_result() const noexcept {
    if (_failure == 0) {
        return {parse_status::closed, close_code::normal, {}};
    }
    const violation_entry& entry = violation_table[_failure];
    return {parse_status::error, entry.code, entry.reason};
}

// Frees the buffer rather than clearing it: a kept capacity would be heap held by an idle
// connection, multiplied by every connection that once received a split message.
void frame_parser::release_message() noexcept {
    std::vector<std::byte>().swap(_message);
}

void frame_parser::abandon() noexcept {
    release_message();
    _state = state::done;
    _failure = 0;
}

} // namespace ringcast::ws
