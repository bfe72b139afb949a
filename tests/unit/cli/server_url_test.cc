// Server URLs (src/cli/server_url.cc): what ringcast accepts for --url and RINGCAST_URL.
#include "options.h"

#include <catch2/catch.hpp>

using namespace ringcast::cli;

TEST_CASE("server URL reads host, port and an optional prefix", "[cli][url]") {
    auto plain = parse_server_url("ws://127.0.0.1:8080");
    REQUIRE(plain);
    CHECK(plain->host == "127.0.0.1");
    CHECK(plain->port == 8080);
    CHECK(plain->host_header == "127.0.0.1:8080");
    CHECK(plain->path_prefix.empty());

    auto http = parse_server_url("http://example.test/");
    REQUIRE(http);
    CHECK(http->host == "example.test");
    CHECK(http->port == 80);
    CHECK(http->path_prefix.empty());

    auto v6 = parse_server_url("ws://[::1]:9000");
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 9000);
    CHECK(v6->host_header == "[::1]:9000");

    auto prefixed = parse_server_url("http://proxy.test:81/ringcast/");
    REQUIRE(prefixed);
    CHECK(prefixed->path_prefix == "/ringcast");
}

TEST_CASE("server URL ending in /ws is the client URL of the same server", "[cli][url]") {
    auto r = parse_server_url("ws://h:1/ws");
    REQUIRE(r);
    CHECK(r->path_prefix.empty());
    auto p = parse_server_url("ws://h:1/rc/ws/");
    REQUIRE(p);
    CHECK(p->path_prefix == "/rc");
}

TEST_CASE("server URL refuses what ringcast cannot use, saying why", "[cli][url]") {
    auto contains = [](std::string_view url, std::string_view words) {
        auto r = parse_server_url(url);
        REQUIRE_FALSE(r);
        INFO(r.error());
        CHECK(r.error().find(words) != std::string::npos);
    };
    contains("wss://h", "no TLS");
    contains("https://h", "no TLS");
    contains("h:8080", "ws://HOST:PORT");
    contains("ws://h:0", "1 to 65535");
    contains("ws://h:65536", "1 to 65535");
    contains("ws://h:8x", "1 to 65535");
    contains("ws://h:", "port after ':' is missing");
    contains("ws://:80", "host is missing");
    contains("ws://h/ws?user=7", "no query");
    contains("ws://u:p@h", "credentials");
    contains("ws://[::1", "brackets");
    contains("ws://[::1]x", "only :PORT");
}
