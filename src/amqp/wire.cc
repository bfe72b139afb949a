// AMQP 0-9-1 on the wire (include/ringcast/amqp.h): frames cut from the byte stream, method
// and content-header payloads handed to librabbitmq's decoder once ringcast's own checks
// passed, and the frames a client sends.
//
//   bytes ─► frame_splitter ─► method  ─► is_server_method? ─► [table_within] ─► amqp_decode_method
//                            ├► header  ─► class basic? ─► [headers table_within] ─► amqp_decode_properties
//                            ├► body    (the link counts it against the header's body size)
//                            └► heartbeat
//
// librabbitmq's decoders check every read against the buffer they are given, but decode a
// field table by recursion with no depth limit (0.11): table_within walks the table first,
// with an explicit stack, so no frame can take the shard's stack.
#include <ringcast/amqp.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace ringcast::amqp {

namespace {

uint16_t be16(const std::byte* p) noexcept {
    return static_cast<uint16_t>((std::to_integer<uint16_t>(p[0]) << 8) |
                                 std::to_integer<uint16_t>(p[1]));
}

uint32_t be32(const std::byte* p) noexcept {
    return (uint32_t{be16(p)} << 16) | be16(p + 2);
}

uint64_t be64(const std::byte* p) noexcept {
    return (uint64_t{be32(p)} << 32) | be32(p + 4);
}

void put_be16(std::string& out, uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xff);
}

void put_be32(std::string& out, uint32_t v) {
    put_be16(out, static_cast<uint16_t>(v >> 16));
    put_be16(out, static_cast<uint16_t>(v & 0xffff));
}

/// librabbitmq's page size for decoded methods: one page holds any method a broker sends a
/// consumer (a Start's server properties are ~1 KiB) without a second allocation.
constexpr std::size_t pool_page_bytes = 4096;

} // namespace

// ---- frame_splitter -------------------------------------------------------------------------

void frame_splitter::set_max_frame_bytes(uint32_t bytes) noexcept {
    _max = std::max(bytes, frame_min_bytes);
}

void frame_splitter::feed(std::span<const std::byte> bytes) {
    if (_start > 0) {
        _buf.erase(_buf.begin(), _buf.begin() + static_cast<std::ptrdiff_t>(_start));
        _start = 0;
    }
    _buf.insert(_buf.end(), bytes.begin(), bytes.end());
}

split_status frame_splitter::next(frame& out, std::string_view& error) noexcept {
    if (!_error.empty()) {
        error = _error;
        return split_status::error;
    }
    const std::size_t avail = _buf.size() - _start;
    if (avail < frame_header_bytes) {
        return split_status::need_more;
    }
    const std::byte* p = _buf.data() + _start;
    const uint8_t type = std::to_integer<uint8_t>(p[0]);
    const uint16_t channel = be16(p + 1);
    const uint32_t size = be32(p + 3);
    switch (type) {
    case uint8_t(frame_type::method):
    case uint8_t(frame_type::header):
    case uint8_t(frame_type::body):
    case uint8_t(frame_type::heartbeat):
        break;
    default:
        _error = "a frame of an unknown type";
        error = _error;
        return split_status::error;
    }
    // §4.2.3: frame-max counts the whole frame, header and end octet included.
    if (uint64_t{size} + frame_overhead_bytes > _max) {
        _error = "a frame larger than the agreed frame-max";
        error = _error;
        return split_status::error;
    }
    if (avail < size + frame_overhead_bytes) {
        return split_status::need_more;
    }
    if (std::to_integer<uint8_t>(p[frame_header_bytes + size]) != frame_end) {
        _error = "a frame without its frame-end octet";
        error = _error;
        return split_status::error;
    }
    // §4.2.7: heartbeats belong to the connection (channel 0).
    if (type == uint8_t(frame_type::heartbeat) && channel != 0) {
        _error = "a heartbeat frame on a channel";
        error = _error;
        return split_status::error;
    }
    out.type = static_cast<frame_type>(type);
    out.channel = channel;
    out.payload = std::span<const std::byte>(p + frame_header_bytes, size);
    _start += size + frame_overhead_bytes;
    return split_status::frame;
}

void frame_splitter::reset() noexcept {
    _buf.clear();
    _start = 0;
    _max = frame_min_bytes;
    _error = {};
}

// ---- tables ---------------------------------------------------------------------------------

bool table_within(std::span<const std::byte> bytes, std::size_t at, int max_depth) noexcept {
    struct level {
        std::size_t end;
        bool table; // else an array: values without names
    };
    if (max_depth < 1 || at > bytes.size() || bytes.size() - at < 4) {
        return false;
    }
    std::array<level, 64> stack{};
    const int limit = std::min<int>(max_depth, static_cast<int>(stack.size()));
    const std::byte* p = bytes.data();
    std::size_t pos = at + 4;
    const std::size_t first_end = pos + be32(p + at);
    if (first_end > bytes.size()) {
        return false;
    }
    int depth = 1;
    stack[0] = {first_end, true};
    while (depth > 0) {
        const level top = stack[std::size_t(depth - 1)];
        if (pos == top.end) {
            --depth;
            continue;
        }
        if (top.table) {
            const std::size_t key = std::to_integer<std::size_t>(p[pos]);
            pos += 1 + key;
            if (pos >= top.end) {
                return false; // a name with no value, or past the table
            }
        }
        const char kind = static_cast<char>(p[pos]);
        ++pos;
        std::size_t n = 0;
        switch (kind) {
        case 't': case 'b': case 'B':
            n = 1;
            break;
        case 's': case 'u':
            n = 2;
            break;
        case 'I': case 'i': case 'f':
            n = 4;
            break;
        case 'D':
            n = 5;
            break;
        case 'l': case 'L': case 'd': case 'T':
            n = 8;
            break;
        case 'V':
            n = 0;
            break;
        case 'S': case 'x':
            if (top.end - pos < 4) {
                return false;
            }
            n = 4 + std::size_t{be32(p + pos)};
            break;
        case 'A': case 'F': {
            if (top.end - pos < 4) {
                return false;
            }
            const std::size_t end = pos + 4 + std::size_t{be32(p + pos)};
            if (end > top.end || depth >= limit) {
                return false;
            }
            stack[std::size_t(depth)] = {end, kind == 'F'};
            ++depth;
            pos += 4;
            continue;
        }
        default:
            return false;
        }
        if (top.end - pos < n) {
            return false;
        }
        pos += n;
    }
    return true;
}

// ---- codec ----------------------------------------------------------------------------------

bool is_server_method(uint32_t id) noexcept {
    switch (id) {
    case AMQP_CONNECTION_START_METHOD:
    case AMQP_CONNECTION_TUNE_METHOD:
    case AMQP_CONNECTION_OPEN_OK_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_OK_METHOD:
    case AMQP_CONNECTION_BLOCKED_METHOD:
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
    case AMQP_CHANNEL_OPEN_OK_METHOD:
    case AMQP_CHANNEL_FLOW_METHOD:
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CHANNEL_CLOSE_OK_METHOD:
    case AMQP_EXCHANGE_DECLARE_OK_METHOD:
    case AMQP_QUEUE_DECLARE_OK_METHOD:
    case AMQP_QUEUE_BIND_OK_METHOD:
    case AMQP_BASIC_QOS_OK_METHOD:
    case AMQP_BASIC_CONSUME_OK_METHOD:
    case AMQP_BASIC_CANCEL_METHOD:
    case AMQP_BASIC_CANCEL_OK_METHOD:
    case AMQP_BASIC_DELIVER_METHOD:
        return true;
    default:
        return false;
    }
}

codec::codec() noexcept {
    init_amqp_pool(&_pool, pool_page_bytes);
    init_amqp_pool(&_content_pool, pool_page_bytes);
}

codec::~codec() {
    empty_amqp_pool(&_pool);
    empty_amqp_pool(&_content_pool);
}

void codec::recycle() noexcept {
    recycle_amqp_pool(&_pool);
}

void codec::recycle_content() noexcept {
    recycle_amqp_pool(&_content_pool);
}

bool codec::decode_method(std::span<const std::byte> payload, uint32_t& id, void*& decoded,
                          std::string_view& error) noexcept {
    if (payload.size() < 4) {
        error = "a method frame shorter than its class and method ids";
        return false;
    }
    id = be32(payload.data());
    if (!is_server_method(id)) {
        error = "a method a broker does not send a consumer";
        return false;
    }
    const std::span<const std::byte> args = payload.subspan(4);
    // connection.start: version-major, version-minor (octets), then server-properties.
    if (id == AMQP_CONNECTION_START_METHOD && !table_within(args, 2, max_table_depth)) {
        error = "connection.start with a malformed or too deeply nested server-properties table";
        return false;
    }
    amqp_bytes_t encoded{args.size(), const_cast<std::byte*>(args.data())};
    decoded = nullptr;
    if (amqp_decode_method(id, &_pool, encoded, &decoded) < 0 || decoded == nullptr) {
        error = "a method whose arguments do not decode";
        return false;
    }
    return true;
}

bool codec::decode_header(std::span<const std::byte> payload, uint64_t& body_size,
                          const amqp_basic_properties_t*& properties,
                          std::string_view& error) noexcept {
    // §4.2.6.1: class-id, weight (0), body-size, then property flags and the properties.
    constexpr std::size_t flags_at = 12;
    if (payload.size() < flags_at + 2) {
        error = "a content header shorter than its fixed fields";
        return false;
    }
    if (be16(payload.data()) != AMQP_BASIC_CLASS) {
        error = "a content header of a class other than basic";
        return false;
    }
    body_size = be64(payload.data() + 4);
    // Find the headers table: the flag words (bit 0 of each says another follows), then
    // content-type and content-encoding (short strings) when their flags are set.
    const std::byte* p = payload.data();
    std::size_t pos = flags_at;
    const uint16_t flags = be16(p + pos);
    uint16_t word = flags;
    pos += 2;
    while ((word & 1) != 0) {
        if (payload.size() - pos < 2) {
            error = "a content header whose property flags run past it";
            return false;
        }
        word = be16(p + pos);
        pos += 2;
    }
    for (const uint16_t string_flag : {uint16_t{AMQP_BASIC_CONTENT_TYPE_FLAG},
                                       uint16_t{AMQP_BASIC_CONTENT_ENCODING_FLAG}}) {
        if ((flags & string_flag) != 0) {
            if (pos >= payload.size()) {
                error = "a content header whose properties run past it";
                return false;
            }
            pos += 1 + std::to_integer<std::size_t>(p[pos]);
        }
    }
    if ((flags & AMQP_BASIC_HEADERS_FLAG) != 0 && !table_within(payload, pos, max_table_depth)) {
        error = "a content header whose headers table is malformed or too deeply nested";
        return false;
    }
    const std::span<const std::byte> rest = payload.subspan(flags_at);
    amqp_bytes_t encoded{rest.size(), const_cast<std::byte*>(rest.data())};
    void* decoded = nullptr;
    if (amqp_decode_properties(AMQP_BASIC_CLASS, &_content_pool, encoded, &decoded) < 0 ||
        decoded == nullptr) {
        error = "a content header whose properties do not decode";
        return false;
    }
    properties = static_cast<const amqp_basic_properties_t*>(decoded);
    return true;
}

bool append_method(std::string& out, uint16_t channel, uint32_t id, void* arguments) {
    // Every method a consumer sends fits the minimum frame: names are short strings.
    std::array<char, frame_min_bytes - frame_overhead_bytes - 4> args{};
    const int n = amqp_encode_method(id, arguments, amqp_bytes_t{args.size(), args.data()});
    if (n < 0) {
        return false;
    }
    out += static_cast<char>(frame_type::method);
    put_be16(out, channel);
    put_be32(out, 4 + static_cast<uint32_t>(n));
    put_be32(out, id);
    out.append(args.data(), static_cast<std::size_t>(n));
    out += static_cast<char>(frame_end);
    return true;
}

void append_heartbeat(std::string& out) {
    out += static_cast<char>(frame_type::heartbeat);
    put_be16(out, 0);
    put_be32(out, 0);
    out += static_cast<char>(frame_end);
}

} // namespace ringcast::amqp
