// ws::deflater and ws::inflater: round trips checked against zlib itself, the bomb limit,
// cut and corrupt input at every byte, context takeover, and the memory they count.
#include <catch2/catch.hpp>

#include "ringcast/ws.h"

#include <zlib.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace ringcast::ws;

namespace {

using bytes = std::vector<std::byte>;

bytes to_bytes(std::string_view text) {
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    return bytes(p, p + text.size());
}

std::string to_string(const bytes& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string json_envelope(std::size_t data_bytes) {
    std::string data;
    for (std::size_t i = 0; data.size() < data_bytes; ++i) {
        data += "{\"sym\":\"ACME" + std::to_string(i % 7) + "\",\"px\":" +
                std::to_string(100 + i % 13) + "." + std::to_string(i % 100) + "},";
    }
    data.resize(data_bytes);
    return "{\"type\":\"message\",\"channel\":\"prices\",\"event\":\"tick\",\"id\":\"m-1-0-2a\","
           "\"offset\":42,\"ts\":1765000000000,\"data\":\"" +
           data + "\"}";
}

/// The independent oracle: zlib's raw inflate, with the tail put back (RFC 7692 §7.2.2).
std::string zlib_inflate(const bytes& payload, int window_bits = 15) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, -window_bits) == Z_OK);
    bytes in = payload;
    for (int b : {0x00, 0x00, 0xff, 0xff}) {
        in.push_back(std::byte(b));
    }
    std::string out(1 << 22, '\0');
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_SYNC_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.resize(out.size() - z.avail_out);
    inflateEnd(&z);
    return out;
}

/// zlib's raw deflate with a sync flush and the tail stripped: what a client sends.
bytes zlib_deflate(std::string_view text, z_stream* keep = nullptr, int window_bits = 15) {
    z_stream local{};
    z_stream* z = keep;
    if (z == nullptr) {
        z = &local;
        REQUIRE(deflateInit2(z, 6, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    }
    bytes out(deflateBound(z, static_cast<uLong>(text.size())) + 64);
    z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z->avail_in = static_cast<uInt>(text.size());
    z->next_out = reinterpret_cast<Bytef*>(out.data());
    z->avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(z, Z_SYNC_FLUSH) == Z_OK);
    out.resize(out.size() - z->avail_out - 4);
    if (keep == nullptr) {
        deflateEnd(z);
    }
    return out;
}

bytes compress_one(deflater& d, std::string_view text) {
    bytes out;
    const bytes in = to_bytes(text);
    const std::span<const std::byte> piece(in);
    REQUIRE(d.compress(std::span(&piece, 1), out));
    return out;
}

} // namespace

TEST_CASE("deflater output inflates with zlib to the input, for many sizes",
          "[ws][deflate]") {
    deflater d;
    for (std::size_t n : {0u, 1u, 10u, 255u, 256u, 1000u, 4096u, 70000u, 1u << 20}) {
        CAPTURE(n);
        const std::string text = json_envelope(n);
        const bytes z = compress_one(d, text);
        CHECK(zlib_inflate(z) == text);
    }
}

TEST_CASE("deflater keeps no context: each message inflates on a fresh stream",
          "[ws][deflate]") {
    deflater d;
    const std::string text = json_envelope(2000);
    const bytes first = compress_one(d, text);
    const bytes second = compress_one(d, text);
    CHECK(first == second); // a context carried over would shrink the second
    CHECK(zlib_inflate(second) == text);
}

TEST_CASE("deflater takes a message in pieces as one stream", "[ws][deflate]") {
    deflater d;
    const std::string text = json_envelope(9000);
    const bytes all = to_bytes(text);
    const std::span<const std::byte> pieces[] = {std::span(all).first(100),
                                                 std::span(all).subspan(100, 8000),
                                                 std::span(all).subspan(8100)};
    bytes out;
    REQUIRE(d.compress(pieces, out));
    CHECK(zlib_inflate(out) == text);
}

TEST_CASE("compress_frame writes a final RSV1 frame with the compressed payload",
          "[ws][deflate]") {
    deflater d;
    const std::string text = json_envelope(600);
    const bytes in = to_bytes(text);
    const std::span<const std::byte> piece(in);
    const auto f = d.compress_frame(opcode::text, std::span(&piece, 1));
    REQUIRE(f);
    const auto* p = f->data();
    CHECK(std::to_integer<int>(p[0]) == (0x80 | 0x40 | 0x1));
    std::size_t len = std::to_integer<std::size_t>(p[1]) & 0x7f;
    std::size_t header = 2;
    if (len == 126) {
        len = std::to_integer<std::size_t>(p[2]) << 8 | std::to_integer<std::size_t>(p[3]);
        header = 4;
    }
    CHECK(f->size() == header + len);
    CHECK(len < text.size() / 2); // a JSON envelope compresses well
    CHECK(zlib_inflate(bytes(p + header, p + header + len)) == text);
}

TEST_CASE("inflater round-trips zlib's client messages, with and without takeover",
          "[ws][deflate]") {
    for (const bool takeover : {false, true}) {
        CAPTURE(takeover);
        inflater inf(15, takeover);
        z_stream client{};
        REQUIRE(deflateInit2(&client, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        bytes out;
        for (int i = 0; i < 5; ++i) {
            const std::string text = json_envelope(300 + std::size_t(i) * 500);
            // With takeover the client keeps its stream, so later messages refer back.
            const bytes z = takeover ? zlib_deflate(text, &client) : zlib_deflate(text);
            REQUIRE(inf.inflate(z, 1 << 20, out) == inflate_status::ok);
            CHECK(to_string(out) == text);
        }
        deflateEnd(&client);
    }
}

TEST_CASE("an inflater without takeover cannot read a message that refers back",
          "[ws][deflate]") {
    inflater inf(15, false);
    z_stream client{};
    REQUIRE(deflateInit2(&client, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    const std::string text = json_envelope(2000);
    bytes out;
    REQUIRE(inf.inflate(zlib_deflate(text, &client), 1 << 20, out) == inflate_status::ok);
    CHECK(inf.inflate(zlib_deflate(text, &client), 1 << 20, out) == inflate_status::invalid);
    deflateEnd(&client);
}

TEST_CASE("a message ending in a final block (BFINAL) inflates, and takeover continues",
          "[ws][deflate]") {
    inflater inf(15, true);
    const std::string text = json_envelope(1000);
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    bytes finished(deflateBound(&z, uLong(text.size())));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z.avail_in = uInt(text.size());
    z.next_out = reinterpret_cast<Bytef*>(finished.data());
    z.avail_out = uInt(finished.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    finished.resize(finished.size() - z.avail_out);
    deflateEnd(&z);
    bytes out;
    REQUIRE(inf.inflate(finished, 1 << 20, out) == inflate_status::ok);
    CHECK(to_string(out) == text);
    // Its window survives for the next message (here one with no back-reference).
    REQUIRE(inf.inflate(zlib_deflate("hello"), 1 << 20, out) == inflate_status::ok);
    CHECK(to_string(out) == "hello");
}

TEST_CASE("after a final block, takeover carries the window: the next message may refer "
          "back into the one before", "[ws][deflate]") {
    // perf/attack/deflate: the carried window is copied through a buffer allocated inside
    // inflate() (noexcept), now out of memory → no_memory instead of std::terminate. Here
    // the copy itself: a second message whose only content is a back-reference into the
    // first inflates only if the window survived the reset.
    for (const int bits : {9, 15}) {
        inflater inf(uint8_t(bits), true);
        const std::string first = json_envelope(bits == 9 ? 300 : 3000);
        const auto finish = [](const std::string& text, const std::string& dictionary,
                               int wbits) {
            z_stream z{};
            REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
            if (!dictionary.empty()) {
                REQUIRE(deflateSetDictionary(
                            &z, reinterpret_cast<const Bytef*>(dictionary.data()),
                            uInt(dictionary.size())) == Z_OK);
            }
            bytes out(deflateBound(&z, uLong(text.size())) + 16);
            z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
            z.avail_in = uInt(text.size());
            z.next_out = reinterpret_cast<Bytef*>(out.data());
            z.avail_out = uInt(out.size());
            REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
            out.resize(out.size() - z.avail_out);
            deflateEnd(&z);
            return out;
        };
        bytes out;
        REQUIRE(inf.inflate(finish(first, "", bits), 1 << 20, out) == inflate_status::ok);
        CHECK(to_string(out) == first);
        // The second message repeats the end of the first: all of it one back-reference.
        const std::string second = first.substr(first.size() - 200);
        const bytes refers = finish(second, first, bits);
        CHECK(refers.size() < 20); // a match, not 200 literals
        REQUIRE(inf.inflate(refers, 1 << 20, out) == inflate_status::ok);
        CHECK(to_string(out) == second);
        // Without takeover the same bytes cannot be read (the window is gone).
        inflater fresh(uint8_t(bits), false);
        CHECK(fresh.inflate(refers, 1 << 20, out) == inflate_status::invalid);
    }
}

TEST_CASE("the empty message is 0x00; an empty payload is no deflate data (perf/attack/deflate)",
          "[ws][deflate]") {
    // RFC 7692 §7.2.1 turns an empty message into the header byte of an empty stored block.
    // An RSV1 frame with nothing in it leaves 00 00 ff ff alone, which ends inside that
    // block's LEN: invalid (1007), with or without takeover, and a takeover inflater is not
    // left half-way through a header for the next message (Node's ws is: it accepts the
    // empty payload and then fails the next message).
    for (const bool takeover : {false, true}) {
        inflater inf(15, takeover);
        bytes out{std::byte{1}};
        REQUIRE(inf.inflate(bytes{std::byte{0x00}}, 1 << 20, out) == inflate_status::ok);
        CHECK(out.empty());
        REQUIRE(inf.inflate(zlib_deflate("after"), 1 << 20, out) == inflate_status::ok);
        CHECK(to_string(out) == "after");
        CHECK(inf.inflate(bytes{}, 1 << 20, out) == inflate_status::invalid);
    }
}

TEST_CASE("a decompression bomb stops at the limit, holding at most limit + 1 bytes",
          "[ws][deflate][limits]") {
    const std::string zeros(8u << 20, '0');
    const bytes bomb = zlib_deflate(zeros);
    CHECK(bomb.size() < 16 * 1024); // kilobytes that inflate to megabytes
    inflater inf(15, false);
    bytes out;
    const std::size_t limit = 64 * 1024;
    CHECK(inf.inflate(bomb, limit, out) == inflate_status::too_big);
    CHECK(out.capacity() <= limit + 1 + 4096);
    // Exactly at the limit it is fine; one more byte is not.
    CHECK(inf.inflate(zlib_deflate(std::string(limit, 'a')), limit, out) == inflate_status::ok);
    CHECK(out.size() == limit);
    CHECK(inf.inflate(zlib_deflate(std::string(limit + 1, 'a')), limit, out) ==
          inflate_status::too_big);
}

TEST_CASE("a compressed message cut at any byte, or a corrupt one, never passes as whole",
          "[ws][deflate][cut]") {
    const std::string text = json_envelope(3000);
    const bytes z = zlib_deflate(text);
    inflater inf(15, false);
    bytes out;
    for (std::size_t cut = 0; cut < z.size(); ++cut) {
        CAPTURE(cut);
        const inflate_status s =
            inf.inflate(std::span(z).first(cut), 1 << 20, out);
        // A cut on a block boundary is a valid (shorter) message; anything else is invalid.
        if (s == inflate_status::ok) {
            CHECK(text.starts_with(to_string(out)));
            CHECK(out.size() < text.size());
        } else {
            CHECK(s == inflate_status::invalid);
        }
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        bytes bad = z;
        bad[rng() % bad.size()] ^= std::byte(1u << (rng() % 8));
        const inflate_status s = inf.inflate(bad, 1 << 20, out);
        CHECK((s == inflate_status::ok || s == inflate_status::invalid ||
               s == inflate_status::too_big));
    }
    // The inflater is still good for a valid message after all that.
    REQUIRE(inf.inflate(z, 1 << 20, out) == inflate_status::ok);
    CHECK(to_string(out) == text);
}

TEST_CASE("garbage that is not deflate data is invalid", "[ws][deflate]") {
    inflater inf(15, false);
    bytes out;
    const bytes junk = to_bytes("\xff\xff\xff\xff not deflate");
    CHECK(inf.inflate(junk, 1 << 20, out) == inflate_status::invalid);
}

TEST_CASE("an inflater counts its heap, within inflater_cost_bytes, into the shard's total",
          "[ws][deflate][memory]") {
    inflate_memory shard;
    {
        inflater a(15, true, &shard);
        inflater b(10, true, &shard);
        bytes out;
        REQUIRE(a.inflate(zlib_deflate(json_envelope(5000)), 1 << 20, out) ==
                inflate_status::ok);
        REQUIRE(b.inflate(zlib_deflate(json_envelope(500), nullptr, 10), 1 << 20, out) ==
                inflate_status::ok);
        CHECK(a.held_bytes() > 32768);
        CHECK(a.held_bytes() <= inflater_cost_bytes(15));
        CHECK(b.held_bytes() <= inflater_cost_bytes(10));
        CHECK(shard.held_bytes == a.held_bytes() + b.held_bytes());
    }
    CHECK(shard.held_bytes == 0);
}

namespace {

struct compressed_recorder final : frame_sink {
    std::vector<std::pair<bool, bytes>> messages; // (compressed, payload)
    void on_message(opcode, std::span<const std::byte> p) noexcept override {
        messages.emplace_back(false, bytes(p.begin(), p.end()));
    }
    void on_compressed_message(opcode, std::span<const std::byte> p) noexcept override {
        messages.emplace_back(true, bytes(p.begin(), p.end()));
    }
    void on_ping(std::span<const std::byte>) noexcept override {}
    void on_pong(std::span<const std::byte>) noexcept override {}
    void on_close(uint16_t, std::string_view) noexcept override {}
};

constexpr std::array<std::byte, 4> mask_key{std::byte{1}, std::byte{2}, std::byte{3},
                                            std::byte{4}};

bytes client_frame(opcode op, const bytes& payload, bool rsv1, fin final_frame = fin::yes) {
    bytes f = encode_client_frame(op, payload, mask_key, final_frame);
    if (rsv1) {
        f[0] |= std::byte{0x40};
    }
    return f;
}

} // namespace

TEST_CASE("frame_parser: RSV1 marks a compressed message only after accept_compressed",
          "[ws][deflate][parser]") {
    const bytes z = zlib_deflate(json_envelope(500));
    {
        frame_parser p;
        compressed_recorder sink;
        bytes wire = client_frame(opcode::text, z, true);
        const parse_result r = p.feed(wire, sink);
        CHECK(r.status == parse_status::error);
        CHECK(r.code == close_code::protocol_error);
    }
    frame_parser p;
    p.accept_compressed();
    compressed_recorder sink;
    // Deflate data is not UTF-8: a compressed text frame is not checked before inflating.
    bytes wire = client_frame(opcode::text, z, true);
    const bytes plain_text = to_bytes("plain");
    bytes plain = client_frame(opcode::text, plain_text, false);
    wire.insert(wire.end(), plain.begin(), plain.end());
    // Fragmented: RSV1 on the first frame, none on the continuation.
    bytes first = client_frame(opcode::binary, bytes(z.begin(), z.begin() + 7), true, fin::no);
    bytes rest = client_frame(opcode::continuation, bytes(z.begin() + 7, z.end()), false);
    wire.insert(wire.end(), first.begin(), first.end());
    wire.insert(wire.end(), rest.begin(), rest.end());
    // Every split of the stream gives the same messages.
    for (std::size_t cut = 0; cut <= wire.size(); cut += 13) {
        frame_parser q;
        q.accept_compressed();
        compressed_recorder s;
        bytes copy = wire;
        CAPTURE(cut);
        const parse_result first_part = q.feed(std::span(copy).first(cut), s);
        REQUIRE(first_part.status == parse_status::ok);
        const parse_result second_part = q.feed(std::span(copy).subspan(cut), s);
        CAPTURE(second_part.reason);
        REQUIRE(second_part.status == parse_status::ok);
        REQUIRE(s.messages.size() == 3);
        CHECK(s.messages[0] == std::pair(true, z));
        CHECK(s.messages[1] == std::pair(false, plain_text));
        CHECK(s.messages[2] == std::pair(true, z));
    }
    CHECK(p.feed(wire, sink).status == parse_status::ok);
    REQUIRE(sink.messages.size() == 3);
}

TEST_CASE("frame_parser: RSV1 on a continuation or a control frame, RSV2/3 stay 1002",
          "[ws][deflate][parser]") {
    const bytes z = to_bytes("xyz");
    const auto fails = [](bytes wire) {
        frame_parser p;
        p.accept_compressed();
        compressed_recorder sink;
        const parse_result r = p.feed(wire, sink);
        return r.status == parse_status::error && r.code == close_code::protocol_error;
    };
    bytes cont = client_frame(opcode::text, z, false, fin::no);
    bytes bad = client_frame(opcode::continuation, z, true);
    cont.insert(cont.end(), bad.begin(), bad.end());
    CHECK(fails(cont));
    CHECK(fails(client_frame(opcode::ping, z, true)));
    bytes rsv2 = client_frame(opcode::text, z, false);
    rsv2[0] |= std::byte{0x20};
    CHECK(fails(rsv2));
    bytes rsv3 = client_frame(opcode::text, z, false);
    rsv3[0] |= std::byte{0x10};
    CHECK(fails(rsv3));
}
