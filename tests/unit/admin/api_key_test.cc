// admin::keys_equal and admin::bearer_matches: the one place API keys are compared.
#include <ringcast/admin.h>
#include <ringcast/http.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

using namespace ringcast;

namespace {

constexpr std::string_view key = "0123456789abcdef-KEY";

/// Whether a request carrying `authorization` (omitted when empty) passes for `key`.
bool passes(std::string_view authorization, std::string_view expected = key) {
    std::string text = "GET /api/stats HTTP/1.1\r\nHost: x\r\n";
    if (!authorization.empty()) {
        text += "Authorization: " + std::string(authorization) + "\r\n";
    }
    text += "\r\n";
    http::request_parser parser;
    REQUIRE(parser.feed(text).status == http::parse_status::complete);
    return admin::bearer_matches(parser.get(), expected);
}

} // namespace

TEST_CASE("keys_equal is true only for the same bytes", "[admin][api_key]") {
    CHECK(admin::keys_equal(key, key));
    CHECK(admin::keys_equal(std::string(key), key)); // contents, not addresses
    CHECK(admin::keys_equal("", ""));
    std::string other(key);
    for (const std::size_t at : {std::size_t(0), other.size() / 2, other.size() - 1}) {
        other = key;
        other[at] ^= 0x20;
        INFO("differs at " << at);
        CHECK_FALSE(admin::keys_equal(other, key));
    }
    // Prefixes and extensions: the length is part of the comparison.
    CHECK_FALSE(admin::keys_equal(key.substr(0, key.size() - 1), key));
    CHECK_FALSE(admin::keys_equal(std::string(key) + "x", key));
    CHECK_FALSE(admin::keys_equal("", key));
    CHECK_FALSE(admin::keys_equal(key, ""));
    // A presented value with a NUL where the key ends is not the key.
    CHECK_FALSE(admin::keys_equal(std::string(key) + std::string(1, '\0'), key));
}

TEST_CASE("bearer_matches reads Authorization: Bearer with the scheme in any case",
          "[admin][api_key]") {
    CHECK(passes("Bearer " + std::string(key)));
    CHECK(passes("bearer " + std::string(key)));
    CHECK(passes("BEARER " + std::string(key)));
    CHECK_FALSE(passes(""));
    CHECK_FALSE(passes("Bearer"));
    CHECK_FALSE(passes("Bearer "));
    CHECK_FALSE(passes("Basic " + std::string(key)));
    CHECK_FALSE(passes("Bearer  " + std::string(key))); // the token is everything after one space
    CHECK_FALSE(passes("Bearer " + std::string(key) + "x"));
    CHECK_FALSE(passes("Bearer " + std::string(key.substr(1))));
    CHECK_FALSE(passes(std::string(key)));
}

TEST_CASE("bearer_matches is false for an empty configured key", "[admin][api_key]") {
    CHECK_FALSE(passes("Bearer ", ""));
    CHECK_FALSE(passes("Bearer x", ""));
    CHECK_FALSE(passes("", ""));
}
