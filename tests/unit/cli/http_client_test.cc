// The HTTP response reader of ringcast (src/cli/http_client.cc): any split of the bytes,
// where a body ends, and the bounds.
#include "http_client.h"

#include <catch2/catch.hpp>

#include <string>

using namespace ringcast::cli;
using st = response_reader::status;

namespace {

const std::string ok_response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 11\r\n\r\n{\"ok\":true}";

} // namespace

TEST_CASE("response reader reads a response split at every byte", "[cli][http]") {
    for (std::size_t cut = 1; cut < ok_response.size(); ++cut) {
        SECTION("cut at " + std::to_string(cut)) {
            response_reader r(1024);
            CHECK(r.feed(std::string_view(ok_response).substr(0, cut)) == st::need_more);
            REQUIRE(r.feed(std::string_view(ok_response).substr(cut)) == st::complete);
            CHECK(r.get().status == 200);
            CHECK(r.get().reason == "OK");
            CHECK(r.get().header("content-type") == "application/json");
            CHECK(r.get().body == "{\"ok\":true}");
            CHECK(r.leftover().empty());
        }
    }
}

TEST_CASE("response reader ends a 101 at its head and keeps what follows", "[cli][http]") {
    response_reader r(1024);
    const std::string wire = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Sec-WebSocket-Accept: abc\r\n\r\n\x81\x02hi";
    REQUIRE(r.feed(wire) == st::complete);
    CHECK(r.get().status == 101);
    CHECK(r.get().header("sec-websocket-accept") == "abc");
    CHECK(r.leftover() == "\x81\x02hi");
    CHECK(r.get().body.empty());
}

TEST_CASE("response reader reads an error body and a body ended by the connection",
          "[cli][http]") {
    response_reader refused(1024);
    REQUIRE(refused.feed("HTTP/1.1 401 Unauthorized\r\nContent-Length: 48\r\n\r\n"
                         "{\"error\":{\"code\":401,\"message\":\"token expired\"}}") ==
            st::complete);
    CHECK(refused.get().status == 401);
    CHECK(refused.get().body.size() == 48);

    response_reader until_eof(1024);
    CHECK(until_eof.feed("HTTP/1.0 200 OK\r\n\r\nabc") == st::need_more);
    CHECK(until_eof.feed("def") == st::need_more);
    REQUIRE(until_eof.finish() == st::complete);
    CHECK(until_eof.get().body == "abcdef");
}

TEST_CASE("response reader refuses malformed and oversized answers", "[cli][http]") {
    SECTION("announced body over the limit") {
        response_reader r(10);
        CHECK(r.feed("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n") == st::error);
        CHECK(r.error().find("--max-bytes") != std::string::npos);
    }
    SECTION("body to EOF over the limit") {
        response_reader r(4);
        CHECK(r.feed("HTTP/1.1 200 OK\r\n\r\nabc") == st::need_more);
        CHECK(r.feed("de") == st::error);
    }
    SECTION("head over 16 KiB") {
        response_reader r(1024);
        const std::string head = "HTTP/1.1 200 OK\r\nX: " + std::string(17000, 'a');
        CHECK(r.feed(head) == st::error);
    }
    SECTION("not HTTP") {
        response_reader r(1024);
        CHECK(r.feed("SSH-2.0-OpenSSH\r\n\r\n") == st::error);
    }
    SECTION("chunked") {
        response_reader r(1024);
        CHECK(r.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == st::error);
        CHECK(r.error().find("chunked") != std::string::npos);
    }
    SECTION("cut short") {
        response_reader r(1024);
        CHECK(r.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab") == st::need_more);
        CHECK(r.finish() == st::error);
        response_reader h(1024);
        CHECK(h.feed("HTTP/1.1 200") == st::need_more);
        CHECK(h.finish() == st::error);
    }
}

TEST_CASE("percent_encode leaves channel and user names alone", "[cli][http]") {
    CHECK(percent_encode("chat:room-1_a.b@c*") == "chat:room-1_a.b@c*");
    CHECK(percent_encode("a b/c?d") == "a%20b%2Fc%3Fd");
}
