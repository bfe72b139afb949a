// Name validation (docs/protocol.md "Names" and "Identity").
//
// Names are restricted charsets so they can be written into JSON and compared without
// escaping or normalisation: a valid channel, event or user id is already a valid JSON
// string body, byte for byte. The checks are ASCII-only and locale-free (<cctype> would
// consult the process locale and is undefined for negative chars).
#include "ringcast/pubsub.h"

#include <array>

namespace ringcast::pubsub {

namespace {

/// Channel names are at most 255 bytes: small enough to keep in a channel index key and
/// to bound the envelope header; wide enough for "market.binance.btcusdt"-style names.
constexpr std::size_t max_channel_bytes = 255;
/// Event names share the channel bound for the same reasons.
constexpr std::size_t max_event_bytes = 255;
/// User ids are at most 64 bytes: they become "user:<id>" channels (5 + 64 < 255).
constexpr std::size_t max_user_id_bytes = 64;

enum char_class : uint8_t {
    user_id_char = 1, // [A-Za-z0-9_.@-]
    channel_char = 2, // user id chars plus ':' and '*'
    event_char = 4,   // printable ASCII 0x20-0x7e except '"' and '\'
};

constexpr std::array<uint8_t, 256> make_table() noexcept {
    std::array<uint8_t, 256> t{};
    for (unsigned c = 0x20; c <= 0x7e; ++c) {
        if (c != '"' && c != '\\') {
            t[c] |= event_char;
        }
    }
    auto both = [&t](unsigned c) { t[c] |= user_id_char | channel_char; };
    for (unsigned c = '0'; c <= '9'; ++c) {
        both(c);
    }
    for (unsigned c = 'a'; c <= 'z'; ++c) {
        both(c);
        both(c - 'a' + 'A');
    }
    both('_');
    both('.');
    both('@');
    both('-');
    t[':'] |= channel_char;
    t['*'] |= channel_char;
    return t;
}

constexpr std::array<uint8_t, 256> char_table = make_table();

bool all_in(std::string_view s, std::size_t max_bytes, uint8_t cls) noexcept {
    if (s.empty() || s.size() > max_bytes) {
        return false;
    }
    for (const char c : s) {
        if ((char_table[static_cast<unsigned char>(c)] & cls) == 0) {
            return false;
        }
    }
    return true;
}

} // namespace

bool valid_channel(std::string_view name) noexcept {
    return all_in(name, max_channel_bytes, channel_char);
}

bool valid_event(std::string_view name) noexcept {
    return all_in(name, max_event_bytes, event_char);
}

bool valid_user_id(std::string_view id) noexcept {
    return all_in(id, max_user_id_bytes, user_id_char);
}

bool valid_token(std::string_view token) noexcept {
    if (token.empty() || token.size() > max_token_chars) {
        return false;
    }
    for (const char c : token) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string_view channel_namespace(std::string_view channel) noexcept {
    const auto colon = channel.find(':');
    return colon == std::string_view::npos ? std::string_view{} : channel.substr(0, colon);
}

} // namespace ringcast::pubsub
