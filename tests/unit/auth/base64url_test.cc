// Tests for src/auth/base64url.cc: the strict decoder's refusals and round trips.
#include "base64url.h"

#include <catch2/catch.hpp>
#include <string>

using namespace ringcast::auth::detail;

namespace {
bool decodes(std::string_view in, std::string& out) {
    return base64url_decode(in, out);
}
} // namespace

TEST_CASE("base64url round-trips every length and byte value", "[auth][base64url]") {
    std::string bytes;
    for (int i = 0; i < 300; ++i) {
        bytes += static_cast<char>(i * 37 + 11);
        std::string back;
        const std::string text = base64url_encode(bytes);
        REQUIRE(text.find('=') == std::string::npos);
        REQUIRE(decodes(text, back));
        REQUIRE(back == bytes);
        REQUIRE(base64url_decoded_size(text.size()) == bytes.size());
    }
}

TEST_CASE("base64url decodes the RFC 7515 appendix example header", "[auth][base64url]") {
    std::string out;
    REQUIRE(decodes("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9", out));
    CHECK(out == "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
    REQUIRE(decodes("", out));
    CHECK(out.empty());
}

TEST_CASE("base64url refuses padding, other alphabets, whitespace and impossible lengths",
          "[auth][base64url][strict]") {
    std::string out;
    CHECK_FALSE(decodes("YQ==", out)); // padding
    CHECK_FALSE(decodes("YQ=", out));
    CHECK_FALSE(decodes("a+b/", out));  // standard alphabet
    CHECK_FALSE(decodes("YW Jj", out)); // whitespace
    CHECK_FALSE(decodes("YWJj\n", out));
    CHECK_FALSE(decodes("Y", out)); // 1 mod 4 can encode nothing
    CHECK_FALSE(decodes("YWJjZ", out));
    CHECK_FALSE(decodes(std::string_view("YW\0j", 4), out));
    CHECK_FALSE(decodes("YWJ\xc3\xa9", out));
}

TEST_CASE("base64url refuses non-canonical trailing bits", "[auth][base64url][strict]") {
    std::string out;
    REQUIRE(decodes("YQ", out)); // "a"
    CHECK(out == "a");
    CHECK_FALSE(decodes("YR", out)); // same byte, a stray low bit
    CHECK_FALSE(decodes("YX", out));
    REQUIRE(decodes("YWI", out)); // "ab"
    CHECK_FALSE(decodes("YWJ", out));
    CHECK_FALSE(decodes("YWK", out));
}
