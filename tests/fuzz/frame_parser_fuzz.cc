// libFuzzer target for ws::frame_parser (server role, small message limit).
//
// Input: byte 0 seeds the split of the rest into reads; the rest is the client's byte
// stream. Each input is parsed three ways and checked:
//   1. split into pseudo-random reads: every event obeys the sink contract (text and close
//      reasons are valid UTF-8, sizes within limits, close codes sendable), and after
//      `closed`/`error` the parser consumes nothing;
//   2. in one read: the same events and the same verdict (split invariance);
//   3. the events re-encoded with encode_client_frame parse back identically (writer and
//      parser agree).
// Any violated invariant aborts, which libFuzzer (and the corpus replay test) reports.
#include "ringcast/ws.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

// Small enough that the fuzzer reaches 1009 quickly, large enough for 64-bit lengths'
// minimal form (> 65535) to be refused by the limit rather than by length checks alone.
constexpr std::size_t max_message_bytes = 4096;
constexpr std::array<std::byte, 4> reencode_key{std::byte{1}, std::byte{0x80}, std::byte{0x7f},
                                                std::byte{0xff}};

[[noreturn]] void invariant_failed(const char* what) {
    std::fprintf(stderr, "frame_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
}

void require(bool ok, const char* what) {
    if (!ok) {
        invariant_failed(what);
    }
}

struct event {
    opcode type;
    std::vector<std::byte> payload; // close: the reason bytes
    uint16_t code = 0;
    bool operator==(const event&) const = default;
};

struct checking_sink final : frame_sink {
    std::vector<event> events;
    bool closed = false;

    void on_message(opcode type, std::span<const std::byte> payload) noexcept override {
        require(!closed, "event after close");
        require(type == opcode::text || type == opcode::binary, "message opcode");
        require(payload.size() <= max_message_bytes, "message over the limit");
        require(type != opcode::text || is_valid_utf8(payload), "text message not UTF-8");
        events.push_back({type, {payload.begin(), payload.end()}});
    }
    void on_ping(std::span<const std::byte> payload) noexcept override { control(opcode::ping, payload); }
    void on_pong(std::span<const std::byte> payload) noexcept override { control(opcode::pong, payload); }
    void on_close(uint16_t code, std::string_view reason) noexcept override {
        require(!closed, "second close");
        require(code == 1005 || close_code_valid_on_wire(code), "close code not sendable");
        require(code != 1005 || reason.empty(), "reason without a code");
        const auto* p = reinterpret_cast<const std::byte*>(reason.data());
        require(reason.size() <= 123, "close reason too long");
        require(is_valid_utf8({p, reason.size()}), "close reason not UTF-8");
        closed = true;
        events.push_back({opcode::close, {p, p + reason.size()}, code});
    }
    void control(opcode type, std::span<const std::byte> payload) {
        require(!closed, "event after close");
        require(payload.size() <= 125, "control payload over 125 bytes");
        events.push_back({type, {payload.begin(), payload.end()}});
    }
};

struct run {
    parse_result result;
    std::vector<event> events;
};

// Feeds `stream` in reads whose sizes come from a small xorshift generator seeded by `seed`;
// mode bits pick tiny reads (header splits) or large ones.
run parse_split(std::vector<std::byte> stream, uint8_t seed) {
    frame_parser parser(role::server, {.max_message_bytes = max_message_bytes});
    checking_sink sink;
    uint32_t state = 0x9e3779b9u ^ seed;
    const std::size_t max_read = (seed & 0xc0) == 0 ? 3 : (seed & 0xc0) == 0x40 ? 17 : 300;
    parse_result result;
    std::size_t pos = 0;
    while (pos < stream.size()) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        const std::size_t n = std::min<std::size_t>(stream.size() - pos, 1 + state % max_read);
        result = parser.feed(std::span(stream).subspan(pos, n), sink);
        pos += n;
        require(parser.buffered_bytes() <= max_message_bytes + 125 + max_frame_header_bytes,
                "buffered beyond the limit");
        if (result.status != parse_status::ok) {
            break;
        }
    }
    if (result.status != parse_status::ok) {
        // Terminal: the same answer again, no events, and not a byte touched.
        require(parser.buffered_bytes() == 0, "heap held after the end");
        std::array<std::byte, 6> probe{std::byte{0x81}, std::byte{0x80}, std::byte{1},
                                       std::byte{2}, std::byte{3}, std::byte{4}};
        const auto before = probe;
        const std::size_t events_before = sink.events.size();
        const parse_result again = parser.feed(probe, sink);
        require(again.status == result.status && again.code == result.code &&
                    again.reason == result.reason,
                "terminal result changed");
        require(probe == before && sink.events.size() == events_before, "consumed after the end");
        require(result.status == parse_status::closed || !result.reason.empty(),
                "error without a reason");
    } else {
        require(!sink.closed, "close delivered but status ok");
    }
    return {result, std::move(sink.events)};
}

run parse_whole(std::vector<std::byte> stream) {
    frame_parser parser(role::server, {.max_message_bytes = max_message_bytes});
    checking_sink sink;
    const parse_result result = parser.feed(stream, sink);
    return {result, std::move(sink.events)};
}

std::vector<std::byte> reencode(const std::vector<event>& events) {
    std::vector<std::byte> out;
    for (const event& e : events) {
        std::vector<std::byte> payload = e.payload;
        if (e.type == opcode::close && e.code != 1005) {
            payload.insert(payload.begin(), {static_cast<std::byte>(e.code >> 8),
                                             static_cast<std::byte>(e.code & 0xff)});
        }
        const auto frame = encode_client_frame(e.type, payload, reencode_key);
        out.insert(out.end(), frame.begin(), frame.end());
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t seed = data[0];
    const auto* first = reinterpret_cast<const std::byte*>(data + 1);
    const std::vector<std::byte> stream(first, first + (size - 1));

    const run split = parse_split(stream, seed);
    const run whole = parse_whole(stream);
    require(split.events == whole.events, "events depend on how the stream was split");
    require(split.result.status == whole.result.status && split.result.code == whole.result.code,
            "verdict depends on how the stream was split");

    const run again = parse_whole(reencode(split.events));
    require(again.events == split.events, "re-encoded events parse differently");
    require(again.result.status == (split.events.empty() || split.events.back().type != opcode::close
                                        ? parse_status::ok
                                        : parse_status::closed),
            "re-encoded events do not parse cleanly");
    return 0;
}
