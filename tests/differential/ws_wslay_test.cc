// Differential test: ws::frame_parser (server role) against wslay's event API (server
// context, Debian libwslay 1.1.1) on the same client byte streams.
//
// For every generated stream both must reach the same verdict (still open / closed by a
// valid close / failed, with the same close code 1002, 1007 or 1009) and deliver the same
// events in the same order: data messages (opcode + payload), pings, pongs and the close
// (code + reason). Streams are generated from fixed seeds: valid messages of many sizes and
// fragmentations with interleaved control frames, targeted corruptions, random byte flips,
// truncations and size limits. Each side gets its own read pattern.
//
// What wslay does that we account for:
//   * It validates UTF-8 in text messages itself (incrementally, failing on the chunk with
//     the bad byte) and in close reasons, so invalid text IS compared (1007 on both sides).
//   * It queues pong and close replies on its own; those are sent to a buffer and used only
//     to read the close code it chose when it failed the connection.
//   * Violations found by its frame layer (control frame over 125 bytes or fragmented,
//     non-minimal length, 64-bit length with the top bit set) make wslay_event_recv()
//     return WSLAY_ERR_CALLBACK_FAILURE and send a close frame without a status code. That
//     counts as a failure whose code wslay leaves unspecified; ours must then be 1002.
//   * Fail-fast timing: we fail on a bad header; wslay checks reserved bits, opcode,
//     masking, message order and the size limit only once the frame's first payload byte
//     has arrived. When a stream ends in between, wslay is fed up to 14 padding bytes (enough
//     for the rest of any header and one payload byte) before the verdicts are compared.
//
// Classes where wslay and RFC 6455 (as ws.h specifies it) legitimately differ. Whether a
// case lands in one is decided from its input bytes (first_close_frame below), never from
// a parser's verdict; such a case is counted as excluded and only the events before its
// close frame are compared. Each test case bounds its compared count from below and its
// excluded count from above. Unit tests cover our side of each class:
//   1. A close frame with a 1-byte payload: RFC 6455 §5.5.1 requires the body to start with
//      a 2-byte code, so we fail with 1002; wslay treats it as "no status code".
//   2. Close codes 1012-1014 (IANA-registered since the RFC; valid per ws.h): wslay's table
//      stops at 1011 and fails with 1002.
//   3. Close reasons containing non-ASCII bytes: wslay restarts its reason check at offset
//      2 of every chunk it reads, so its verdict depends on how the stream was split. It
//      also checks the reason before the code, so a close frame with both a refused code
//      and a bad reason is 1007 there and 1002 here (either is right).
#include <catch2/catch.hpp>

#include <wslay/wslay.h>

#include "ringcast/ws.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

using bytes = std::vector<std::byte>;

struct event {
    int opcode;
    std::string payload; // close: the reason only
    uint16_t code = 0;   // close: 1005 when the frame had no body
    bool operator==(const event&) const = default;
};

enum class verdict { open, closed, failed };

struct outcome {
    verdict result = verdict::open;
    uint16_t code = 0; // failed: the close code to send; 0 when wslay left it unspecified
    std::vector<event> events;
    std::string reason; // ours only: why it failed
};

std::string describe(const outcome& o) {
    std::string s = o.result == verdict::open ? "open" : o.result == verdict::closed ? "closed" : "failed";
    s += " code " + std::to_string(o.code) + " events";
    for (const auto& e : o.events) {
        s += " " + std::to_string(e.opcode) + ":" + std::to_string(e.payload.size());
    }
    return s + " " + o.reason;
}

// Read sizes: a fixed size, or random sizes up to a bound, drawn from a seeded generator.
struct read_pattern {
    std::size_t max_read;
    bool random_sizes;
    std::mt19937_64 rng;
    std::size_t next(std::size_t left) {
        const std::size_t n = random_sizes ? 1 + rng() % max_read : max_read;
        return std::min(n, left);
    }
};

// --- our parser --------------------------------------------------------------------------

struct our_sink final : frame_sink {
    std::vector<event> events;
    static std::string text(std::span<const std::byte> p) {
        return {reinterpret_cast<const char*>(p.data()), p.size()};
    }
    void on_message(opcode type, std::span<const std::byte> p) noexcept override {
        events.push_back({static_cast<int>(type), text(p)});
    }
    void on_ping(std::span<const std::byte> p) noexcept override { events.push_back({0x9, text(p)}); }
    void on_pong(std::span<const std::byte> p) noexcept override { events.push_back({0xa, text(p)}); }
    void on_close(uint16_t code, std::string_view reason) noexcept override {
        events.push_back({0x8, std::string(reason), code});
    }
};

outcome run_ours(bytes stream, std::size_t limit, read_pattern reads) {
    frame_parser parser(role::server, {.max_message_bytes = limit});
    our_sink sink;
    parse_result r;
    for (std::size_t pos = 0; pos < stream.size() && r.status == parse_status::ok;) {
        const std::size_t n = reads.next(stream.size() - pos);
        r = parser.feed(std::span(stream).subspan(pos, n), sink);
        pos += n;
    }
    outcome o;
    o.events = std::move(sink.events);
    o.result = r.status == parse_status::ok       ? verdict::open
               : r.status == parse_status::closed ? verdict::closed
                                                  : verdict::failed;
    o.code = o.result == verdict::failed ? static_cast<uint16_t>(r.code) : 0;
    o.reason = std::string(r.reason);
    return o;
}

// --- wslay -------------------------------------------------------------------------------

struct wslay_side {
    const bytes* stream = nullptr;
    std::size_t pos = 0;
    std::size_t end = 0; // readable up to here
    read_pattern* reads = nullptr;
    std::vector<event> events;
};

ssize_t wslay_recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
    auto& side = *static_cast<wslay_side*>(user);
    if (side.pos == side.end) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    const std::size_t n = std::min(len, side.reads->next(side.end - side.pos));
    std::memcpy(buf, side.stream->data() + side.pos, n);
    side.pos += n;
    return static_cast<ssize_t>(n);
}

ssize_t wslay_send(wslay_event_context_ptr, const uint8_t*, size_t len, int, void*) {
    return static_cast<ssize_t>(len); // replies are not compared; see the file comment
}

void wslay_on_msg(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
    auto& side = *static_cast<wslay_side*>(user);
    std::string payload(reinterpret_cast<const char*>(arg->msg), arg->msg ? arg->msg_length : 0);
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        const uint16_t code = arg->status_code == 0 ? 1005 : arg->status_code;
        side.events.push_back({0x8, payload.size() >= 2 ? payload.substr(2) : "", code});
    } else {
        side.events.push_back({arg->opcode, std::move(payload)});
    }
}

// wslay_event_recv() returns as soon as one read leaves a header or payload incomplete, so
// it is called until every available byte has been read, then once more to drain what it
// has buffered.
// Returns false when its frame layer failed the connection (file comment).
bool wslay_read_all(wslay_event_context_ptr ctx, const wslay_side& side) {
    const auto read = [&] {
        const int r = wslay_event_recv(ctx);
        if (r != 0 && r != WSLAY_ERR_CALLBACK_FAILURE) { // our callbacks never fail
            FAIL("wslay_event_recv returned " << r);
        }
        return r == 0;
    };
    bool ok = true;
    do {
        ok = read();
    } while (ok && wslay_event_get_read_enabled(ctx) && side.pos < side.end);
    if (ok && wslay_event_get_read_enabled(ctx)) {
        ok = read();
    }
    return ok;
}

outcome run_wslay(const bytes& stream, std::size_t limit, read_pattern reads, bool pad,
                  int& padded) {
    wslay_side side{&stream, 0, stream.size(), &reads, {}};
    wslay_event_callbacks callbacks{wslay_recv, wslay_send, nullptr, nullptr,
                                    nullptr,    nullptr,    wslay_on_msg};
    wslay_event_context_ptr ctx = nullptr;
    if (wslay_event_context_server_init(&ctx, &callbacks, &side) != 0) {
        FAIL("wslay_event_context_server_init failed");
    }
    wslay_event_config_set_max_recv_msg_length(ctx, limit);
    bool frame_layer_ok = wslay_read_all(ctx, side);
    // Fail-fast timing (file comment): when we failed and wslay still waits, give it padding,
    // one byte at a time, so a pending header check runs.
    bytes padded_stream = stream;
    padded_stream.resize(stream.size() + max_frame_header_bytes, std::byte{0});
    side.stream = &padded_stream;
    for (std::size_t extra = 1;
         pad && extra <= max_frame_header_bytes && wslay_event_get_read_enabled(ctx); ++extra) {
        side.end = stream.size() + extra;
        frame_layer_ok = wslay_read_all(ctx, side);
        if (!wslay_event_get_read_enabled(ctx)) {
            ++padded;
        }
    }
    outcome o;
    o.events = std::move(side.events);
    if (wslay_event_get_close_received(ctx)) {
        o.result = verdict::closed;
    } else if (!wslay_event_get_read_enabled(ctx)) {
        o.result = verdict::failed;
        if (wslay_event_send(ctx) != 0) {
            FAIL("wslay_event_send failed");
        }
        o.code = frame_layer_ok ? wslay_event_get_status_code_sent(ctx) : 0;
    }
    wslay_event_context_free(ctx);
    return o;
}

// --- generation --------------------------------------------------------------------------

constexpr std::array<std::byte, 4> zero_key{};

struct generator {
    std::mt19937_64 rng;

    std::size_t below(std::size_t n) { return static_cast<std::size_t>(rng() % n); }
    bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }

    std::array<std::byte, 4> key() {
        std::array<std::byte, 4> k;
        for (auto& b : k) {
            b = static_cast<std::byte>(rng());
        }
        return chance(5) ? zero_key : k;
    }

    std::size_t message_size() {
        static constexpr std::size_t edges[] = {0, 1, 124, 125, 126, 127, 65535, 65536, 70000};
        switch (below(10)) {
        case 0: return edges[below(std::size(edges))];
        case 1: return below(200000);
        case 2: case 3: return below(2000);
        default: return below(130);
        }
    }

    // Valid UTF-8 of about `n` bytes: ASCII with 2-, 3- and 4-byte characters mixed in.
    std::string utf8_text(std::size_t n) {
        static const char* const chars[] = {"é", "ж", "€", "✓", "中", "😀", "𝄞", "\x7f"};
        std::string s;
        while (s.size() < n) {
            if (chance(80)) {
                s += static_cast<char>(' ' + below(95));
            } else {
                s += chars[below(std::size(chars))];
            }
        }
        return s;
    }

    std::string binary(std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) {
            c = static_cast<char>(rng());
        }
        return s;
    }

    bytes frame(opcode op, std::string_view payload, fin final_frame) {
        const auto* p = reinterpret_cast<const std::byte*>(payload.data());
        return encode_client_frame(op, {p, payload.size()}, key(), final_frame);
    }

    bytes control() {
        const opcode op = chance(50) ? opcode::ping : opcode::pong;
        return frame(op, binary(chance(20) ? 125 : below(20)), fin::yes);
    }

    // One data message, fragmented or not, with control frames between its fragments.
    bytes message() {
        const bool text = chance(50);
        const std::string payload = text ? utf8_text(message_size()) : binary(message_size());
        std::vector<std::size_t> cuts{0, payload.size()};
        if (chance(40)) {
            for (std::size_t i = below(5); i > 0; --i) {
                cuts.push_back(payload.empty() ? 0 : below(payload.size() + 1));
            }
        }
        std::sort(cuts.begin(), cuts.end());
        bytes out;
        for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
            const opcode op = i > 0 ? opcode::continuation : text ? opcode::text : opcode::binary;
            const fin last = i + 2 == cuts.size() ? fin::yes : fin::no;
            const auto f = frame(op, std::string_view(payload).substr(cuts[i], cuts[i + 1] - cuts[i]), last);
            out.insert(out.end(), f.begin(), f.end());
            if (last == fin::no && chance(30)) {
                const auto c = control();
                out.insert(out.end(), c.begin(), c.end());
            }
        }
        return out;
    }

    bytes close(uint16_t code) {
        std::string body{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
        body += std::string(below(30), 'r'); // ASCII reason: excluded class 3
        return frame(opcode::close, body, fin::yes);
    }

    bytes valid_stream() {
        bytes out;
        for (std::size_t i = 1 + below(6); i > 0; --i) {
            const bytes part = chance(20) ? control() : message();
            out.insert(out.end(), part.begin(), part.end());
        }
        if (chance(30)) {
            static constexpr uint16_t codes[] = {1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999};
            const bytes c = chance(20) ? frame(opcode::close, "", fin::yes) : close(codes[below(8)]);
            out.insert(out.end(), c.begin(), c.end());
        }
        return out;
    }
};

bytes concat(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A stream with one targeted violation appended after a valid prefix.
bytes violation_stream(generator& g, int kind) {
    bytes prefix = g.chance(50) ? bytes{} : g.message();
    auto with = [&](bytes f, auto&& edit) {
        edit(f);
        return concat(prefix, f);
    };
    switch (kind) {
    case 0: return with(g.message(), [&](bytes& f) { f[0] |= std::byte{0x10} << g.below(3); });
    case 1: return with(g.frame(opcode::text, "x", fin::yes), [&](bytes& f) {
        static constexpr int reserved[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
        f[0] = std::byte{0x80} | static_cast<std::byte>(reserved[g.below(10)]);
    });
    case 2: { // a client frame without a mask
        const std::string_view payload = "unmasked";
        const auto* p = reinterpret_cast<const std::byte*>(payload.data());
        return concat(prefix, encode_frame(opcode::binary, {p, payload.size()}));
    }
    case 3: return concat(prefix, g.frame(opcode::ping, std::string(126 + g.below(200), 'p'), fin::yes));
    case 4: return concat(prefix, g.frame(opcode::ping, "frag", fin::no));
    case 5: return concat(prefix, g.frame(opcode::continuation, "orphan", fin::yes));
    case 6: return concat(concat(prefix, g.frame(opcode::text, "start", fin::no)),
                          g.frame(opcode::binary, "inside", fin::yes));
    case 7: { // 64-bit length with the top bit set
        bytes f{std::byte{0x82}, std::byte{0xff}, std::byte{0x80}};
        f.resize(14, std::byte{1});
        return concat(prefix, concat(f, bytes(8, std::byte{'x'})));
    }
    case 8: { // non-minimal 16-bit or 64-bit length
        bytes f = g.chance(50) ? bytes{std::byte{0x82}, std::byte{0xfe}, std::byte{0}, std::byte{5}}
                               : bytes{std::byte{0x82}, std::byte{0xff}, std::byte{0}, std::byte{0},
                                       std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                                       std::byte{0}, std::byte{5}};
        f.resize(f.size() + 4 + 5, std::byte{'y'});
        return concat(prefix, f);
    }
    case 9: { // invalid UTF-8 somewhere in a (possibly fragmented) text message
        static const char* const bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                          "\xf4\x90\x80\x80", "\x80", "\xff", "\xf5\x80"};
        std::string text = g.utf8_text(g.below(300));
        text.insert(g.below(text.size() + 1), bad[g.below(7)]);
        const std::size_t cut = g.below(text.size() + 1);
        return concat(concat(prefix, g.frame(opcode::text, text.substr(0, cut), fin::no)),
                      g.frame(opcode::continuation, text.substr(cut), fin::yes));
    }
    case 10: { // text that ends inside a character
        std::string text = g.utf8_text(g.below(50)) + "\xe2\x82";
        return concat(prefix, g.frame(opcode::text, text, fin::yes));
    }
    default: { // close codes both sides refuse
        static constexpr uint16_t refused[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000};
        return concat(prefix, g.close(refused[g.below(9)]));
    }
    }
}

// --- exclusions, decided from the input ---------------------------------------------------
//
// Whether a case lands in an excluded class (file comment) is decided from the bytes the
// test generated, never from either parser's verdict, so a regression in our parser cannot
// hide by moving cases out of the comparison. The walk below reads the stream as a client
// frame sequence and looks at the first complete close frame in it (both parsers consume
// nothing after a close). It stops at a header every RFC 6455 server must refuse (reserved
// bits, reserved opcode, missing mask, an oversized or fragmented control frame, a
// non-minimal or 64-bit-top-bit length) and at a frame the stream ends inside of: neither
// parser gets past such a frame. Anything else before the close (invalid UTF-8, a message
// over the limit, bad fragmentation) is not looked at, so the predicate is conservative: it
// may exclude a case whose close frame neither parser reaches, never the reverse.

struct close_scan {
    bool found = false;
    std::size_t payload_size = 0;
    uint16_t code = 0;              // when payload_size >= 2
    bool non_ascii_reason = false; // a reason byte >= 0x80
};

close_scan first_close_frame(const bytes& stream) {
    const auto at = [&](std::size_t i) { return std::to_integer<uint8_t>(stream[i]); };
    std::size_t pos = 0;
    while (stream.size() - pos >= 2) {
        const uint8_t b0 = at(pos);
        const uint8_t b1 = at(pos + 1);
        const uint8_t op = b0 & 0x0f;
        const bool control = op >= 0x8;
        const bool known_op = op <= 0x2 || (op >= 0x8 && op <= 0xa);
        if ((b0 & 0x70) != 0 || !known_op || (b1 & 0x80) == 0 ||
            (control && ((b0 & 0x80) == 0 || (b1 & 0x7f) > 125))) {
            return {};
        }
        std::size_t header = 2;
        uint64_t len = b1 & 0x7f;
        if (len == 126) {
            if (stream.size() - pos < 4) {
                return {};
            }
            len = (uint64_t{at(pos + 2)} << 8) | at(pos + 3);
            header = 4;
            if (len < 126) {
                return {};
            }
        } else if (len == 127) {
            if (stream.size() - pos < 10) {
                return {};
            }
            len = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                len = (len << 8) | at(pos + 2 + i);
            }
            header = 10;
            if ((len >> 63) != 0 || len < 65536) {
                return {};
            }
        }
        header += 4; // the masking key
        if (stream.size() - pos < header || stream.size() - pos - header < len) {
            return {}; // the stream ends inside this frame
        }
        if (op == 0x8) {
            close_scan c{true, static_cast<std::size_t>(len)};
            for (std::size_t i = 0; i < len; ++i) {
                const uint8_t b = at(pos + header + i) ^ at(pos + header - 4 + i % 4);
                if (i < 2) {
                    c.code = static_cast<uint16_t>((c.code << 8) | b);
                } else if (b >= 0x80) {
                    c.non_ascii_reason = true;
                }
            }
            return c;
        }
        pos += header + static_cast<std::size_t>(len);
    }
    return {};
}

// Which excluded class (file comment) the input falls in; 0 if none.
int excluded_class(const bytes& stream) {
    const close_scan c = first_close_frame(stream);
    if (!c.found) {
        return 0;
    }
    if (c.payload_size == 1) {
        return 1;
    }
    if (c.payload_size >= 2 && c.code >= 1012 && c.code <= 1014) {
        return 2;
    }
    return c.non_ascii_reason ? 3 : 0;
}

struct tally {
    int compared = 0;
    int excluded = 0;
    int padded = 0;
    int failed_verdicts = 0; // among the compared cases
};

// The events before a trailing close event.
std::vector<event> before_close(std::vector<event> events) {
    if (!events.empty() && events.back().opcode == 0x8) {
        events.pop_back();
    }
    return events;
}

void compare(const bytes& stream, uint64_t seed, std::size_t limit, tally& t) {
    std::mt19937_64 rng(seed * 7919 + 1);
    const std::size_t sizes[] = {1, 2, 7, 64, 1500, 4096};
    read_pattern ours_reads{sizes[rng() % 6], rng() % 2 == 0, std::mt19937_64(rng())};
    read_pattern wslay_reads{sizes[rng() % 6], rng() % 2 == 0, std::mt19937_64(rng())};
    const int excluded = excluded_class(stream);
    const outcome ours = run_ours(stream, limit, ours_reads);
    const outcome theirs =
        run_wslay(stream, limit, wslay_reads, ours.result == verdict::failed, t.padded);
    const bool unspecified = theirs.result == verdict::failed && theirs.code == 0;
    if (excluded != 0) {
        // Only the close frame's handling may differ: every event before it must agree.
        ++t.excluded;
        if (before_close(ours.events) == before_close(theirs.events)) {
            return;
        }
    } else {
        ++t.compared;
        t.failed_verdicts += ours.result == verdict::failed ? 1 : 0;
        if (ours.result == theirs.result && ours.code == (unspecified ? 1002 : theirs.code) &&
            ours.events == theirs.events) {
            return; // agreement: no assertion, so the TAP count stays one line per test case
        }
    }
    INFO("seed " << seed << ", " << stream.size() << " bytes, limit " << limit);
    INFO("ours:  " << describe(ours));
    INFO("wslay: " << describe(theirs));
    if (excluded != 0) {
        INFO("input in excluded class " << excluded << ": only the events before the close count");
        CHECK(before_close(ours.events) == before_close(theirs.events));
        return;
    }
    CHECK(ours.result == theirs.result);
    CHECK(ours.code == (unspecified ? 1002 : theirs.code));
    CHECK(ours.events == theirs.events);
}

} // namespace

// Every case bounds what it compared from below and what it excluded from above, so a case
// cannot pass by comparing nothing. The counts are shown when a check fails.
#define TALLY_INFO(t)                                                                      \
    INFO((t).compared << " compared, " << (t).failed_verdicts << " failed, " << (t).excluded \
                      << " excluded, " << (t).padded << " padded")

TEST_CASE("our parser and wslay agree on valid message streams", "[ws][differential]") {
    tally t;
    for (uint64_t seed = 1; seed <= 1500; ++seed) {
        generator g{std::mt19937_64(seed)};
        compare(g.valid_stream(), seed, 1u << 20, t);
    }
    TALLY_INFO(t);
    // The generator writes no excluded class: its close frames have an empty body or a
    // code outside 1012-1014 with an ASCII reason. So every case is compared.
    CHECK(t.excluded == 0);
    CHECK(t.compared == 1500);
    // Every message is under 200 000 bytes, far below the 1 MiB limit: nothing may fail.
    CHECK(t.failed_verdicts == 0);
}

TEST_CASE("our parser and wslay agree on protocol violations", "[ws][differential]") {
    tally t;
    for (uint64_t seed = 1; seed <= 1200; ++seed) {
        generator g{std::mt19937_64(seed ^ 0xabcdef)};
        compare(violation_stream(g, static_cast<int>(seed % 12)), seed, 1u << 20, t);
    }
    TALLY_INFO(t);
    // No violation kind writes an excluded class (the refused close codes of kind 11 come
    // with ASCII reasons), so all 100 cases of each of the 12 kinds are compared...
    CHECK(t.excluded == 0);
    CHECK(t.compared == 1200);
    // ...and every one of them is a failure on both sides.
    CHECK(t.failed_verdicts == 1200);
}

TEST_CASE("our parser and wslay agree on randomly corrupted streams", "[ws][differential]") {
    tally t;
    for (uint64_t seed = 1; seed <= 1500; ++seed) {
        generator g{std::mt19937_64(seed ^ 0x5eed)};
        bytes stream = g.valid_stream();
        for (std::size_t flips = 1 + g.below(3); flips > 0 && !stream.empty(); --flips) {
            stream[g.below(stream.size())] ^= static_cast<std::byte>(1u << g.below(8));
        }
        compare(stream, seed, 1u << 20, t);
    }
    // The only case whose input can land in an excluded class: a flip can turn a close
    // code into 1012-1014, a reason byte into a non-ASCII one, or another frame into a
    // close frame. With these seeds: 1490 compared (325 of them failures), 10 excluded,
    // and 1 case where wslay needed padding to reach its verdict. The bounds keep the test
    // meaningful if the generator changes.
    TALLY_INFO(t);
    CHECK(t.failed_verdicts > 200);
    CHECK(t.excluded < 30);
    CHECK(t.compared > 1400);
}

TEST_CASE("our parser and wslay agree on truncated streams and size limits",
          "[ws][differential][limits]") {
    tally truncated;
    tally limited;
    for (uint64_t seed = 1; seed <= 600; ++seed) {
        generator g{std::mt19937_64(seed ^ 0x7a11)};
        bytes stream = g.valid_stream();
        stream.resize(g.below(stream.size() + 1));
        compare(stream, seed, 1u << 20, truncated);
        // Limits: at least 125 so a control frame never trips wslay's limit (it applies the
        // message limit to control frames too; we do not).
        compare(g.valid_stream(), seed, 125 + g.below(3000), limited);
    }
    {
        TALLY_INFO(truncated);
        // A prefix of a valid stream (the generator writes no excluded class) is compared
        // and never fails: a frame cut short is simply still waiting for its bytes.
        CHECK(truncated.excluded == 0);
        CHECK(truncated.compared == 600);
        CHECK(truncated.failed_verdicts == 0);
    }
    {
        TALLY_INFO(limited);
        CHECK(limited.excluded == 0);
        CHECK(limited.compared == 600);
        // With these seeds 237 messages go over their limit (1009 on both sides).
        CHECK(limited.failed_verdicts > 150);
    }
}
