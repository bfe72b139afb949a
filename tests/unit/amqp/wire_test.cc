// AMQP 0-9-1 on the wire (include/ringcast/amqp.h): the frame splitter at every byte
// boundary and on malformed streams, the field-table check, and the codec around
// librabbitmq's decoders.
#include <ringcast/amqp.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace ringcast::amqp;

namespace {

std::span<const std::byte> bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string frame_of(uint8_t type, uint16_t channel, const std::string& payload,
                     char end = char(frame_end)) {
    std::string out;
    out += char(type);
    out += char(channel >> 8);
    out += char(channel & 0xff);
    const auto n = uint32_t(payload.size());
    out += char(n >> 24);
    out += char((n >> 16) & 0xff);
    out += char((n >> 8) & 0xff);
    out += char(n & 0xff);
    out += payload;
    out += end;
    return out;
}

std::string be(uint64_t v, int n) {
    std::string out;
    for (int i = n - 1; i >= 0; --i) {
        out += char((v >> (8 * i)) & 0xff);
    }
    return out;
}

/// connection.start as a broker sends it (encoded by librabbitmq, on channel 0).
std::string start_frame() {
    amqp_table_entry_t entry[1];
    entry[0].key = bytes_of("product");
    entry[0].value.kind = AMQP_FIELD_KIND_UTF8;
    entry[0].value.value.bytes = bytes_of("RabbitMQ");
    amqp_connection_start_t m{};
    m.version_major = 0;
    m.version_minor = 9;
    m.server_properties = amqp_table_t{1, entry};
    m.mechanisms = bytes_of("AMQPLAIN PLAIN");
    m.locales = bytes_of("en_US");
    std::string out;
    REQUIRE(append_method(out, 0, AMQP_CONNECTION_START_METHOD, &m));
    return out;
}

std::string deliver_frame(uint64_t tag) {
    amqp_basic_deliver_t m{};
    m.consumer_tag = bytes_of("ringcast-bridge");
    m.delivery_tag = tag;
    m.exchange = bytes_of("quota");
    m.routing_key = bytes_of("quota.exceeded");
    std::string out;
    REQUIRE(append_method(out, 1, AMQP_BASIC_DELIVER_METHOD, &m));
    return out;
}

/// A content header payload: class basic, weight 0, body size, then `properties` encoded.
std::string header_payload(uint64_t body_size, amqp_basic_properties_t& properties) {
    std::vector<char> buf(4096);
    const int n = amqp_encode_properties(AMQP_BASIC_CLASS, &properties,
                                         amqp_bytes_t{buf.size(), buf.data()});
    REQUIRE(n >= 0);
    return be(AMQP_BASIC_CLASS, 2) + be(0, 2) + be(body_size, 8) + std::string(buf.data(), size_t(n));
}

struct seen {
    int type;
    int channel;
    std::string payload;
    bool operator==(const seen&) const = default;
};

/// Feeds `wire` in two parts cut at `cut` and gives every frame out (payload copied), and
/// the error if one came.
std::vector<seen> split(const std::string& wire, std::size_t cut, std::string& error,
                        uint32_t max = frame_max_bytes) {
    frame_splitter s(max);
    std::vector<seen> out;
    for (const std::string& part : {wire.substr(0, cut), wire.substr(cut)}) {
        s.feed(bytes(part));
        frame f;
        std::string_view why;
        while (true) {
            const split_status st = s.next(f, why);
            if (st == split_status::need_more) {
                break;
            }
            if (st == split_status::error) {
                error = why;
                return out;
            }
            out.push_back({int(f.type), f.channel,
                           std::string(reinterpret_cast<const char*>(f.payload.data()),
                                       f.payload.size())});
        }
    }
    return out;
}

/// A field table nested `depth` deep: {"a": {"a": … {}}}, as its wire bytes.
std::string nested_table(int depth) {
    std::string inner = be(0, 4); // the innermost, empty
    for (int i = 1; i < depth; ++i) {
        const std::string entry = std::string("\x01" "a" "F", 3) + inner;
        inner = be(entry.size(), 4) + entry;
    }
    return inner;
}

} // namespace

TEST_CASE("frame splitter gives the same frames for a stream cut at every byte",
          "[amqp][frames]") {
    amqp_basic_properties_t p{};
    p._flags = AMQP_BASIC_MESSAGE_ID_FLAG;
    p.message_id = bytes_of("m-1");
    const std::string wire = start_frame() + frame_of(8, 0, "") + deliver_frame(7) +
                             frame_of(2, 1, header_payload(5, p)) + frame_of(3, 1, "he") +
                             frame_of(3, 1, "llo");
    std::string error;
    const std::vector<seen> whole = split(wire, wire.size(), error);
    REQUIRE(error.empty());
    REQUIRE(whole.size() == 6);
    CHECK(whole[0].type == 1);
    CHECK(whole[1] == seen{8, 0, ""});
    CHECK(whole[3].type == 2);
    CHECK(whole[5] == seen{3, 1, "llo"});
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        INFO("cut at " << cut);
        std::string e;
        CHECK(split(wire, cut, e) == whole);
        CHECK(e.empty());
    }
}

TEST_CASE("frame splitter refuses a stream that is not AMQP, and stays refused", "[amqp][frames]") {
    std::string error;
    CHECK(split(frame_of(4, 0, "x"), 3, error).empty());
    CHECK(error == "a frame of an unknown type");
    error.clear();
    CHECK(split(frame_of(1, 0, "abcd", 'x'), 2, error).empty());
    CHECK(error == "a frame without its frame-end octet");
    error.clear();
    CHECK(split(frame_of(8, 1, ""), 0, error).empty());
    CHECK_FALSE(error.empty());
    // HTTP bytes from something that is not a broker.
    error.clear();
    CHECK(split("HTTP/1.1 400 Bad Request\r\n\r\n", 5, error).empty());
    CHECK_FALSE(error.empty());

    // Past frame-max: refused from the header alone, before any payload is buffered.
    frame_splitter s(frame_min_bytes);
    const std::string big = frame_of(3, 1, std::string(frame_min_bytes, 'x'));
    s.feed(bytes(big.substr(0, frame_header_bytes)));
    frame f;
    std::string_view why;
    CHECK(s.next(f, why) == split_status::error);
    CHECK(s.buffered() == frame_header_bytes);
    s.feed(bytes(frame_of(8, 0, "")));
    CHECK(s.next(f, why) == split_status::error); // sticky
    s.reset();
    s.feed(bytes(frame_of(8, 0, "")));
    CHECK(s.next(f, why) == split_status::frame);
    // A frame of exactly frame-max is fine once Tune agreed it.
    s.set_max_frame_bytes(8192);
    const std::string exact = frame_of(3, 1, std::string(8192 - frame_overhead_bytes, 'y'));
    s.feed(bytes(exact));
    CHECK(s.next(f, why) == split_status::frame);
    CHECK(f.payload.size() == 8192 - frame_overhead_bytes);
}

TEST_CASE("field tables nested past the bound are refused without recursion", "[amqp][tables]") {
    const std::string ok = nested_table(max_table_depth);
    CHECK(table_within(bytes(ok), 0, max_table_depth));
    const std::string deep = nested_table(max_table_depth + 1);
    CHECK_FALSE(table_within(bytes(deep), 0, max_table_depth));
    const std::string very_deep = nested_table(30000);
    CHECK_FALSE(table_within(bytes(very_deep), 0, max_table_depth));
    // Truncated, a size past the buffer, an unknown kind, a name with no value.
    CHECK_FALSE(table_within(bytes(ok.substr(0, ok.size() - 1)), 0, max_table_depth));
    CHECK_FALSE(table_within(bytes(be(100, 4)), 0, max_table_depth));
    const std::string unknown = be(3, 4) + std::string("\x01" "aZ", 3);
    CHECK_FALSE(table_within(bytes(unknown), 0, max_table_depth));
    const std::string no_value = be(2, 4) + std::string("\x01" "a", 2);
    CHECK_FALSE(table_within(bytes(no_value), 0, max_table_depth));
    // Every kind librabbitmq reads, in an array inside a table.
    std::string values = std::string("t\x01", 2) + "b\x01" "B\x01" + "s" + be(1, 2) + "u" + be(1, 2) +
                         "I" + be(1, 4) + "i" + be(1, 4) + "f" + be(1, 4) + "D" + be(1, 5) +
                         "l" + be(1, 8) + "L" + be(1, 8) + "d" + be(1, 8) + "T" + be(1, 8) +
                         "S" + be(2, 4) + "hi" + "x" + be(0, 4) + "V";
    const std::string array = "A" + be(values.size(), 4) + values;
    const std::string table = be(2 + array.size(), 4) + "\x01" "k" + array;
    CHECK(table_within(bytes(table), 0, max_table_depth));
}

TEST_CASE("codec decodes what a broker sends a consumer and nothing else", "[amqp][codec]") {
    codec c;
    std::string error;
    const std::string start = start_frame();
    std::vector<seen> frames = split(start, 0, error);
    REQUIRE(frames.size() == 1);
    uint32_t id = 0;
    void* decoded = nullptr;
    std::string_view why;
    REQUIRE(c.decode_method(bytes(frames[0].payload), id, decoded, why));
    CHECK(id == AMQP_CONNECTION_START_METHOD);
    const auto* s = static_cast<const amqp_connection_start_t*>(decoded);
    CHECK(s->version_minor == 9);
    CHECK(view(s->mechanisms) == "AMQPLAIN PLAIN");
    c.recycle();

    frames = split(deliver_frame(42), 0, error);
    REQUIRE(c.decode_method(bytes(frames[0].payload), id, decoded, why));
    const auto* d = static_cast<const amqp_basic_deliver_t*>(decoded);
    CHECK(d->delivery_tag == 42);
    CHECK(view(d->routing_key) == "quota.exceeded");
    c.recycle();

    // A method with a table a broker never sends: not even decoded.
    amqp_queue_declare_t q{};
    q.queue = bytes_of("x");
    q.arguments = amqp_empty_table;
    std::string declare;
    REQUIRE(append_method(declare, 1, AMQP_QUEUE_DECLARE_METHOD, &q));
    frames = split(declare, 0, error);
    CHECK_FALSE(c.decode_method(bytes(frames[0].payload), id, decoded, why));
    CHECK_FALSE(c.decode_method(bytes(std::string("\x00\x0a", 2)), id, decoded, why));
    // Arguments cut short.
    const std::string cut = frames.empty() ? "" : split(deliver_frame(1), 0, error)[0].payload;
    CHECK_FALSE(c.decode_method(bytes(cut.substr(0, cut.size() - 3)), id, decoded, why));
    // connection.start whose server properties nest too deep.
    const std::string deep_start = be(AMQP_CONNECTION_START_METHOD, 4) + std::string("\x00\x09", 2) +
                                   nested_table(40) + be(5, 4) + "PLAIN" + be(5, 4) + "en_US";
    CHECK_FALSE(c.decode_method(bytes(deep_start), id, decoded, why));
    CHECK_FALSE(why.empty());
}

TEST_CASE("codec decodes a content header's properties, refusing deep headers", "[amqp][codec]") {
    codec c;
    amqp_table_entry_t h[1];
    h[0].key = bytes_of("tenant");
    h[0].value.kind = AMQP_FIELD_KIND_UTF8;
    h[0].value.value.bytes = bytes_of("acme");
    amqp_basic_properties_t p{};
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG |
               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    p.content_type = bytes_of("application/json");
    p.headers = amqp_table_t{1, h};
    p.message_id = bytes_of("order-17");
    p.timestamp = 1765050000;
    const std::string payload = header_payload(12, p);
    uint64_t size = 0;
    const amqp_basic_properties_t* got = nullptr;
    std::string_view why;
    REQUIRE(c.decode_header(bytes(payload), size, got, why));
    CHECK(size == 12);
    CHECK(view(got->message_id) == "order-17");
    CHECK(got->timestamp == 1765050000);
    CHECK(got->headers.num_entries == 1);
    c.recycle_content();

    // The same header with its headers table replaced by one nested 40 deep.
    const std::string deep = be(AMQP_BASIC_CLASS, 2) + be(0, 2) + be(1, 8) +
                             be(AMQP_BASIC_HEADERS_FLAG, 2) + nested_table(40);
    CHECK_FALSE(c.decode_header(bytes(deep), size, got, why));
    // Short, another class, flags running past the end.
    CHECK_FALSE(c.decode_header(bytes(payload.substr(0, 13)), size, got, why));
    CHECK_FALSE(c.decode_header(bytes(be(50, 2) + payload.substr(2)), size, got, why));
    const std::string runaway = be(AMQP_BASIC_CLASS, 2) + be(0, 2) + be(1, 8) + be(1, 2);
    CHECK_FALSE(c.decode_header(bytes(runaway), size, got, why));
}

TEST_CASE("method frames a client sends are well formed", "[amqp][codec]") {
    amqp_basic_ack_t ack{};
    ack.delivery_tag = 9;
    std::string out;
    REQUIRE(append_method(out, 1, AMQP_BASIC_ACK_METHOD, &ack));
    // type 1, channel 1, size 4 + 9 (tag 8, multiple bit 1), ids 60.80, end.
    CHECK(out.size() == frame_overhead_bytes + 13);
    CHECK(out.substr(0, 7) == std::string("\x01\x00\x01\x00\x00\x00\x0d", 7));
    CHECK(out.substr(7, 4) == be(AMQP_BASIC_ACK_METHOD, 4));
    CHECK(uint8_t(out.back()) == frame_end);
    std::string hb;
    append_heartbeat(hb);
    CHECK(hb == std::string("\x08\x00\x00\x00\x00\x00\x00\xce", 8));
    // A name longer than a short string does not encode: nothing appended.
    const std::string long_name(300, 'q');
    amqp_queue_bind_t bind{};
    bind.queue = bytes_of(long_name);
    bind.arguments = amqp_empty_table;
    std::string none;
    CHECK_FALSE(append_method(none, 1, AMQP_QUEUE_BIND_METHOD, &bind));
    CHECK(none.empty());
}
