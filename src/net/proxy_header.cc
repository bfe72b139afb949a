// The PROXY header reader of proxy_header.h: v1 as one CRLF-terminated text line, v2 as a
// fixed 16-byte part followed by an address block and TLVs. Each checks what it has as
// soon as it has it, so garbage is refused at its first wrong byte.
#include "proxy_header.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace ringcast::net {

namespace {

constexpr std::string_view v1_preamble = "PROXY ";
constexpr std::array<uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// v2 fields (the protocol's numbering).
constexpr uint8_t v2_version = 0x2;
constexpr uint8_t v2_command_local = 0x0;
constexpr uint8_t v2_command_proxy = 0x1;
constexpr uint8_t v2_unspec = 0x00;       // family and transport both unspecified
constexpr uint8_t v2_tcp_over_ipv4 = 0x11; // AF_INET, STREAM
constexpr uint8_t v2_tcp_over_ipv6 = 0x21; // AF_INET6, STREAM
constexpr uint8_t v2_unix_stream = 0x31;   // AF_UNIX, STREAM
constexpr std::size_t v2_ipv4_block = 12;  // two addresses of 4, two ports of 2
constexpr std::size_t v2_ipv6_block = 36;  // two addresses of 16, two ports of 2
constexpr std::size_t v2_unix_block = 216; // two paths of 108
constexpr std::size_t tlv_head = 3;        // type, length (2, big endian)

proxy_parse fail(std::string_view reason) noexcept {
    proxy_parse r;
    r.status = proxy_status::error;
    r.reason = reason;
    return r;
}

proxy_parse done(std::size_t consumed, const proxy_header& header) noexcept {
    proxy_parse r;
    r.status = proxy_status::done;
    r.consumed = consumed;
    r.header = header;
    return r;
}

uint8_t byte_at(std::span<const std::byte> bytes, std::size_t i) noexcept {
    return static_cast<uint8_t>(bytes[i]);
}

uint16_t be16_at(std::span<const std::byte> bytes, std::size_t i) noexcept {
    return static_cast<uint16_t>((byte_at(bytes, i) << 8) | byte_at(bytes, i + 1));
}

/// `bytes` (possibly shorter) agree with `expected` on their common length.
template <typename Range>
bool agrees_with(std::span<const std::byte> bytes, const Range& expected) noexcept {
    const std::size_t n = std::min<std::size_t>(bytes.size(), std::size(expected));
    for (std::size_t i = 0; i < n; ++i) {
        if (byte_at(bytes, i) != static_cast<uint8_t>(expected[i])) {
            return false;
        }
    }
    return true;
}

/// An IPv4-mapped IPv6 address as IPv4, as accept reports a dual-stack listener's peer.
peer_address unmapped(peer_address a) noexcept {
    static constexpr std::array<uint8_t, 12> mapped_prefix = {0, 0, 0, 0, 0, 0,
                                                              0, 0, 0, 0, 0xff, 0xff};
    if (a.family == ip_family::v6 &&
        std::equal(mapped_prefix.begin(), mapped_prefix.end(), a.bytes.begin())) {
        a.family = ip_family::v4;
        std::copy_n(a.bytes.begin() + 12, 4, a.bytes.begin());
        std::fill(a.bytes.begin() + 4, a.bytes.end(), uint8_t{0});
    }
    return a;
}

// --- v1 ----------------------------------------------------------------------------------

/// A v1 port: decimal 0-65535, no sign, no leading zero (the protocol forbids them).
bool parse_port(std::string_view text, uint16_t& port) noexcept {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) {
        return false;
    }
    uint32_t value = 0;
    for (const char ch : text) {
        if (ch < '0' || ch > '9') {
            return false;
        }
        value = value * 10 + uint32_t(ch - '0');
    }
    if (value > 65535) {
        return false;
    }
    port = static_cast<uint16_t>(value);
    return true;
}

bool printable(char ch) noexcept {
    return ch >= 0x20 && ch <= 0x7e;
}

/// The fields of a complete v1 line after "PROXY " (the CRLF removed).
proxy_parse parse_v1_line(std::string_view rest, std::size_t consumed) noexcept {
    proxy_header header;
    header.version = 1;
    const auto space = rest.find(' ');
    const std::string_view protocol = rest.substr(0, space);
    if (protocol == "UNKNOWN") {
        // The sender names no addresses; whatever follows is to be ignored, but it is still
        // a line of text.
        header.client = proxy_client::own;
        return done(consumed, header);
    }
    ip_family family = ip_family::unknown;
    if (protocol == "TCP4") {
        family = ip_family::v4;
    } else if (protocol == "TCP6") {
        family = ip_family::v6;
    } else {
        return fail("PROXY v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    }
    if (space == std::string_view::npos) {
        return fail("PROXY v1: the addresses and ports are missing");
    }
    // Exactly four fields, one space between each, none after the last.
    std::array<std::string_view, 4> fields;
    std::string_view left = rest.substr(space + 1);
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto next = left.find(' ');
        if ((i + 1 < fields.size()) == (next == std::string_view::npos)) {
            return fail("PROXY v1: not exactly four fields after the protocol (source, "
                        "destination, source port, destination port), single spaces apart");
        }
        fields[i] = left.substr(0, next);
        if (fields[i].empty()) {
            return fail("PROXY v1: an empty field (two spaces in a row, or a trailing space)");
        }
        left = next == std::string_view::npos ? std::string_view() : left.substr(next + 1);
    }
    const auto source = parse_ip_address(fields[0]);
    const auto destination = parse_ip_address(fields[1]);
    if (!source || !destination) {
        return fail("PROXY v1: an address is not a numeric IPv4 or IPv6 address");
    }
    if (source->family != family || destination->family != family) {
        return fail("PROXY v1: an address is not of the protocol's family (TCP4: IPv4, "
                    "TCP6: IPv6)");
    }
    header.source = unmapped(*source);
    header.destination = unmapped(*destination);
    if (!parse_port(fields[2], header.source.port) ||
        !parse_port(fields[3], header.destination.port)) {
        return fail("PROXY v1: a port is not a decimal number 0-65535 without sign or "
                    "leading zero");
    }
    header.client = proxy_client::carried;
    return done(consumed, header);
}

proxy_parse parse_v1(std::span<const std::byte> bytes) noexcept {
    const auto text = std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                       std::min(bytes.size(), proxy_v1_max_bytes));
    // The line ends at the first CR, which must be followed by LF; a LF before it, or any
    // byte that is not printable text, is an error at once.
    for (std::size_t i = v1_preamble.size(); i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == '\r') {
            if (i + 1 >= proxy_v1_max_bytes) {
                return fail("PROXY v1: the line is longer than 107 bytes");
            }
            if (i + 1 == bytes.size()) {
                return proxy_parse{}; // the LF may be next
            }
            if (static_cast<char>(bytes[i + 1]) != '\n') {
                return fail("PROXY v1: CR not followed by LF");
            }
            return parse_v1_line(text.substr(v1_preamble.size(), i - v1_preamble.size()), i + 2);
        }
        if (!printable(ch)) {
            return fail("PROXY v1: a byte that is not printable ASCII before the CRLF");
        }
    }
    if (text.size() >= proxy_v1_max_bytes) {
        return fail("PROXY v1: no CRLF within 107 bytes");
    }
    return proxy_parse{};
}

// --- v2 ----------------------------------------------------------------------------------

/// Every TLV in [from, end) lies whole inside it. Their contents are not interpreted: the
/// connection needs only the addresses.
bool tlvs_fit(std::span<const std::byte> bytes, std::size_t from, std::size_t end) noexcept {
    std::size_t at = from;
    while (at < end) {
        if (end - at < tlv_head) {
            return false;
        }
        const std::size_t length = be16_at(bytes, at + 1);
        if (end - at - tlv_head < length) {
            return false;
        }
        at += tlv_head + length;
    }
    return true;
}

proxy_parse parse_v2(std::span<const std::byte> bytes) noexcept {
    if (bytes.size() <= v2_signature.size()) {
        return proxy_parse{};
    }
    const uint8_t version_command = byte_at(bytes, 12);
    if ((version_command >> 4) != v2_version) {
        return fail("PROXY v2: the version is not 2");
    }
    const uint8_t command = version_command & 0x0f;
    if (command != v2_command_local && command != v2_command_proxy) {
        return fail("PROXY v2: the command is neither LOCAL nor PROXY");
    }
    std::size_t block = 0; // the address block the family announces
    if (bytes.size() > 13 && command == v2_command_proxy) {
        switch (byte_at(bytes, 13)) {
        case v2_unspec:
            break;
        case v2_tcp_over_ipv4:
            block = v2_ipv4_block;
            break;
        case v2_tcp_over_ipv6:
            block = v2_ipv6_block;
            break;
        case v2_unix_stream:
            block = v2_unix_block;
            break;
        default:
            // DGRAM over any family (this server speaks TCP only) or a family/transport
            // the protocol does not assign.
            return fail("PROXY v2: the family/transport is not STREAM over AF_INET, "
                        "AF_INET6 or AF_UNIX, nor UNSPEC");
        }
    }
    if (bytes.size() < proxy_v2_fixed_bytes) {
        return proxy_parse{};
    }
    const std::size_t length = be16_at(bytes, 14);
    if (length > proxy_v2_max_length) {
        return fail("PROXY v2: the header is longer than this server takes (2048 bytes "
                    "after the fixed part)");
    }
    if (length < block) {
        return fail("PROXY v2: the length is shorter than the family's address block");
    }
    const std::size_t total = proxy_v2_fixed_bytes + length;
    if (bytes.size() < total) {
        return proxy_parse{};
    }
    proxy_header header;
    header.version = 2;
    header.client = proxy_client::own;
    if (command == v2_command_local || block == 0) {
        // LOCAL (the proxy's own connection, a health check) or UNSPEC: the protocol says
        // to use the connection's own addresses and discard the rest unread.
        return done(total, header);
    }
    if (!tlvs_fit(bytes, proxy_v2_fixed_bytes + block, total)) {
        return fail("PROXY v2: a TLV runs past the end of the header");
    }
    const std::size_t at = proxy_v2_fixed_bytes;
    switch (block) {
    case v2_ipv4_block:
        header.source.family = header.destination.family = ip_family::v4;
        std::memcpy(header.source.bytes.data(), bytes.data() + at, 4);
        std::memcpy(header.destination.bytes.data(), bytes.data() + at + 4, 4);
        header.source.port = be16_at(bytes, at + 8);
        header.destination.port = be16_at(bytes, at + 10);
        header.client = proxy_client::carried;
        break;
    case v2_ipv6_block:
        header.source.family = header.destination.family = ip_family::v6;
        std::memcpy(header.source.bytes.data(), bytes.data() + at, 16);
        std::memcpy(header.destination.bytes.data(), bytes.data() + at + 16, 16);
        header.source.port = be16_at(bytes, at + 32);
        header.destination.port = be16_at(bytes, at + 34);
        header.source = unmapped(header.source);
        header.destination = unmapped(header.destination);
        header.client = proxy_client::carried;
        break;
    default:
        // AF_UNIX: the client is a local socket of the proxy's host, named by a path; the
        // connection keeps the proxy's address (docs/proxy-protocol.md).
        break;
    }
    return done(total, header);
}

} // namespace

proxy_parse parse_proxy_header(std::span<const std::byte> bytes) noexcept {
    if (bytes.empty()) {
        return proxy_parse{};
    }
    if (agrees_with(bytes, v1_preamble)) {
        return bytes.size() < v1_preamble.size() ? proxy_parse{} : parse_v1(bytes);
    }
    if (agrees_with(bytes, v2_signature)) {
        return parse_v2(bytes);
    }
    return fail("not a PROXY protocol header: neither \"PROXY \" (v1) nor the v2 signature");
}

bool starts_with_proxy_preamble(std::span<const std::byte> bytes) noexcept {
    return (bytes.size() >= v1_preamble.size() && agrees_with(bytes, v1_preamble)) ||
           (bytes.size() >= v2_signature.size() && agrees_with(bytes, v2_signature));
}

} // namespace ringcast::net
