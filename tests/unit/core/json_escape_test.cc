// The one JSON string escaper (include/ringcast/core.h: append_json_escaped). Its callers'
// own tests (tests/unit/socketio/encoder_test.cc, tests/unit/http/response_test.cc) see it
// through their encoders; here every byte value is checked alone, then runs between escapes.
#include <ringcast/core.h>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using namespace ringcast;
using namespace std::string_view_literals;

namespace {

std::string escaped(std::string_view text) {
    std::string out;
    core::append_json_escaped(out, text);
    return out;
}

} // namespace

TEST_CASE("append_json_escaped: quote, backslash and the named control characters get their "
          "short escapes",
          "[core][json]") {
    CHECK(escaped("\"") == "\\\"");
    CHECK(escaped("\\") == "\\\\");
    CHECK(escaped("\b\f\n\r\t") == "\\b\\f\\n\\r\\t");
}

TEST_CASE("append_json_escaped: every other byte below 0x20 is \\u00XX in lowercase hex, and "
          "every byte from 0x20 up but quote and backslash passes through",
          "[core][json]") {
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned byte = 0; byte < 256; ++byte) {
        const char c = static_cast<char>(byte);
        const std::string got = escaped(std::string_view(&c, 1));
        INFO("byte " << byte);
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
            c == '\t') {
            CHECK(got.size() == 2);
        } else if (byte < 0x20) {
            CHECK(got == std::string("\\u00") + hex[byte >> 4] + hex[byte & 0xf]);
        } else {
            CHECK(got == std::string(1, c));
        }
    }
}

TEST_CASE("append_json_escaped: runs between escapes are kept in order, UTF-8 untouched, and "
          "the text is appended to what `out` holds, without quotes",
          "[core][json]") {
    std::string out = "{\"k\":\"";
    core::append_json_escaped(out, "a\"b\\c\x01\xc3\xa9/\x7f\0z"sv);
    CHECK(out == "{\"k\":\"a\\\"b\\\\c\\u0001\xc3\xa9/\x7f\\u0000z");
    CHECK(escaped("") == "");
    CHECK(escaped("plain text, nothing to escape") == "plain text, nothing to escape");
    CHECK(escaped("\n\n") == "\\n\\n");
}
