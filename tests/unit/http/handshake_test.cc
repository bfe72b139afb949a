// Tests for src/http/handshake.cc: Sec-WebSocket-Accept, check_upgrade() for each rule of
// RFC 6455 §4.2.1, and the 101 response.
#include <ringcast/http.h>

#include <catch2/catch.hpp>

#include <string>

using namespace ringcast::http;

namespace {

struct handshake_fields {
    std::string request_line = "GET /chat HTTP/1.1";
    std::string host = "Host: server.example.com\r\n";
    std::string upgrade = "Upgrade: websocket\r\n";
    std::string connection = "Connection: Upgrade\r\n";
    std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    std::string version = "Sec-WebSocket-Version: 13\r\n";

    std::string wire() const {
        return request_line + "\r\n" + host + upgrade + connection + key + version + "\r\n";
    }
};

/// check_upgrade() on the parse of `fields`; the parse itself must succeed.
upgrade_check check(const handshake_fields& fields) {
    request_parser parser;
    const feed_result r = parser.feed(fields.wire());
    REQUIRE(r.status == parse_status::complete);
    return check_upgrade(parser.get());
}

} // namespace

TEST_CASE("websocket_accept matches the RFC 6455 section 1.3 example", "[http][handshake]") {
    CHECK(websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("check_upgrade accepts the RFC 6455 opening handshake", "[http][handshake]") {
    const upgrade_check result = check(handshake_fields{});
    CHECK(result.status == 101);
    CHECK(result.reason.empty());
}

TEST_CASE("check_upgrade accepts tokens in any case and inside lists", "[http][handshake]") {
    handshake_fields fields;
    fields.upgrade = "upgrade: WebSocket\r\n";
    fields.connection = "connection: keep-alive, Upgrade\r\n";
    CHECK(check(fields).status == 101);
    fields.connection = "Connection: keep-alive\r\nConnection: UPGRADE\r\n";
    CHECK(check(fields).status == 101);
}

TEST_CASE("check_upgrade accepts a key with non-zero pad bits", "[http][handshake]") {
    handshake_fields fields;
    fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n";
    CHECK(check(fields).status == 101);
}

TEST_CASE("check_upgrade refuses a method other than GET with 405", "[http][handshake]") {
    handshake_fields fields;
    fields.request_line = "POST /chat HTTP/1.1";
    CHECK(check(fields).status == 405);
    fields.request_line = "get /chat HTTP/1.1";
    CHECK(check(fields).status == 405);
}

TEST_CASE("check_upgrade refuses a broken handshake with 400", "[http][handshake]") {
    handshake_fields fields;
    SECTION("HTTP/1.0") {
        fields.request_line = "GET /chat HTTP/1.0";
    }
    SECTION("no Host") {
        fields.host.clear();
    }
    SECTION("no Upgrade") {
        fields.upgrade.clear();
    }
    SECTION("Upgrade to another protocol") {
        fields.upgrade = "Upgrade: h2c\r\n";
    }
    SECTION("Upgrade with a near miss") {
        fields.upgrade = "Upgrade: websockets\r\n";
    }
    SECTION("no Connection") {
        fields.connection.clear();
    }
    SECTION("Connection without upgrade") {
        fields.connection = "Connection: keep-alive\r\n";
    }
    SECTION("no key") {
        fields.key.clear();
    }
    SECTION("empty key") {
        fields.key = "Sec-WebSocket-Key:\r\n";
    }
    SECTION("key without padding") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n";
    }
    SECTION("key of 15 bytes") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n";
    }
    SECTION("key of 17 bytes") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQE=\r\n";
    }
    SECTION("key of 18 bytes") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQEB\r\n";
    }
    SECTION("key with a character outside base64") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n";
    }
    SECTION("key in the URL-safe alphabet") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n";
    }
    SECTION("key with padding in the middle") {
        fields.key = "Sec-WebSocket-Key: dGhlIHNhbXBsZ=Bub25jZQ==\r\n";
    }
    SECTION("key sent twice") {
        fields.key += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    }
    const upgrade_check result = check(fields);
    CHECK(result.status == 400);
    CHECK_FALSE(result.reason.empty());
}

TEST_CASE("check_upgrade refuses an unsupported version with 426", "[http][handshake]") {
    handshake_fields fields;
    SECTION("version 8") {
        fields.version = "Sec-WebSocket-Version: 8\r\n";
    }
    SECTION("no version") {
        fields.version.clear();
    }
    SECTION("a version list") {
        fields.version = "Sec-WebSocket-Version: 13, 8\r\n";
    }
    CHECK(check(fields).status == 426);
}

TEST_CASE("upgrade_response is the exact 101 for the request's key", "[http][handshake]") {
    request_parser parser;
    REQUIRE(parser.feed(handshake_fields{}.wire()).status == parse_status::complete);
    CHECK(upgrade_response(parser.get()) == "HTTP/1.1 101 Switching Protocols\r\n"
                                            "Upgrade: websocket\r\n"
                                            "Connection: Upgrade\r\n"
                                            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                            "\r\n");
}
