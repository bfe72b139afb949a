// Shared by the fuzz targets that check "splitting never changes the parse"
// (proxy_header_fuzz.cc, request_parser_fuzz.cc): the abort that libFuzzer and the corpus
// replay both see, and the plan that cuts a stream into reads from one seed byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace ringcast::fuzz {

/// Aborts on a broken invariant: libFuzzer reports the input, the replay test fails.
inline void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

/// Read sizes for one input, deterministic in its seed byte: seed 0 gives one byte per
/// read, any other seed a xorshift32 walk of reads from 1 to (seed & 0x3f) + 1 bytes
/// (xorshift rather than <random>: no weight, and the same cuts on every libstdc++).
class chunker {
public:
    explicit chunker(uint8_t seed) noexcept
        : _state(0x9e3779b9u ^ seed), _max(seed == 0 ? 1u : (seed & 0x3fu) + 1u) {}
    /// The next read size, never more than `left`.
    std::size_t next(std::size_t left) noexcept {
        _state ^= _state << 13;
        _state ^= _state >> 17;
        _state ^= _state << 5;
        const std::size_t want = 1 + _state % _max;
        return want < left ? want : left;
    }

private:
    uint32_t _state;
    uint32_t _max;
};

} // namespace ringcast::fuzz
