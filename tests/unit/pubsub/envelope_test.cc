// pubsub envelope and replies: exact bytes, envelope_size() == bytes written on many
// inputs, a round trip through simdjson, and reply escaping.
#include "shown.h"

#include <catch2/catch.hpp>

#include "ringcast/pubsub.h"

#include <simdjson.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace ringcast::pubsub;

namespace {

using testing::shown;

std::string write(const envelope& e) {
    // Guard bytes on both sides catch a write past envelope_size() or before the start.
    constexpr std::size_t guard = 16;
    const std::size_t size = envelope_size(e);
    std::string buf(size + 2 * guard, '#');
    const std::size_t written = write_envelope(e, std::span<char>(buf.data() + guard, size));
    if (written != size || buf.substr(0, guard) != std::string(guard, '#') ||
        buf.substr(guard + size) != std::string(guard, '#')) {
        FAIL_CHECK("wrote " << written << " bytes for envelope_size " << size << ": " << buf);
    }
    return buf.substr(guard, written);
}

bool valid_json(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::dom::element ignored;
    return parser.parse(text.data(), text.size()).get(ignored) == simdjson::SUCCESS;
}

std::string random_name(std::mt19937& rng, std::string_view charset, std::size_t max) {
    std::uniform_int_distribution<std::size_t> length(1, max);
    std::uniform_int_distribution<std::size_t> pick(0, charset.size() - 1);
    std::string s(length(rng), ' ');
    for (char& c : s) {
        c = charset[pick(rng)];
    }
    return s;
}

} // namespace

TEST_CASE("write_envelope writes the fields in protocol order without spaces",
          "[pubsub][protocol]") {
    const envelope e{.message_id = "m-1",
                     .event = "test:progress",
                     .channel = "test-progress-42",
                     .data = R"({"pct": 40})",
                     .prio = priority::normal,
                     .timestamp_ms = 1763790000000,
                     .user_id = "7",
                     .offset = 18};
    CHECK(write(e) ==
          R"({"id":"m-1","event":"test:progress","channel":"test-progress-42","data":{"pct": 40},"priority":3,"timestamp":1763790000000,"userId":"7","offset":18})");
}

TEST_CASE("write_envelope writes userId null when there is no user", "[pubsub][protocol]") {
    const envelope e{.message_id = "m", .event = "e", .channel = "c", .data = "1",
                     .prio = priority::low, .timestamp_ms = 0, .user_id = {}, .offset = 0};
    CHECK(write(e) ==
          R"({"id":"m","event":"e","channel":"c","data":1,"priority":4,"timestamp":0,"userId":null,"offset":0})");
}

TEST_CASE("write_envelope writes null for empty data so the envelope stays JSON",
          "[pubsub][protocol]") {
    const envelope e{.message_id = "m", .event = "e", .channel = "c", .data = {}};
    const std::string out = write(e);
    CHECK(out.find(R"("data":null,)") != std::string::npos);
    CHECK(valid_json(out));
}

TEST_CASE("envelope_size equals the bytes written and the envelope round-trips through a JSON parser",
          "[pubsub][protocol]") {
    // 2000 random envelopes: names drawn from their whole charsets at every length up to
    // their bounds, numbers at every digit-count boundary, data of every JSON kind.
    constexpr std::string_view channel_chars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@*-";
    constexpr std::string_view user_chars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-";
    std::string event_chars;
    for (char c = 0x20; c < 0x7f; ++c) {
        if (c != '"' && c != '\\') {
            event_chars += c;
        }
    }
    const std::vector<std::string> datas = {"null", "true", "false", "0", "-1.5e10", R"("")",
                                            R"("x\"y\u00e9")", "[]", "{}", R"({"a":[1,{"b":null}]})",
                                            R"( [ 1 , 2 ] )"};
    const std::vector<uint64_t> numbers = {0, 1, 9, 10, 99, 100, 999999, 1000000,
                                           9007199254740992ull, UINT64_MAX};
    std::mt19937 rng(12345);
    std::uniform_int_distribution<std::size_t> pick_number(0, numbers.size() - 1);
    std::uniform_int_distribution<std::size_t> pick_data(0, datas.size() - 1);
    std::uniform_int_distribution<int> pick_priority(1, 4);
    simdjson::dom::parser parser;
    simdjson::dom::parser data_parser; // a second parser: parsing invalidates the first's tree
    int matched = 0;
    for (int i = 0; i < 2000; ++i) {
        const std::string id = random_name(rng, user_chars, 40);
        const std::string event = random_name(rng, event_chars, 255);
        const std::string channel = random_name(rng, channel_chars, 255);
        const std::string user = i % 3 == 0 ? std::string() : random_name(rng, user_chars, 64);
        const envelope e{.message_id = id,
                         .event = event,
                         .channel = channel,
                         .data = datas[pick_data(rng)],
                         .prio = static_cast<priority>(pick_priority(rng)),
                         .timestamp_ms = numbers[pick_number(rng)],
                         .user_id = user,
                         .offset = numbers[pick_number(rng)]};
        // Only mismatches are reported, so 2000 envelopes stay 2000 results in the log.
        const std::string out = write(e);
        std::string_view field;
        const auto differs = [&field](std::string_view name, bool same) {
            if (!same && field.empty()) {
                field = name;
            }
        };
        simdjson::dom::element root;
        simdjson::dom::object object;
        if (parser.parse(out).get(root) != simdjson::SUCCESS || root.get(object) != simdjson::SUCCESS) {
            differs("not a JSON object", false);
        } else {
            std::vector<std::string_view> keys;
            for (const auto member : object) {
                keys.push_back(member.key);
            }
            differs("key order", keys == std::vector<std::string_view>{"id", "event", "channel", "data",
                                                                      "priority", "timestamp",
                                                                      "userId", "offset"});
            differs("id", std::string_view(object["id"]) == id);
            differs("event", std::string_view(object["event"]) == event);
            differs("channel", std::string_view(object["channel"]) == channel);
            differs("data", simdjson::minify(object["data"]) ==
                                simdjson::minify(data_parser.parse(e.data).value()));
            differs("priority", uint64_t(object["priority"]) == static_cast<uint64_t>(e.prio));
            differs("timestamp", uint64_t(object["timestamp"]) == e.timestamp_ms);
            differs("offset", uint64_t(object["offset"]) == e.offset);
            differs("userId", user.empty() ? object["userId"].is_null()
                                           : std::string_view(object["userId"]) == user);
        }
        if (!field.empty()) {
            FAIL_CHECK("envelope " << i << " differs in " << field << ": " << out);
        }
        matched += field.empty() ? 1 : 0;
    }
    CHECK(matched == 2000);
}

TEST_CASE("write_envelope keeps data byte for byte", "[pubsub][protocol]") {
    const std::string data = "{ \"a\" :\n [1 ,2] }";
    const envelope e{.message_id = "m", .event = "e", .channel = "c", .data = data};
    const std::string out = write(e);
    CHECK(out.find(R"("data":)" + data + R"(,"priority")") != std::string::npos);
}

TEST_CASE("reply_ok writes the id or null and appends extra fields", "[pubsub][protocol]") {
    CHECK(reply_ok(true, 5) == R"({"op":"reply","id":5,"ok":true})");
    CHECK(reply_ok(false, 5) == R"({"op":"reply","id":null,"ok":true})");
    CHECK(reply_ok(true, 0, R"(,"offset":5)") == R"({"op":"reply","id":0,"ok":true,"offset":5})");
    CHECK(reply_ok(true, 9007199254740992ull, R"(,"channel":"c","epoch":"e","offset":0)") ==
          R"({"op":"reply","id":9007199254740992,"ok":true,"channel":"c","epoch":"e","offset":0})");
}

TEST_CASE("reply_error writes the code and the message", "[pubsub][protocol]") {
    CHECK(reply_error(true, 4, 403, "not allowed") ==
          R"({"op":"reply","id":4,"ok":false,"error":{"code":403,"message":"not allowed"}})");
    CHECK(reply_error(false, 0, 400, "unknown op") ==
          R"({"op":"reply","id":null,"ok":false,"error":{"code":400,"message":"unknown op"}})");
}

TEST_CASE("reply_error escapes the message per JSON", "[pubsub][protocol]") {
    const auto body = [](std::string_view message) {
        const std::string out = reply_error(false, 0, 400, message);
        CHECK(valid_json(out));
        const std::string head = R"({"op":"reply","id":null,"ok":false,"error":{"code":400,"message":")";
        REQUIRE(out.size() >= head.size() + 3);
        return shown(out.substr(head.size(), out.size() - head.size() - 3));
    };
    CHECK(body(R"(say "hi")") == shown(R"(say \"hi\")"));
    CHECK(body(R"(a\b)") == shown(R"(a\\b)"));
    CHECK(body("line\nbreak\ttab") == shown(R"(line\u000abreak\u0009tab)"));
    CHECK(body(std::string_view("nul\0", 4)) == shown(R"(nul\u0000)"));
    CHECK(body("\x1f\x7f") == shown("\\u001f\x7f"));
    CHECK(body("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80") == shown("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"));
    CHECK(body("bad \xff byte") == shown(R"(bad \ufffd byte)"));
    CHECK(body("cut \xc3") == shown(R"(cut \ufffd)"));
    CHECK(body("surrogate \xed\xa0\x80") == shown(R"(surrogate \ufffd\ufffd\ufffd)"));
    CHECK(body("overlong \xc0\xaf") == shown(R"(overlong \ufffd\ufffd)"));
    CHECK(body("too big \xf4\x90\x80\x80") == shown(R"(too big \ufffd\ufffd\ufffd\ufffd)"));
}

TEST_CASE("reply_error output is valid JSON for every single byte message", "[pubsub][protocol]") {
    for (int c = 0; c < 256; ++c) {
        const char byte = static_cast<char>(c);
        INFO("byte " << c);
        CHECK(valid_json(reply_error(true, 1, 400, std::string_view(&byte, 1))));
    }
}
