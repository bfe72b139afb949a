// engineio.cc — Engine.IO v4 packets and long-polling payloads, base64 and session ids.
//
// A long-polling body is records joined by 0x1E (ASCII record separator); each record is
// one packet: a type digit and its data, or "b" + base64 for a binary message.
//
//   "4hello" 0x1E "2" 0x1E "bAQID"  ──decode_payload──►  message "hello", ping, binary 01 02 03
//
// Contracts are in include/ringcast/socketio.h.
#include "text.h"

#include <ringcast/socketio.h>

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringcast::socketio {

namespace {

constexpr char record_separator = '\x1e';

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Decoded value of a standard base64 character, or 0xff.
constexpr std::array<uint8_t, 256> base64_values = [] {
    std::array<uint8_t, 256> table{};
    table.fill(0xff);
    for (std::size_t i = 0; i < base64_alphabet.size(); ++i) {
        table[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<uint8_t>(i);
    }
    return table;
}();

std::string encode_base64_with(std::string_view bytes, std::string_view alphabet, bool pad) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                           static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                           static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += alphabet[v & 63];
    }
    const std::size_t left = bytes.size() - i;
    if (left == 1) {
        const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        if (pad) {
            out += "==";
        }
    } else if (left == 2) {
        const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                           static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        if (pad) {
            out += '=';
        }
    }
    return out;
}

} // namespace

std::string_view describe(eio_error e) noexcept {
    switch (e) {
    case eio_error::empty_packet:
        return "empty Engine.IO packet";
    case eio_error::unknown_type:
        return "unknown Engine.IO packet type";
    case eio_error::bad_base64:
        return "binary packet is not canonical base64";
    case eio_error::payload_too_large:
        return "payload exceeds the maximum size";
    case eio_error::too_many_packets:
        return "payload holds too many packets";
    }
    return "unknown Engine.IO error";
}

result<eio_text_packet, eio_error> decode_eio_text(std::string_view packet) noexcept {
    if (packet.empty()) {
        return unexpected{eio_error::empty_packet};
    }
    const char c = packet[0];
    if (c < '0' || c > '6') {
        return unexpected{eio_error::unknown_type};
    }
    return eio_text_packet{static_cast<eio_type>(c - '0'), packet.substr(1)};
}

bool base64_decode(std::string_view text, std::string& out) {
    out.clear();
    if (text.size() % 4 != 0) {
        return false;
    }
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        uint8_t v[4];
        std::size_t padding = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = text[i + k];
            if (c == '=' && last && k >= 2) {
                ++padding;
                v[k] = 0;
                continue;
            }
            if (padding != 0) {
                return false; // a character after '='
            }
            v[k] = base64_values[static_cast<unsigned char>(c)];
            if (v[k] == 0xff) {
                return false;
            }
        }
        const uint32_t bits = static_cast<uint32_t>(v[0]) << 18 |
                              static_cast<uint32_t>(v[1]) << 12 | static_cast<uint32_t>(v[2]) << 6 |
                              v[3];
        out += static_cast<char>(bits >> 16 & 0xff);
        if (padding == 2) {
            if ((bits & 0xffff) != 0) {
                return false; // non-canonical: unused bits set
            }
            continue;
        }
        out += static_cast<char>(bits >> 8 & 0xff);
        if (padding == 1) {
            if ((bits & 0xff) != 0) {
                return false;
            }
            continue;
        }
        out += static_cast<char>(bits & 0xff);
    }
    return true;
}

std::string base64_encode(std::string_view bytes) {
    return encode_base64_with(bytes, base64_alphabet, true);
}

result<std::vector<eio_packet>, eio_error> decode_payload(std::string_view body,
                                                          const eio_limits& limits) {
    if (body.size() > limits.max_payload_bytes) {
        return unexpected{eio_error::payload_too_large};
    }
    std::vector<eio_packet> packets;
    std::size_t start = 0;
    while (true) {
        if (packets.size() == limits.max_packets_per_payload) {
            return unexpected{eio_error::too_many_packets};
        }
        const std::size_t end = body.find(record_separator, start);
        const std::string_view record = body.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (!record.empty() && record[0] == 'b') {
            eio_packet p{eio_type::message, eio_encoding::binary, {}, {}};
            if (!base64_decode(record.substr(1), p.binary)) {
                return unexpected{eio_error::bad_base64};
            }
            packets.push_back(std::move(p));
        } else {
            auto text = decode_eio_text(record);
            if (!text) {
                return unexpected{text.error()};
            }
            packets.push_back(eio_packet{text->type, eio_encoding::text, text->data, {}});
        }
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    return packets;
}

std::string encode_eio_text(eio_type type, std::string_view data) {
    std::string out;
    out.reserve(1 + data.size());
    out += static_cast<char>('0' + static_cast<uint8_t>(type));
    out += data;
    return out;
}

std::string encode_payload(std::span<const eio_outgoing> packets) {
    std::string out;
    bool first = true;
    for (const eio_outgoing& p : packets) {
        if (!first) {
            out += record_separator;
        }
        first = false;
        switch (p.encoding) {
        case eio_encoding::text:
            out += static_cast<char>('0' + static_cast<uint8_t>(p.type));
            out += p.data;
            break;
        case eio_encoding::binary:
            out += 'b';
            out += base64_encode(p.data);
            break;
        }
    }
    return out;
}

std::string encode_open(const eio_handshake& handshake) {
    std::string out = "0{\"sid\":";
    append_json_string(out, handshake.sid);
    out += handshake.websocket_upgrade ? ",\"upgrades\":[\"websocket\"]" : ",\"upgrades\":[]";
    out += ",\"pingInterval\":";
    detail::append_uint(out, handshake.ping_interval_ms);
    out += ",\"pingTimeout\":";
    detail::append_uint(out, handshake.ping_timeout_ms);
    out += ",\"maxPayload\":";
    detail::append_uint(out, handshake.max_payload_bytes);
    out += '}';
    return out;
}

result<std::string, std::string_view> make_sid() {
    unsigned char bytes[sid_random_bytes];
    if (RAND_bytes(bytes, static_cast<int>(sid_random_bytes)) != 1) {
        return unexpected{std::string_view("RAND_bytes failed")};
    }
    return encode_base64_with(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes),
                              base64url_alphabet, false);
}

} // namespace ringcast::socketio
