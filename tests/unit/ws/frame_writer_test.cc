// ws frame writer and masking: header forms, round trips through the parser, masking at
// every key offset, close frames.
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <cstring>
#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

using bytes = std::vector<std::byte>;

constexpr std::array<std::byte, 4> key{std::byte{0xa1}, std::byte{0x0b}, std::byte{0x5c},
                                       std::byte{0xe7}};

bytes pattern_payload(std::size_t n) {
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
    }
    return out;
}

// Collects the one message (or control payload) a round trip produces.
struct last_payload final : frame_sink {
    opcode type = opcode::continuation;
    bytes payload;
    int events = 0;
    uint16_t close_code_seen = 0;
    std::string reason;

    void keep(opcode op, std::span<const std::byte> p) {
        type = op;
        payload.assign(p.begin(), p.end());
        ++events;
    }
    void on_message(opcode op, std::span<const std::byte> p) noexcept override { keep(op, p); }
    void on_ping(std::span<const std::byte> p) noexcept override { keep(opcode::ping, p); }
    void on_pong(std::span<const std::byte> p) noexcept override { keep(opcode::pong, p); }
    void on_close(uint16_t code, std::string_view r) noexcept override {
        type = opcode::close;
        close_code_seen = code;
        reason = r;
        ++events;
    }
};

} // namespace

TEST_CASE("frame header size follows the three length forms", "[ws][writer]") {
    CHECK(frame_header_size(0) == 2);
    CHECK(frame_header_size(125) == 2);
    CHECK(frame_header_size(126) == 4);
    CHECK(frame_header_size(65535) == 4);
    CHECK(frame_header_size(65536) == 10);
    CHECK(frame_header_size(uint64_t{1} << 40) == 10);
    CHECK(frame_header_size(125, true) == 6);
    CHECK(frame_header_size(126, true) == 8);
    CHECK(frame_header_size(65536, true) == 14);
    CHECK(frame_header_size(65536, true) <= max_frame_header_bytes);
}

TEST_CASE("frame header bytes match RFC 6455 section 5.2", "[ws][writer]") {
    std::array<std::byte, max_frame_header_bytes> out{};
    SECTION("short final text frame") {
        REQUIRE(write_frame_header(out.data(), opcode::text, 5) == 2);
        CHECK(out[0] == std::byte{0x81});
        CHECK(out[1] == std::byte{0x05});
    }
    SECTION("non-final binary frame with 16-bit length") {
        REQUIRE(write_frame_header(out.data(), opcode::binary, 0x1234, fin::no) == 4);
        CHECK(out[0] == std::byte{0x02});
        CHECK(out[1] == std::byte{126});
        CHECK(out[2] == std::byte{0x12});
        CHECK(out[3] == std::byte{0x34});
    }
    SECTION("masked frame with 64-bit length") {
        REQUIRE(write_frame_header(out.data(), opcode::binary, 0x0102030405ull, fin::yes, &key) == 14);
        CHECK(out[1] == std::byte{0xff});
        const std::array<std::byte, 8> length{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1},
                                              std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
        CHECK(std::memcmp(out.data() + 2, length.data(), 8) == 0);
        CHECK(std::memcmp(out.data() + 10, key.data(), 4) == 0);
    }
}

TEST_CASE("frames round-trip through the parser at every length form", "[ws][writer][parser]") {
    for (std::size_t length : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 1u << 20}) {
        const bytes payload = pattern_payload(length);
        SECTION("client frame of " + std::to_string(length) + " bytes") {
            bytes wire = encode_client_frame(opcode::binary, payload, key);
            CHECK(wire.size() == frame_header_size(length, true) + length);
            frame_parser parser(role::server, {.max_message_bytes = 2u << 20});
            last_payload sink;
            CHECK(parser.feed(wire, sink).status == parse_status::ok);
            CHECK(sink.events == 1);
            CHECK(sink.type == opcode::binary);
            CHECK(sink.payload == payload);
        }
        SECTION("server frame of " + std::to_string(length) + " bytes") {
            bytes wire = encode_frame(opcode::binary, payload);
            CHECK(wire.size() == frame_header_size(length) + length);
            frame_parser parser(role::client, {.max_message_bytes = 2u << 20});
            last_payload sink;
            CHECK(parser.feed(wire, sink).status == parse_status::ok);
            CHECK(sink.payload == payload);
        }
    }
}

TEST_CASE("apply_mask matches the byte-wise definition at every key offset", "[ws][mask]") {
    for (std::size_t offset = 0; offset < 4; ++offset) {
        for (std::size_t length : {0u, 1u, 3u, 7u, 8u, 9u, 31u, 32u, 33u, 100u, 1027u}) {
            INFO("offset " << offset << " length " << length);
            const bytes original = pattern_payload(length);
            bytes masked = original;
            apply_mask(masked, key, offset);
            bool same = true;
            for (std::size_t i = 0; i < length; ++i) {
                same = same && masked[i] == (original[i] ^ key[(offset + i) % 4]);
            }
            CHECK(same);
            apply_mask(masked, key, offset);
            CHECK(masked == original);
        }
    }
}

TEST_CASE("apply_mask continues a key across arbitrary chunks", "[ws][mask]") {
    const bytes original = pattern_payload(257);
    bytes whole = original;
    apply_mask(whole, key);
    for (std::size_t first : {1u, 2u, 3u, 5u, 64u, 130u}) {
        bytes chunked = original;
        auto span = std::span(chunked);
        apply_mask(span.first(first), key, 0);
        apply_mask(span.subspan(first), key, first % 4);
        CHECK(chunked == whole);
    }
}

TEST_CASE("close frames carry the code and a reason cut on a character boundary",
          "[ws][writer][close]") {
    std::array<std::byte, max_close_frame_bytes> out{};
    SECTION("code and reason round-trip") {
        const std::size_t n = write_close_frame(out, close_code::going_away, "restart");
        CHECK(n == 2 + 2 + 7);
        bytes wire(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
        frame_parser parser(role::client);
        last_payload sink;
        CHECK(parser.feed(wire, sink).status == parse_status::closed);
        CHECK(sink.close_code_seen == 1001);
        CHECK(sink.reason == "restart");
    }
    SECTION("no reason: just the code") {
        CHECK(write_close_frame(out, close_code::normal, std::string_view{}) == 4);
        CHECK(out[1] == std::byte{2});
        CHECK(out[2] == std::byte{0x03});
        CHECK(out[3] == std::byte{0xe8});
    }
    SECTION("a long ASCII reason is cut to 123 bytes") {
        const std::string reason(200, 'r');
        CHECK(write_close_frame(out, close_code::normal, reason) == max_close_frame_bytes);
        CHECK(out[1] == std::byte{125});
    }
    SECTION("a long reason is never cut inside a character") {
        for (std::size_t pad = 0; pad < 4; ++pad) {
            std::string reason(pad, 'x');
            while (reason.size() < 200) {
                reason += "€"; // 3 bytes
            }
            const std::size_t n = write_close_frame(out, close_code::normal, reason);
            const std::size_t reason_bytes = n - 4;
            INFO("pad " << pad << " reason bytes " << reason_bytes);
            CHECK(reason_bytes <= 123);
            CHECK(reason_bytes >= 121);
            CHECK(is_valid_utf8(std::span(out).subspan(4, reason_bytes)));
        }
    }
    SECTION("codes that may not be sent produce an empty close frame") {
        CHECK(write_close_frame(out, close_code::no_status, "ignored") == 2);
        CHECK(out[0] == std::byte{0x88});
        CHECK(out[1] == std::byte{0});
        CHECK(write_close_frame(out, close_code::abnormal, "") == 2);
    }
    SECTION("a short output buffer shortens the reason and is never overrun") {
        std::array<std::byte, 8> small{};
        CHECK(write_close_frame(small, close_code::normal, "longer than eight") == 8);
        std::array<std::byte, 3> tiny{};
        CHECK(write_close_frame(tiny, close_code::normal, "x") == 0);
    }
}
