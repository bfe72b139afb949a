// json_escape.cc — the one JSON string escaper (include/ringcast/core.h:
// append_json_escaped). It lives in core, the module below all others, so that http (error
// bodies), admin, the bridges, the cli and socketio (its packets' strings) escape alike
// without any of them depending on another for it.
//
// Bytes that need no escape are copied in runs, not one by one: a run ends at the next byte
// to escape, or at the end of the text.
#include <ringcast/core.h>

namespace ringcast::core {

void append_json_escaped(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::size_t run = 0; // start of the bytes not yet copied, which need no escape
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto octet = static_cast<unsigned char>(text[i]);
        if (octet >= 0x20 && octet != '"' && octet != '\\') {
            continue;
        }
        out.append(text.data() + run, i - run);
        run = i + 1;
        switch (octet) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default: // the other control characters, U+0000-U+001F
            out += "\\u00";
            out += hex[octet >> 4];
            out += hex[octet & 0xf];
            break;
        }
    }
    out.append(text.data() + run, text.size() - run);
}

} // namespace ringcast::core
