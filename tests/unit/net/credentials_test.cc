// presented_token and classify_token_refusal (include/ringcast/net.h): where a /ws
// upgrade's token is taken from, and how a refusal is counted.
#include <ringcast/net.h>

#include <catch2/catch.hpp>
#include <string>

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
