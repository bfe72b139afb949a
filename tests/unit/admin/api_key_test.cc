// admin::keys_equal and admin::bearer_matches: the one place API keys are compared.
#include <ringcast/admin.h>
#include <ringcast/http.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

using namespace ringcast;

namespace {

constexpr std::string_view key = "0123456789abcdef-KEY";

/// GET /api/stats carrying `authorization` (omitted when empty), parsed; the request's
/// views point into the parser, so it lives as long as this.
struct stats_request {
    http::request_parser parser;

    explicit stats_request(std::string_view authorization) {
        std::string text = "GET /api/stats HTTP/1.1\r\nHost: x\r\n";
        if (!authorization.empty()) {
            text += "Authorization: " + std::string(authorization) + "\r\n";
        }
        text += "\r\n";
        REQUIRE(parser.feed(text).status == http::parse_status::complete);
    }
    const http::request& get() const { return parser.get(); }
};

/// Whether a request carrying `authorization` (omitted when empty) passes for `key`.
bool passes(std::string_view authorization, std::string_view expected = key) {
    return admin::bearer_matches(stats_request(authorization).get(), expected);
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

TEST_CASE("parse_api_keys: the single-key form is 'default' with every scope", "[admin][api_key]") {
    auto keys = admin::parse_api_keys("0123456789abcdef-KEY\r\n", "test");
    REQUIRE(keys.has_value());
    REQUIRE(keys->size() == 1);
    CHECK((*keys)[0].name == "default");
    CHECK((*keys)[0].secret == "0123456789abcdef-KEY");
    CHECK((*keys)[0].allows(admin::api_scope::publish));
    CHECK((*keys)[0].allows(admin::api_scope::admin));
}

TEST_CASE("parse_api_keys: named keys, scopes, comments and CRLF", "[admin][api_key]") {
    auto keys = admin::parse_api_keys("# backend keys\r\n"
                                      "\n"
                                      "feed:publish:0123456789abcdef-FEED\r\n"
                                      "ops.1:admin:0123456789abcdef-OPS\n"
                                      "all:admin,publish:0123456789abcdef-ALL:with:colons",
                                      "test");
    REQUIRE(keys.has_value());
    REQUIRE(keys->size() == 3);
    CHECK((*keys)[0].name == "feed");
    CHECK((*keys)[0].secret == "0123456789abcdef-FEED");
    CHECK((*keys)[0].allows(admin::api_scope::publish));
    CHECK_FALSE((*keys)[0].allows(admin::api_scope::admin));
    CHECK((*keys)[1].name == "ops.1");
    CHECK_FALSE((*keys)[1].allows(admin::api_scope::publish));
    CHECK((*keys)[1].allows(admin::api_scope::admin));
    // The secret is everything after the second colon.
    CHECK((*keys)[2].secret == "0123456789abcdef-ALL:with:colons");
    CHECK((*keys)[2].allows(admin::api_scope::publish));
    CHECK((*keys)[2].allows(admin::api_scope::admin));
}

TEST_CASE("parse_api_keys refuses what it cannot trust, naming the line and never the secret",
          "[admin][api_key]") {
    struct bad_case {
        std::string_view text;
        std::string_view says;
    };
    const bad_case cases[] = {
        {"", "16 or more"},
        {"short-key", "16 or more"},
        {"0123456789abcdef KEY", "not all of them visible"},
        {"a:publish:0123456789abcdef-A\nb:publish:0123456789abcdef-A", "same secret"},
        {"a:publish:0123456789abcdef-A\na:admin:0123456789abcdef-B", "used twice"},
        {"a:root:0123456789abcdef-A", "publish, admin"},
        {"a::0123456789abcdef-A", "publish, admin"},
        {"a:publish,:0123456789abcdef-A", "publish, admin"},
        {"a b:publish:0123456789abcdef-A", "name"},
        {":publish:0123456789abcdef-A", "name"},
        {"a:publish:0123456789abcdef-A\njust-a-line-without-colons", "line 2"},
        {"a:publish:short", "16 or more"},
        {"# only a comment: nothing else\n", "no key"},
    };
    for (const bad_case& c : cases) {
        INFO(c.text);
        auto keys = admin::parse_api_keys(c.text, "the file");
        REQUIRE_FALSE(keys.has_value());
        CHECK(keys.error().find(c.says) != std::string::npos);
        CHECK(keys.error().find("the file") != std::string::npos);
        CHECK(keys.error().find("0123456789abcdef") == std::string::npos);
    }
}

TEST_CASE("parse_api_keys holds at most max_api_keys keys", "[admin][api_key]") {
    std::string text;
    for (std::size_t i = 0; i <= admin::max_api_keys; ++i) {
        text += "k" + std::to_string(i) + ":publish:secret-secret-secret-" + std::to_string(i) + "\n";
    }
    auto refused = admin::parse_api_keys(text, "test");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("more than 64") != std::string::npos);
    text.resize(text.rfind("k64:"));
    auto kept = admin::parse_api_keys(text, "test");
    REQUIRE(kept.has_value());
    CHECK(kept->size() == admin::max_api_keys);
}

TEST_CASE("bearer_key finds the presented key among several", "[admin][api_key]") {
    auto keys = admin::parse_api_keys("a:publish:0123456789abcdef-A\nb:admin:0123456789abcdef-B\n",
                                      "test");
    REQUIRE(keys.has_value());
    auto presented = [&](std::string_view authorization) -> const admin::api_key* {
        return admin::bearer_key(stats_request(authorization).get(), *keys);
    };
    const admin::api_key* b = presented("Bearer 0123456789abcdef-B");
    REQUIRE(b != nullptr);
    CHECK(b->name == "b");
    const admin::api_key* a = presented("bearer 0123456789abcdef-A");
    REQUIRE(a != nullptr);
    CHECK(a->name == "a");
    CHECK(presented("Bearer 0123456789abcdef-C") == nullptr);
    CHECK(presented("Bearer 0123456789abcdef-") == nullptr);
    CHECK(presented("") == nullptr);
}
