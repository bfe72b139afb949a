// base64url.cc — the strict decoder and the encoder; the rules are in base64url.h.
#include "base64url.h"

#include <array>

namespace ringcast::auth::detail {

namespace {

constexpr uint8_t invalid = 0xff;

constexpr std::array<uint8_t, 256> make_table() noexcept {
    std::array<uint8_t, 256> table{};
    table.fill(invalid);
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        table[static_cast<uint8_t>(alphabet[i])] = static_cast<uint8_t>(i);
    }
    return table;
}

constexpr std::array<uint8_t, 256> decode_table = make_table();
constexpr std::string_view encode_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

bool base64url_decode(std::string_view in, uint8_t* out, std::size_t& out_size) noexcept {
    const std::size_t tail = in.size() % 4;
    if (tail == 1) {
        return false;
    }
    std::size_t o = 0;
    std::size_t i = 0;
    for (; i + 4 <= in.size(); i += 4) {
        uint32_t group = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const uint8_t v = decode_table[static_cast<uint8_t>(in[i + k])];
            if (v == invalid) {
                return false;
            }
            group = group << 6 | v;
        }
        out[o++] = static_cast<uint8_t>(group >> 16);
        out[o++] = static_cast<uint8_t>(group >> 8);
        out[o++] = static_cast<uint8_t>(group);
    }
    if (tail != 0) {
        uint32_t group = 0;
        for (std::size_t k = 0; k < tail; ++k) {
            const uint8_t v = decode_table[static_cast<uint8_t>(in[i + k])];
            if (v == invalid) {
                return false;
            }
            group = group << 6 | v;
        }
        // 2 characters carry 12 bits for 1 byte (4 unused), 3 carry 18 for 2 (2 unused).
        const unsigned unused_bits = tail == 2 ? 4 : 2;
        if ((group & ((1u << unused_bits) - 1)) != 0) {
            return false;
        }
        group >>= unused_bits;
        if (tail == 3) {
            out[o++] = static_cast<uint8_t>(group >> 8);
        }
        out[o++] = static_cast<uint8_t>(group);
    }
    out_size = o;
    return true;
}

bool base64url_decode(std::string_view in, std::string& out) {
    out.resize(base64url_decoded_size(in.size()));
    std::size_t size = 0;
    if (!base64url_decode(in, reinterpret_cast<uint8_t*>(out.data()), size)) {
        out.clear();
        return false;
    }
    out.resize(size);
    return true;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t group = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                               static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                               static_cast<uint8_t>(bytes[i + 2]);
        out += encode_alphabet[group >> 18 & 0x3f];
        out += encode_alphabet[group >> 12 & 0x3f];
        out += encode_alphabet[group >> 6 & 0x3f];
        out += encode_alphabet[group & 0x3f];
    }
    const std::size_t left = bytes.size() - i;
    if (left == 1) {
        const uint32_t group = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
        out += encode_alphabet[group >> 18 & 0x3f];
        out += encode_alphabet[group >> 12 & 0x3f];
    } else if (left == 2) {
        const uint32_t group = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                               static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
        out += encode_alphabet[group >> 18 & 0x3f];
        out += encode_alphabet[group >> 12 & 0x3f];
        out += encode_alphabet[group >> 6 & 0x3f];
    }
    return out;
}

} // namespace ringcast::auth::detail
