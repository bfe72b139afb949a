// ws::frame_parser: every RFC 6455 check from ws.h, any split of the byte stream, the
// zero-copy and no-heap-when-idle contracts, and the terminal states.
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <cstring>
#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

using bytes = std::vector<std::byte>;

constexpr std::array<std::byte, 4> key{std::byte{0x37}, std::byte{0xfa}, std::byte{0x21},
                                       std::byte{0x3d}};

bytes to_bytes(std::string_view text) {
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    return bytes(p, p + text.size());
}

bytes raw(std::initializer_list<int> values) {
    bytes out;
    for (int v : values) {
        out.push_back(static_cast<std::byte>(v));
    }
    return out;
}

bytes client(opcode op, std::string_view payload, fin final_frame = fin::yes) {
    return encode_client_frame(op, to_bytes(payload), key, final_frame);
}

bytes concat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& part : parts) {
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

bytes close_payload(uint16_t code, std::string_view reason) {
    bytes out{static_cast<std::byte>(code >> 8), static_cast<std::byte>(code & 0xff)};
    const bytes tail = to_bytes(reason);
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
}

struct event {
    std::string kind; // "text", "binary", "ping", "pong", "close"
    std::string data;
    uint16_t code = 0;
    bool operator==(const event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const event& e) {
    return os << e.kind << "(" << e.data.size() << " bytes, code " << e.code << ")";
}

// Records events; also notes whether a message payload pointed into the caller's input.
struct recorder final : frame_sink {
    std::vector<event> events;
    std::span<const std::byte> input;
    bool last_in_place = false;

    static std::string text_of(std::span<const std::byte> payload) {
        return {reinterpret_cast<const char*>(payload.data()), payload.size()};
    }
    void on_message(opcode type, std::span<const std::byte> payload) noexcept override {
        last_in_place = !payload.empty() && payload.data() >= input.data() &&
                        payload.data() + payload.size() <= input.data() + input.size();
        events.push_back({type == opcode::text ? "text" : "binary", text_of(payload)});
    }
    void on_ping(std::span<const std::byte> payload) noexcept override {
        events.push_back({"ping", text_of(payload)});
    }
    void on_pong(std::span<const std::byte> payload) noexcept override {
        events.push_back({"pong", text_of(payload)});
    }
    void on_close(uint16_t code, std::string_view reason) noexcept override {
        events.push_back({"close", std::string(reason), code});
    }
};

struct outcome {
    parse_result result;
    std::vector<event> events;
};

// Feeds `wire` (copied, since the parser unmasks in place) in pieces ending at `cuts`,
// stopping at the first feed that does not return ok.
outcome feed_cut(const bytes& wire, const std::vector<std::size_t>& cuts,
                 role side = role::server, parser_limits limits = {}) {
    bytes copy = wire;
    frame_parser parser(side, limits);
    recorder sink;
    parse_result result;
    std::size_t from = 0;
    auto ends = cuts;
    ends.push_back(copy.size());
    for (std::size_t to : ends) {
        const auto piece = std::span(copy).subspan(from, to - from);
        sink.input = piece;
        result = parser.feed(piece, sink);
        from = to;
        if (result.status != parse_status::ok) {
            break;
        }
    }
    return {result, sink.events};
}

outcome feed_whole(const bytes& wire, role side = role::server, parser_limits limits = {}) {
    return feed_cut(wire, {}, side, limits);
}

outcome feed_bytewise(const bytes& wire, role side = role::server, parser_limits limits = {}) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < wire.size(); ++i) {
        cuts.push_back(i);
    }
    return feed_cut(wire, cuts, side, limits);
}

// The same events and result for every way of cutting `wire` into two pieces, and byte by
// byte.
void check_every_split(const bytes& wire, const outcome& expected) {
    for (std::size_t cut = 1; cut < wire.size(); ++cut) {
        INFO("cut at " << cut);
        const outcome got = feed_cut(wire, {cut});
        CHECK(got.events == expected.events);
        CHECK(got.result.status == expected.result.status);
        CHECK(got.result.code == expected.result.code);
    }
    const outcome got = feed_bytewise(wire);
    CHECK(got.events == expected.events);
    CHECK(got.result.status == expected.result.status);
}

void require_error(const outcome& got, close_code code) {
    INFO("reason: " << got.result.reason);
    REQUIRE(got.result.status == parse_status::error);
    CHECK(got.result.code == code);
    CHECK_FALSE(got.result.reason.empty());
}

} // namespace

TEST_CASE("frame parser accepts a masked text frame split at every byte", "[ws][parser]") {
    const bytes wire = client(opcode::text, "héllo wörld");
    for (std::size_t cut = 1; cut < wire.size(); ++cut) {
        SECTION("cut at " + std::to_string(cut)) {
            const outcome got = feed_cut(wire, {cut});
            CHECK(got.result.status == parse_status::ok);
            REQUIRE(got.events.size() == 1);
            CHECK(got.events[0] == event{"text", "héllo wörld"});
        }
    }
}

TEST_CASE("frame parser delivers every frame type the same way at any split", "[ws][parser]") {
    const std::string medium(300, 'm');  // 16-bit length form
    const std::string large(70000, 'L'); // 64-bit length form
    const struct {
        const char* name;
        bytes wire;
        event expected;
        parse_status status;
    } cases[] = {
        {"text", client(opcode::text, "hi ✓"), {"text", "hi ✓"}, parse_status::ok},
        {"empty text", client(opcode::text, ""), {"text", ""}, parse_status::ok},
        {"binary", client(opcode::binary, std::string("\0\xff\x80", 3)),
         {"binary", std::string("\0\xff\x80", 3)}, parse_status::ok},
        {"16-bit length", client(opcode::binary, medium), {"binary", medium}, parse_status::ok},
        {"ping", client(opcode::ping, "are you there"), {"ping", "are you there"}, parse_status::ok},
        {"empty pong", client(opcode::pong, ""), {"pong", ""}, parse_status::ok},
        {"close with reason", encode_client_frame(opcode::close, close_payload(1000, "bye ✓"), key),
         {"close", "bye ✓", 1000}, parse_status::closed},
        {"close without body", client(opcode::close, ""), {"close", "", 1005}, parse_status::closed},
    };
    for (const auto& c : cases) {
        SECTION(c.name) {
            const outcome whole = feed_whole(c.wire);
            CHECK(whole.result.status == c.status);
            REQUIRE(whole.events == std::vector<event>{c.expected});
            check_every_split(c.wire, whole);
        }
    }
    SECTION("64-bit length, fed in uneven pieces") {
        const bytes wire = client(opcode::text, large);
        const outcome got = feed_cut(wire, {1, 5, 9, 13, 14, 4096, 65536});
        REQUIRE(got.events.size() == 1);
        CHECK(got.events[0].data == large);
    }
}

TEST_CASE("frame parser delivers a frame wholly in its input without copying", "[ws][parser]") {
    bytes wire = concat({client(opcode::text, "first"), client(opcode::binary, "second")});
    frame_parser parser;
    struct checking_sink final : frame_sink {
        frame_parser* parser;
        std::span<const std::byte> input;
        int in_place = 0;
        void on_message(opcode, std::span<const std::byte> payload) noexcept override {
            if (payload.data() >= input.data() &&
                payload.data() + payload.size() <= input.data() + input.size() &&
                parser->buffered_bytes() == 0) {
                ++in_place;
            }
        }
        void on_ping(std::span<const std::byte>) noexcept override {}
        void on_pong(std::span<const std::byte>) noexcept override {}
        void on_close(uint16_t, std::string_view) noexcept override {}
    } checker;
    checker.parser = &parser;
    checker.input = wire;
    CHECK(parser.feed(wire, checker).status == parse_status::ok);
    CHECK(checker.in_place == 2);
    // Unmasked in place: the payload now reads as plain text inside the caller's buffer.
    const std::string_view view(reinterpret_cast<const char*>(wire.data()), wire.size());
    CHECK(view.find("first") != std::string_view::npos);
    CHECK(view.find("second") != std::string_view::npos);
}

TEST_CASE("frame parser holds nothing between messages", "[ws][parser]") {
    bytes wire = concat({client(opcode::text, "part one ", fin::no),
                         client(opcode::ping, "p"),
                         client(opcode::continuation, "and two")});
    frame_parser parser;
    recorder sink;
    // Split inside every frame so the message, the ping and a header all get buffered.
    auto span = std::span(wire);
    CHECK(parser.feed(span.subspan(0, 1), sink).status == parse_status::ok);
    CHECK(parser.buffered_bytes() == 1); // half a header
    CHECK(parser.feed(span.subspan(1, 10), sink).status == parse_status::ok);
    CHECK(parser.buffered_bytes() > 0);
    CHECK(parser.feed(span.subspan(11), sink).status == parse_status::ok);
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0] == event{"ping", "p"});
    CHECK(sink.events[1] == event{"text", "part one and two"});
    CHECK(parser.buffered_bytes() == 0);
}

TEST_CASE("frame parser assembles a fragmented message with interleaved control frames",
          "[ws][parser][fragments]") {
    const bytes wire = concat({
        client(opcode::text, "Hel", fin::no),
        client(opcode::ping, "ping 1"),
        client(opcode::continuation, "", fin::no),
        client(opcode::pong, "pong"),
        client(opcode::continuation, "lo ✓", fin::no), // ✓ is 3 bytes: split next
        client(opcode::ping, ""),
        client(opcode::continuation, " world"),
        client(opcode::binary, "b1", fin::no),
        client(opcode::continuation, "b2"),
        client(opcode::close, ""),
    });
    const outcome whole = feed_whole(wire);
    CHECK(whole.result.status == parse_status::closed);
    const std::vector<event> expected{
        {"ping", "ping 1"}, {"pong", "pong"}, {"ping", ""},
        {"text", "Hello ✓ world"}, {"binary", "b1b2"}, {"close", "", 1005},
    };
    CHECK(whole.events == expected);
    check_every_split(wire, whole);
}

TEST_CASE("frame parser assembles a character split across fragments", "[ws][utf8]") {
    // "€" = E2 82 AC, cut after its first byte.
    const bytes wire = concat({client(opcode::text, "\xe2", fin::no),
                               client(opcode::continuation, "\x82\xac")});
    const outcome got = feed_whole(wire);
    REQUIRE(got.events.size() == 1);
    CHECK(got.events[0].data == "€");
}

TEST_CASE("frame parser fails invalid UTF-8 before the message is complete", "[ws][utf8]") {
    SECTION("invalid byte in the first fragment fails before the final fragment arrives") {
        const bytes first = client(opcode::text, "ok \xc0\xaf", fin::no);
        frame_parser parser;
        recorder sink;
        bytes copy = first;
        require_error({parser.feed(copy, sink), sink.events}, close_code::invalid_payload);
        CHECK(sink.events.empty());
    }
    SECTION("invalid byte mid-frame fails before the frame ends") {
        const bytes wire = client(opcode::text, "abc\xff" + std::string(200, 'x'));
        // Header (4 + 4 mask) plus "abc\xff": the rest of the frame never arrives.
        bytes prefix(wire.begin(), wire.begin() + 12);
        frame_parser parser;
        recorder sink;
        require_error({parser.feed(prefix, sink), sink.events}, close_code::invalid_payload);
    }
    SECTION("message ending inside a character") {
        require_error(feed_whole(client(opcode::text, "abc\xe2\x82")), close_code::invalid_payload);
        require_error(feed_whole(concat({client(opcode::text, "a", fin::no),
                                         client(opcode::continuation, "\xf0\x9f")})),
                      close_code::invalid_payload);
    }
    SECTION("surrogate and too-large code points") {
        require_error(feed_whole(client(opcode::text, "\xed\xa0\x80")), close_code::invalid_payload);
        require_error(feed_whole(client(opcode::text, "\xf4\x90\x80\x80")),
                      close_code::invalid_payload);
    }
    SECTION("binary messages are not UTF-8 checked") {
        const outcome got = feed_whole(client(opcode::binary, "\xff\xfe"));
        CHECK(got.result.status == parse_status::ok);
        CHECK(got.events.size() == 1);
    }
}

TEST_CASE("frame parser rejects reserved bits and opcodes with 1002", "[ws][parser][errors]") {
    for (int rsv : {0x40, 0x20, 0x10, 0x70}) {
        bytes wire = client(opcode::text, "x");
        wire[0] |= static_cast<std::byte>(rsv);
        INFO("rsv " << rsv);
        require_error(feed_whole(wire), close_code::protocol_error);
    }
    for (int op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf}) {
        bytes wire = client(opcode::text, "x");
        wire[0] = static_cast<std::byte>(0x80 | op);
        INFO("opcode " << op);
        require_error(feed_whole(wire), close_code::protocol_error);
    }
}

TEST_CASE("frame parser enforces masking per role", "[ws][parser][errors]") {
    const bytes unmasked = encode_frame(opcode::text, to_bytes("hi"));
    const bytes masked = client(opcode::text, "hi");
    require_error(feed_whole(unmasked, role::server), close_code::protocol_error);
    require_error(feed_whole(masked, role::client), close_code::protocol_error);
    const outcome got = feed_whole(unmasked, role::client);
    CHECK(got.result.status == parse_status::ok);
    CHECK(got.events == std::vector<event>{{"text", "hi"}});
    check_every_split(unmasked, feed_whole(unmasked, role::server));
}

TEST_CASE("frame parser rejects malformed control frames", "[ws][parser][errors]") {
    SECTION("ping longer than 125 bytes") {
        require_error(feed_whole(client(opcode::ping, std::string(126, 'p'))),
                      close_code::protocol_error);
    }
    SECTION("fragmented ping, even if short") {
        require_error(feed_whole(client(opcode::ping, "p", fin::no)), close_code::protocol_error);
    }
    SECTION("125-byte ping is fine") {
        CHECK(feed_whole(client(opcode::ping, std::string(125, 'p'))).events.size() == 1);
    }
    SECTION("close with a 1-byte payload") {
        require_error(feed_whole(client(opcode::close, "\x03")), close_code::protocol_error);
    }
    SECTION("close codes that may not be sent") {
        for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
            INFO("code " << code);
            require_error(feed_whole(encode_client_frame(opcode::close, close_payload(code, ""), key)),
                          close_code::protocol_error);
        }
    }
    SECTION("close reason that is not UTF-8") {
        require_error(feed_whole(encode_client_frame(opcode::close,
                                                     close_payload(1000, "bad \xc3\x28"), key)),
                      close_code::invalid_payload);
    }
    SECTION("close codes that may be sent") {
        for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4001, 4999}) {
            const outcome got =
                feed_whole(encode_client_frame(opcode::close, close_payload(code, "r"), key));
            CHECK(got.result.status == parse_status::closed);
            CHECK(got.events == std::vector<event>{{"close", "r", code}});
        }
    }
}

TEST_CASE("frame parser rejects continuation and data frames out of sequence",
          "[ws][parser][errors]") {
    SECTION("continuation without a message") {
        require_error(feed_whole(client(opcode::continuation, "x")), close_code::protocol_error);
    }
    SECTION("continuation after a completed message") {
        require_error(feed_whole(concat({client(opcode::text, "a"),
                                         client(opcode::continuation, "b")})),
                      close_code::protocol_error);
    }
    SECTION("new text frame while a message is assembled") {
        const outcome got = feed_whole(concat({client(opcode::binary, "a", fin::no),
                                               client(opcode::ping, ""),
                                               client(opcode::text, "b")}));
        require_error(got, close_code::protocol_error);
        CHECK(got.events == std::vector<event>{{"ping", ""}});
    }
}

TEST_CASE("frame parser rejects bad length encodings", "[ws][parser][errors]") {
    // Decision: RFC 6455 §5.2 says the minimal encoding MUST be used; we enforce it (wslay
    // does too), so a 16-bit length under 126 or a 64-bit length under 65536 is a 1002.
    SECTION("16-bit length that fits in 7 bits") {
        require_error(feed_whole(raw({0x82, 0xfe, 0x00, 0x7d, 1, 2, 3, 4})),
                      close_code::protocol_error);
    }
    SECTION("64-bit length that fits in 16 bits") {
        require_error(feed_whole(raw({0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4})),
                      close_code::protocol_error);
    }
    SECTION("64-bit length with the top bit set") {
        require_error(feed_whole(raw({0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})),
                      close_code::protocol_error);
    }
    SECTION("smallest lengths of each form are accepted") {
        CHECK(feed_whole(client(opcode::binary, std::string(126, 'a'))).events.size() == 1);
        CHECK(feed_whole(client(opcode::binary, std::string(65536, 'a'))).events.size() == 1);
    }
}

TEST_CASE("frame parser fails a bad header from its first two bytes", "[ws][parser][errors]") {
    // The extended length, mask key and payload never arrive.
    for (const bytes& start : {raw({0xc1, 0x80}), raw({0x89, 0xfe}), raw({0x09, 0x80}),
                               raw({0x81, 0x7f}), raw({0x80, 0x80})}) {
        frame_parser parser;
        recorder sink;
        bytes copy = start;
        require_error({parser.feed(copy, sink), {}}, close_code::protocol_error);
    }
}

TEST_CASE("frame parser limits message size before buffering", "[ws][parser][limits]") {
    const parser_limits limits{.max_message_bytes = 1000};
    SECTION("single frame at the limit is delivered") {
        const outcome got = feed_whole(client(opcode::binary, std::string(1000, 'a')),
                                       role::server, limits);
        CHECK(got.events.size() == 1);
    }
    SECTION("announced length over the limit fails on the header alone") {
        frame_parser parser(role::server, limits);
        recorder sink;
        bytes header = raw({0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4});
        require_error({parser.feed(header, sink), {}}, close_code::message_too_big);
        CHECK(parser.buffered_bytes() == 0);
    }
    SECTION("fragments that add up to more than the limit") {
        const bytes wire = concat({client(opcode::text, std::string(600, 'a'), fin::no),
                                   client(opcode::continuation, std::string(401, 'b'))});
        require_error(feed_whole(wire, role::server, limits), close_code::message_too_big);
        require_error(feed_bytewise(wire, role::server, limits), close_code::message_too_big);
    }
    SECTION("fragments that add up to exactly the limit") {
        const bytes wire = concat({client(opcode::text, std::string(600, 'a'), fin::no),
                                   client(opcode::ping, std::string(125, 'p')),
                                   client(opcode::continuation, std::string(400, 'b'))});
        CHECK(feed_whole(wire, role::server, limits).events.size() == 2);
    }
    SECTION("control frames do not count against the message limit") {
        const parser_limits tiny{.max_message_bytes = 4};
        CHECK(feed_whole(client(opcode::ping, std::string(100, 'p')), role::server, tiny)
                  .events.size() == 1);
    }
}

TEST_CASE("frame parser stops for good after close or error", "[ws][parser]") {
    SECTION("bytes after a close frame are ignored") {
        bytes wire = concat({client(opcode::text, "a"),
                             encode_client_frame(opcode::close, close_payload(1001, "gone"), key),
                             client(opcode::text, "never")});
        frame_parser parser;
        recorder sink;
        CHECK(parser.feed(wire, sink).status == parse_status::closed);
        CHECK(sink.events == std::vector<event>{{"text", "a"}, {"close", "gone", 1001}});
        bytes more = client(opcode::text, "later");
        const bytes before = more;
        CHECK(parser.feed(more, sink).status == parse_status::closed);
        CHECK(more == before); // not even unmasked
        CHECK(sink.events.size() == 2);
        CHECK(parser.buffered_bytes() == 0);
    }
    SECTION("an error repeats with the same code and reason") {
        frame_parser parser;
        recorder sink;
        bytes bad = client(opcode::continuation, "x");
        const parse_result first = parser.feed(bad, sink);
        bytes good = client(opcode::text, "y");
        const bytes before = good;
        const parse_result again = parser.feed(good, sink);
        CHECK(again.status == parse_status::error);
        CHECK(again.code == first.code);
        CHECK(again.reason == first.reason);
        CHECK(good == before);
        CHECK(sink.events.empty());
    }
}

TEST_CASE("frame parser handles many frames in one read and empty reads", "[ws][parser]") {
    bytes wire;
    std::vector<event> expected;
    for (int i = 0; i < 100; ++i) {
        const std::string payload(static_cast<std::size_t>(i * 7 % 300), static_cast<char>('a' + i % 26));
        const bytes frame = client(i % 2 == 0 ? opcode::text : opcode::binary, payload);
        wire.insert(wire.end(), frame.begin(), frame.end());
        expected.push_back({i % 2 == 0 ? "text" : "binary", payload});
    }
    frame_parser parser;
    recorder sink;
    CHECK(parser.feed({}, sink).status == parse_status::ok);
    CHECK(parser.feed(wire, sink).status == parse_status::ok);
    CHECK(parser.feed({}, sink).status == parse_status::ok);
    CHECK(sink.events == expected);
}
