// Shared by the pubsub unit tests: how test output shows bytes.
#pragma once

#include <string>
#include <string_view>

namespace ringcast::pubsub::testing {

// Meson's TAP reader takes one line per result and Catch prints passing assertions with
// their messages, so bytes that could break a line (or the UTF-8 of the log) are shown
// escaped: \n, \t, \xNN, and a backslash as two.
inline std::string shown(std::string_view s) {
    constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += ch;
        }
    }
    return out;
}

} // namespace ringcast::pubsub::testing
