// RFC 6455 §5.3 masking: payload byte i is XORed with key[i % 4]. On the data path for
// every client frame, so it works a machine word at a time and never takes a modulo per
// byte: the key is rotated once by `key_offset` and widened to 8 bytes.
#include "ringcast/ws.h"

#include <cstring>

namespace ringcast::ws {

void apply_mask(std::span<std::byte> data, std::array<std::byte, 4> key,
                std::size_t key_offset) noexcept {
    // pattern[i] == key[(key_offset + i) % 4] for i < 8: 8 is a multiple of 4, so the
    // pattern also lines up for every following word and for the tail.
    std::array<std::byte, 8> pattern;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        pattern[i] = key[(key_offset + i) & 3];
    }
    uint64_t word_key;
    std::memcpy(&word_key, pattern.data(), sizeof word_key);

    std::byte* p = data.data();
    std::size_t n = data.size();
    // Four independent words per round let the compiler keep several XORs in flight.
    while (n >= 32) {
        uint64_t w[4];
        std::memcpy(w, p, sizeof w);
        w[0] ^= word_key;
        w[1] ^= word_key;
        w[2] ^= word_key;
        w[3] ^= word_key;
        std::memcpy(p, w, sizeof w);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, sizeof w);
        w ^= word_key;
        std::memcpy(p, &w, sizeof w);
        p += 8;
        n -= 8;
    }
    for (std::size_t i = 0; i < n; ++i) {
        p[i] ^= pattern[i];
    }
}

} // namespace ringcast::ws
