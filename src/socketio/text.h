// text.h — small text helpers shared by the codec's files (private to src/socketio).
#pragma once

#include <cstdint>
#include <string>

namespace ringcast::socketio::detail {

/// Appends the decimal digits of `v`.
inline void append_uint(std::string& out, uint64_t v) {
    char digits[20];
    std::size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0) {
        out += digits[--n];
    }
}

} // namespace ringcast::socketio::detail
