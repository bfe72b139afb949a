// Incremental UTF-8 validation (RFC 3629 §4 syntax), fail-fast for RFC 6455 §8.1.
//
// State, 32 bits: 0 between characters; otherwise the number of continuation bytes still
// expected (bits 0-7) and the inclusive range allowed for the next one (lo bits 8-15, hi
// bits 16-23). Only the first continuation byte has a narrowed range; that is where the
// RFC 3629 table excludes overlongs (E0, F0), surrogates (ED) and code points past
// U+10FFFF (F4). A failure is sticky: every later feed() returns false.
#include "ringcast/ws.h"

#include <cstring>

namespace ringcast::ws {

namespace {

constexpr uint32_t failed = 0xffffffffu;
constexpr uint64_t high_bits = 0x8080808080808080ull;

constexpr uint32_t expect(uint32_t remaining, uint32_t lo, uint32_t hi) noexcept {
    return remaining | lo << 8 | hi << 16;
}

// State after a non-ASCII lead byte. 80-BF cannot start a character, C0/C1 only encode
// overlongs, F5-FF would exceed U+10FFFF.
constexpr uint32_t start_sequence(uint8_t lead) noexcept {
    if (lead < 0xc2) {
        return failed;
    }
    if (lead < 0xe0) {
        return expect(1, 0x80, 0xbf);
    }
    if (lead == 0xe0) {
        return expect(2, 0xa0, 0xbf); // below A0: overlong (< U+0800)
    }
    if (lead == 0xed) {
        return expect(2, 0x80, 0x9f); // A0-BF: surrogates U+D800-DFFF
    }
    if (lead < 0xf0) {
        return expect(2, 0x80, 0xbf);
    }
    if (lead == 0xf0) {
        return expect(3, 0x90, 0xbf); // below 90: overlong (< U+10000)
    }
    if (lead < 0xf4) {
        return expect(3, 0x80, 0xbf);
    }
    if (lead == 0xf4) {
        return expect(3, 0x80, 0x8f); // 90 and up: past U+10FFFF
    }
    return failed;
}

constexpr uint32_t continue_sequence(uint32_t state, uint8_t byte) noexcept {
    const uint32_t lo = state >> 8 & 0xff;
    const uint32_t hi = state >> 16 & 0xff;
    if (byte < lo || byte > hi) {
        return failed;
    }
    const uint32_t remaining = (state & 0xff) - 1;
    return remaining == 0 ? 0 : expect(remaining, 0x80, 0xbf);
}

} // namespace

bool utf8_validator::feed(std::span<const std::byte> bytes) noexcept {
    uint32_t state = _state;
    if (state == failed) {
        return false;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        if (state == 0) {
            // Fast path: JSON is almost all ASCII, so skip 8 bytes per test while no byte
            // has its top bit set.
            while (n - i >= 8) {
                uint64_t word;
                std::memcpy(&word, p + i, sizeof word);
                if ((word & high_bits) != 0) {
                    break;
                }
                i += 8;
            }
            if (i == n) {
                break;
            }
            const uint8_t lead = p[i++];
            if (lead >= 0x80) {
                state = start_sequence(lead);
            }
        } else {
            state = continue_sequence(state, p[i++]);
        }
        if (state == failed) {
            _state = failed;
            return false;
        }
    }
    _state = state;
    return true;
}

bool is_valid_utf8(std::span<const std::byte> bytes) noexcept {
    utf8_validator validator;
    return validator.feed(bytes) && validator.complete();
}

} // namespace ringcast::ws
