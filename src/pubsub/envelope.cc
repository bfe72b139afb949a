// The message envelope and command replies (docs/protocol.md "Server → client").
//
// The envelope is written once per published message, on its home shard, straight into the
// frame buffer: envelope_size() and write_envelope() are built from the same field table so
// the size is exact and no intermediate string is made. Names are valid by construction
// (names.cc charsets need no JSON escaping) and data is already-validated raw JSON.
#include "envelope_text.h"
#include "ringcast/pubsub.h"

#include <charconv>
#include <cstring>

namespace ringcast::pubsub {

namespace {

using namespace envelope_text;

constexpr std::string_view json_null = "null";

constexpr std::size_t fixed_bytes = open_id.size() + before_event.size() +
                                    before_channel.size() + before_data.size() +
                                    before_priority.size() + before_timestamp.size() +
                                    before_user_id.size() + before_offset.size() +
                                    close_object.size();

/// uint64_t has at most 20 decimal digits (18446744073709551615).
constexpr std::size_t max_uint64_digits = 20;

constexpr std::size_t decimal_digits(uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

// An empty data view would make the envelope invalid JSON; the parsers never produce one
// ("null" when absent), but a caller-built envelope might.
std::string_view data_of(const envelope& e) noexcept {
    return e.data.empty() ? json_null : e.data;
}

char* put(char* p, std::string_view s) noexcept {
    if (s.empty()) {
        return p; // memcpy must not see a null source, even for 0 bytes
    }
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}

char* put_uint(char* p, uint64_t v) noexcept {
    return std::to_chars(p, p + max_uint64_digits, v).ptr;
}

void append_uint(std::string& out, uint64_t v) {
    char digits[max_uint64_digits];
    out.append(digits, put_uint(digits, v));
}

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629 §4), or 0 when
// the first byte does not start one.
std::size_t utf8_sequence(std::string_view s) noexcept {
    const auto at = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = at(0);
    std::size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
        n = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        n = 3;
        lo = lead == 0xe0 ? 0xa0 : 0x80; // overlong below U+0800
        hi = lead == 0xed ? 0x9f : 0xbf; // surrogates U+D800-DFFF
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        n = 4;
        lo = lead == 0xf0 ? 0x90 : 0x80; // overlong below U+10000
        hi = lead == 0xf4 ? 0x8f : 0xbf; // past U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || at(1) < lo || at(1) > hi) {
        return 0;
    }
    for (std::size_t i = 2; i < n; ++i) {
        if (at(i) < 0x80 || at(i) > 0xbf) {
            return 0;
        }
    }
    return n;
}

// RFC 8259 §7: '"', '\' and U+0000-U+001F must be escaped; control characters are written
// as \u00XX. Bytes that are not well-formed UTF-8 become U+FFFD so the reply is always
// valid JSON, whatever the message holds.
void append_json_string_body(std::string& out, std::string_view s) {
    constexpr char hex[] = "0123456789abcdef";
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (const std::size_t n = utf8_sequence(s.substr(i)); n != 0) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        } else {
            out += "\\ufffd";
        }
        ++i;
    }
}

void append_reply_head(std::string& out, bool has_id, uint64_t id) {
    out += "{\"op\":\"reply\",\"id\":";
    if (has_id) {
        append_uint(out, id);
    } else {
        out += json_null;
    }
}

} // namespace

std::size_t envelope_size(const envelope& e) noexcept {
    const std::size_t user_id = e.user_id.empty() ? json_null.size() : e.user_id.size() + 2;
    return fixed_bytes + e.message_id.size() + e.event.size() + e.channel.size() +
           data_of(e).size() + decimal_digits(static_cast<uint64_t>(e.prio)) +
           decimal_digits(e.timestamp_ms) + user_id + decimal_digits(e.offset);
}

namespace {

/// Writes the envelope into `out`; with data_in_place::no the data bytes are left out and
/// `split` says where they belong. Returns the bytes written.
enum class data_in_place : bool { no, yes };
std::size_t write_fields(const envelope& e, std::span<char> out, data_in_place with_data,
                         std::size_t& split) noexcept {
    char* p = out.data();
    p = put(p, open_id);
    p = put(p, e.message_id);
    p = put(p, before_event);
    p = put(p, e.event);
    p = put(p, before_channel);
    p = put(p, e.channel);
    p = put(p, before_data);
    split = static_cast<std::size_t>(p - out.data());
    if (with_data == data_in_place::yes) {
        p = put(p, data_of(e));
    }
    p = put(p, before_priority);
    p = put_uint(p, static_cast<uint64_t>(e.prio));
    p = put(p, before_timestamp);
    p = put_uint(p, e.timestamp_ms);
    p = put(p, before_user_id);
    if (e.user_id.empty()) {
        p = put(p, json_null);
    } else {
        *p++ = '"';
        p = put(p, e.user_id);
        *p++ = '"';
    }
    p = put(p, before_offset);
    p = put_uint(p, e.offset);
    p = put(p, close_object);
    return static_cast<std::size_t>(p - out.data());
}

} // namespace

std::size_t write_envelope(const envelope& e, std::span<char> out) noexcept {
    RINGCAST_ASSERT(out.size() >= envelope_size(e));
    std::size_t split = 0;
    return write_fields(e, out, data_in_place::yes, split);
}

std::size_t write_envelope_around_data(const envelope& e, std::span<char> out) noexcept {
    RINGCAST_ASSERT(!e.data.empty() && out.size() >= envelope_size(e) - e.data.size());
    std::size_t split = 0;
    const std::size_t n = write_fields(e, out, data_in_place::no, split);
    RINGCAST_DEBUG_ASSERT(split == envelope_data_offset(e));
    return n;
}

std::size_t envelope_data_offset(const envelope& e) noexcept {
    return open_id.size() + e.message_id.size() + before_event.size() + e.event.size() +
           before_channel.size() + e.channel.size() + before_data.size();
}

std::string reply_ok(bool has_id, uint64_t id, std::string_view extra_fields) {
    std::string out;
    out.reserve(40 + extra_fields.size());
    append_reply_head(out, has_id, id);
    out += ",\"ok\":true";
    out += extra_fields;
    out += '}';
    return out;
}

std::string reply_error(bool has_id, uint64_t id, int code, std::string_view message) {
    std::string out;
    out.reserve(80 + message.size());
    append_reply_head(out, has_id, id);
    out += ",\"ok\":false,\"error\":{\"code\":";
    out += std::to_string(code);
    out += ",\"message\":\"";
    append_json_string_body(out, message);
    out += "\"}}";
    return out;
}

std::string notice_unsubscribed(std::string_view channel, std::string_view reason) {
    std::string out;
    out.reserve(80 + channel.size() + reason.size());
    out += R"({"op":"notice","type":"unsubscribed","channel":")";
    out.append(channel); // a valid channel name: nothing to escape
    out += R"(","reason":")";
    append_json_string_body(out, reason);
    out += "\"}";
    return out;
}

uint64_t envelope_timestamp(const core::frame_ref& f) noexcept {
    // The field follows "data" and only names and numbers follow it, so its last
    // occurrence in the frame's own bytes is the envelope's, whatever the data holds (a
    // spliced body is data only, never in own bytes).
    if (!f) {
        return 0;
    }
    const std::string_view own(reinterpret_cast<const char*>(f->data()), f->own_size());
    const std::size_t at = own.rfind(before_timestamp);
    if (at == std::string_view::npos) {
        return 0;
    }
    uint64_t ms = 0;
    const char* from = own.data() + at + before_timestamp.size();
    (void)std::from_chars(from, own.data() + own.size(), ms);
    return ms;
}

} // namespace ringcast::pubsub
