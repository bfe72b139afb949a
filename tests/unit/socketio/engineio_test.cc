// Tests for src/socketio/engineio.cc: Engine.IO packets, long-polling payloads, base64,
// the open packet and session ids.
#include <ringcast/socketio.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

using namespace ringcast::socketio;
using namespace std::string_view_literals;

TEST_CASE("every Engine.IO packet type decodes from its digit", "[socketio][engineio]") {
    const std::vector<std::pair<std::string_view, eio_type>> cases = {
        {"0", eio_type::open}, {"1", eio_type::close},   {"2", eio_type::ping},
        {"3", eio_type::pong}, {"4", eio_type::message}, {"5", eio_type::upgrade},
        {"6", eio_type::noop},
    };
    for (const auto& [text, type] : cases) {
        auto p = decode_eio_text(text);
        REQUIRE(p);
        CHECK(p->type == type);
        CHECK(p->data.empty());
    }
    auto probe = decode_eio_text(probe_ping);
    REQUIRE(probe);
    CHECK(probe->type == eio_type::ping);
    CHECK(probe->data == "probe");
    auto message = decode_eio_text("4hello \x1e world");
    REQUIRE(message);
    CHECK(message->type == eio_type::message);
    CHECK(message->data == "hello \x1e world");
}

TEST_CASE("Engine.IO text packets with no type or an unknown type are refused",
          "[socketio][engineio][errors]") {
    CHECK(decode_eio_text("").error() == eio_error::empty_packet);
    for (const std::string_view bad : {"7"sv, "9"sv, "b"sv, "/"sv, "x4"sv, " 4"sv, "\x00"sv}) {
        auto p = decode_eio_text(bad);
        REQUIRE_FALSE(p);
        CHECK(p.error() == eio_error::unknown_type);
    }
}

TEST_CASE("a long-polling payload splits on the record separator", "[socketio][engineio]") {
    auto packets = decode_payload("4hello\x1e"
                                  "2\x1e"
                                  "bAQID\x1e"
                                  "4\x1e"
                                  "6");
    REQUIRE(packets);
    REQUIRE(packets->size() == 5);
    CHECK((*packets)[0].type == eio_type::message);
    CHECK((*packets)[0].encoding == eio_encoding::text);
    CHECK((*packets)[0].data() == "hello");
    CHECK((*packets)[1].type == eio_type::ping);
    CHECK((*packets)[2].type == eio_type::message);
    CHECK((*packets)[2].encoding == eio_encoding::binary);
    CHECK((*packets)[2].data() == "\x01\x02\x03"sv);
    CHECK((*packets)[3].data().empty());
    CHECK((*packets)[4].type == eio_type::noop);

    auto empty_binary = decode_payload("b");
    REQUIRE(empty_binary);
    CHECK((*empty_binary)[0].encoding == eio_encoding::binary);
    CHECK((*empty_binary)[0].data().empty());
}

TEST_CASE("a payload with an empty record, a bad type or bad base64 is refused",
          "[socketio][engineio][errors]") {
    CHECK(decode_payload("").error() == eio_error::empty_packet);
    CHECK(decode_payload("4a\x1e").error() == eio_error::empty_packet);
    CHECK(decode_payload("\x1e"
                         "4a")
              .error() == eio_error::empty_packet);
    CHECK(decode_payload("4a\x1e\x1e"
                         "4b")
              .error() == eio_error::empty_packet);
    CHECK(decode_payload("4a\x1e"
                         "9")
              .error() == eio_error::unknown_type);
    for (const std::string_view bad :
         {"bA"sv, "bAQI"sv, "bAQ=D"sv, "bAR=="sv, "bAQ-D"sv, "bA Q=="sv,
          "bAQ=="
          "AA=="sv}) {
        INFO(bad);
        CHECK(decode_payload(bad).error() == eio_error::bad_base64);
    }
}

TEST_CASE("payload limits: bytes and records", "[socketio][engineio][limits]") {
    const eio_limits limits{.max_payload_bytes = 10, .max_packets_per_payload = 3};
    CHECK(decode_payload("4123456789", limits));
    CHECK(decode_payload("41234567890", limits).error() == eio_error::payload_too_large);
    CHECK(decode_payload("2\x1e"
                         "2\x1e"
                         "2",
                         limits));
    CHECK(decode_payload("2\x1e"
                         "2\x1e"
                         "2\x1e"
                         "2",
                         limits)
              .error() == eio_error::too_many_packets);
}

TEST_CASE("a payload cut at every byte never fails other than with a named error",
          "[socketio][engineio][cuts]") {
    const std::string body = encode_payload(std::vector<eio_outgoing>{
        {eio_type::message, eio_encoding::text, "2[\"ev\",{\"a\":\"\x1f\"}]"},
        {eio_type::message, eio_encoding::binary, "\x00\xff\x10zz"sv},
        {eio_type::ping, eio_encoding::text, ""},
        {eio_type::message, eio_encoding::binary, ""},
    });
    for (std::size_t n = 0; n <= body.size(); ++n) {
        auto r = decode_payload(std::string_view(body).substr(0, n));
        if (r) {
            CHECK(!r->empty());
        } else {
            CHECK(!describe(r.error()).empty());
        }
    }
    auto whole = decode_payload(body);
    REQUIRE(whole);
    REQUIRE(whole->size() == 4);
    CHECK((*whole)[1].data() == "\x00\xff\x10zz"sv);
    CHECK((*whole)[3].encoding == eio_encoding::binary);
}

TEST_CASE("encode_payload joins records and base64-encodes binary messages",
          "[socketio][engineio][encode]") {
    const std::vector<eio_outgoing> packets = {
        {eio_type::message, eio_encoding::text, "40"},
        {eio_type::ping, eio_encoding::text, ""},
        {eio_type::message, eio_encoding::binary, "\x01\x02\x03\x04"},
    };
    CHECK(encode_payload(packets) == "440\x1e"
                                     "2\x1e"
                                     "bAQIDBA==");
    CHECK(encode_payload({}).empty());
    CHECK(encode_eio_text(eio_type::message, "2[\"x\"]") == "42[\"x\"]");
    CHECK(encode_eio_text(eio_type::pong, "probe") == probe_pong);
}

TEST_CASE("base64 round-trips every length and refuses non-canonical text",
          "[socketio][engineio][base64]") {
    std::string bytes;
    for (int i = 0; i < 200; ++i) {
        bytes += static_cast<char>(i * 53 + 7);
        std::string back;
        REQUIRE(base64_decode(base64_encode(bytes), back));
        REQUIRE(back == bytes);
    }
    std::string out;
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK_FALSE(base64_decode("Zg", out));
    CHECK_FALSE(base64_decode("Zh==", out)); // unused bits set
    CHECK_FALSE(base64_decode("Zm9=", out));
    CHECK_FALSE(base64_decode("Z===", out));
    CHECK_FALSE(base64_decode("Zm_v", out)); // base64url alphabet
    CHECK_FALSE(base64_decode("=Zm9", out));
}

TEST_CASE("the open packet carries the handshake fields", "[socketio][engineio][encode]") {
    CHECK(encode_open({.sid = "abc", .websocket_upgrade = true}) ==
          "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
          "\"pingTimeout\":20000,\"maxPayload\":1000000}");
    CHECK(encode_open({.sid = "s",
                       .websocket_upgrade = false,
                       .ping_interval_ms = 1,
                       .ping_timeout_ms = 0,
                       .max_payload_bytes = 4294967295u}) ==
          "0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":0,"
          "\"maxPayload\":4294967295}");
}

TEST_CASE("sids are 20 base64url characters and do not repeat", "[socketio][engineio][sid]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto sid = make_sid();
        REQUIRE(sid);
        REQUIRE(sid->size() == 20);
        for (const char c : *sid) {
            const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_';
            REQUIRE(ok);
        }
        seen.insert(*sid);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("every Engine.IO error has a reason", "[socketio][engineio][errors]") {
    for (const auto e : {eio_error::empty_packet, eio_error::unknown_type, eio_error::bad_base64,
                         eio_error::payload_too_large, eio_error::too_many_packets}) {
        CHECK(!describe(e).empty());
    }
}
