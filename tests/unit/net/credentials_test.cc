// presented_token and classify_token_refusal (include/ringcast/net.h): where a /ws
// upgrade's token is taken from, and how a refusal is counted.
#include "../auth/token_maker.h"

#include <ringcast/auth.h>
#include <ringcast/net.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace ringcast;
using namespace ringcast::net;

namespace {

class parsed {
public:
    explicit parsed(const std::string& target, const std::string& headers = "") {
        const std::string head =
            "GET " + target + " HTTP/1.1\r\nHost: ringcast.test\r\n" + headers + "\r\n";
        REQUIRE(_parser.feed(head).status == http::parse_status::complete);
    }
    std::string token() const { return std::string(presented_token(_parser.get())); }

private:
    http::request_parser _parser;
};

} // namespace

TEST_CASE("the token comes from Authorization: Bearer, else from ?token=", "[net][auth]") {
    CHECK(parsed("/ws?token=a.b.c").token() == "a.b.c");
    CHECK(parsed("/ws?user=7&token=a.b.c&x=1").token() == "a.b.c");
    CHECK(parsed("/ws", "Authorization: Bearer h.e.d\r\n").token() == "h.e.d");
    CHECK(parsed("/ws", "authorization: bEaReR h.e.d\r\n").token() == "h.e.d");
    // The header wins over the query.
    CHECK(parsed("/ws?token=q.q.q", "Authorization: Bearer h.h.h\r\n").token() == "h.h.h");
    // Another scheme is no bearer token: the query is used, or nothing.
    CHECK(parsed("/ws?token=q.q.q", "Authorization: Basic dXNlcjpwYXNz\r\n").token() == "q.q.q");
    CHECK(parsed("/ws", "Authorization: Basic dXNlcjpwYXNz\r\n").token().empty());
    CHECK(parsed("/ws", "Authorization: Bearer\r\n").token().empty());
    CHECK(parsed("/ws").token().empty());
    CHECK(parsed("/ws?tokens=a.b.c").token().empty());
}

TEST_CASE("every refusal reason has its class", "[net][auth]") {
    CHECK(classify_token_refusal("token required") == token_refusal::missing);
    for (const char* r : {"token expired", "token not yet valid", "token issued in the future"}) {
        INFO(r);
        CHECK(classify_token_refusal(r) == token_refusal::expired);
    }
    for (const char* r : {"wrong issuer", "wrong audience", "missing sub", "missing exp",
                          "sub is not a valid user id"}) {
        INFO(r);
        CHECK(classify_token_refusal(r) == token_refusal::claims);
    }
    for (const char* r : {"malformed token", "token too long", "bad signature", "unknown key",
                          "algorithm not allowed", "unsupported crit header", "anything else"}) {
        INFO(r);
        CHECK(classify_token_refusal(r) == token_refusal::invalid);
    }
}

TEST_CASE("the verifier's own reasons fall in the class their meaning says", "[net][auth]") {
    // The classes are told apart by the reason's text: a reworded reason in src/auth must
    // fail here, not drift into "invalid" on the operator's counters unnoticed.
    const std::string& secret = auth::test::keys().secret;
    auth::key_set keys;
    REQUIRE(keys.add_secret(secret));
    auth::verify_options options;
    options.issuer = "https://issuer.test";
    options.audience = "ringcast";
    options.max_token_bytes = 1024;
    auth::verifier v(keys, options);
    const int64_t now = 1'800'000'000;
    const std::string good = R"("iss":"https://issuer.test","aud":"ringcast")";
    auto hs256 = [&](const std::string& claims, std::string_view with = {}) {
        return auth::test::sign_token("HS256", R"({"alg":"HS256"})", "{" + claims + "}",
                                      nullptr, with.empty() ? std::string_view(secret) : with);
    };
    auto refused = [&](const std::string& token) -> std::string {
        auto r = v.verify(token, now);
        REQUIRE_FALSE(r);
        return std::string(r.error());
    };
    const std::string exp = R"(,"exp":1800000600)";
    REQUIRE(v.verify(hs256(good + R"(,"sub":"7")" + exp), now)); // the baseline passes

    const std::vector<std::pair<std::string, token_refusal>> cases = {
        {refused(hs256(good + R"(,"sub":"7","exp":1700000000)")), token_refusal::expired},
        {refused(hs256(good + R"(,"sub":"7","nbf":1800000600)" + exp)), token_refusal::expired},
        {refused(hs256(good + R"(,"sub":"7","iat":1800000600)" + exp)), token_refusal::expired},
        {refused(hs256(R"("iss":"x","aud":"ringcast","sub":"7")" + exp)), token_refusal::claims},
        {refused(hs256(R"("iss":"https://issuer.test","aud":"x","sub":"7")" + exp)),
         token_refusal::claims},
        {refused(hs256(good + exp)), token_refusal::claims},                // no sub
        {refused(hs256(good + R"(,"sub":"7")")), token_refusal::claims},    // no exp
        {refused("a.b"), token_refusal::invalid},                           // malformed
        {refused(std::string(2048, 'a')), token_refusal::invalid},          // too long
        {refused(hs256(good + R"(,"sub":"7")" + exp, "another-secret-0123456789abcdef-hmac")),
         token_refusal::invalid}, // bad signature
        {refused(auth::test::b64(R"({"alg":"none"})") + "." +
                 auth::test::b64("{" + good + R"(,"sub":"7")" + exp + "}") + ".c2ln"),
         token_refusal::invalid},
        {refused(auth::test::sign_token("HS256", R"({"alg":"HS256","crit":["x"]})",
                                        "{" + good + R"(,"sub":"7")" + exp + "}", nullptr,
                                        secret)),
         token_refusal::invalid},
    };
    const std::vector<std::string> expected_reasons = {
        "token expired",  "token not yet valid", "token issued in the future",
        "wrong issuer",   "wrong audience",      "missing sub",
        "missing exp",    "malformed token",     "token too long",
        "bad signature",  "algorithm not allowed", "unsupported crit header"};
    REQUIRE(cases.size() == expected_reasons.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
        INFO(cases[i].first);
        CHECK(cases[i].first == expected_reasons[i]); // each case reaches the reason it means
        CHECK(classify_token_refusal(cases[i].first) == cases[i].second);
    }
}
