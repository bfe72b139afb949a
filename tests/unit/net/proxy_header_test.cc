// The PROXY header reader (src/net/proxy_header.h): every v1 syntax rule and refusal, v2
// commands, families, lengths and TLVs, and headers arriving one byte at a time with the
// HTTP request right behind them. Pure: no shard, no socket.
#include "proxy_header.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace ringcast;
using namespace ringcast::net;

namespace {

std::span<const std::byte> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

proxy_parse parse(std::string_view text) {
    return parse_proxy_header(as_bytes(text));
}

std::string address_text(const peer_address& a) {
    return a.text();
}

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

void put16(std::string& out, std::size_t v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

std::string tlv(uint8_t type, std::string_view value) {
    std::string out(1, static_cast<char>(type));
    put16(out, value.size());
    out += value;
    return out;
}

/// A v2 header: version/command byte, family/transport byte and the bytes after the fixed
/// part (addresses and TLVs), with the length field computed unless `length` is given.
std::string v2(uint8_t version_command, uint8_t family, std::string_view rest,
               long length = -1) {
    std::string out = signature;
    out += static_cast<char>(version_command);
    out += static_cast<char>(family);
    put16(out, length < 0 ? rest.size() : static_cast<std::size_t>(length));
    out += rest;
    return out;
}

std::string ipv4_block(std::string_view src, std::string_view dst, uint16_t sport,
                       uint16_t dport) {
    std::string out;
    for (const auto text : {src, dst}) {
        const auto a = parse_ip_address(text);
        REQUIRE(a);
        REQUIRE(a->family == ip_family::v4);
        out.append(reinterpret_cast<const char*>(a->bytes.data()), 4);
    }
    put16(out, sport);
    put16(out, dport);
    return out;
}

std::string ipv6_block(std::string_view src, std::string_view dst, uint16_t sport,
                       uint16_t dport) {
    std::string out;
    for (const auto text : {src, dst}) {
        const auto a = parse_ip_address(text);
        REQUIRE(a);
        REQUIRE(a->family == ip_family::v6);
        out.append(reinterpret_cast<const char*>(a->bytes.data()), 16);
    }
    put16(out, sport);
    put16(out, dport);
    return out;
}

/// Every TLV a proxy such as HAProxy sends: ALPN, authority, CRC32C, NOOP, unique id, the
/// SSL TLV with its sub-TLVs (version, CN, cipher), NETNS, and a custom (0xE0) one.
std::string many_tlvs() {
    const std::string ssl = std::string("\x01", 1) + std::string("\0\0\0\0", 4) +
                            tlv(0x21, "TLSv1.3") + tlv(0x22, "client.example") +
                            tlv(0x23, "TLS_AES_128_GCM_SHA256");
    return tlv(0x01, "h2") + tlv(0x02, "push.example.com") + tlv(0x03, "\x12\x34\x56\x78") +
           tlv(0x04, "") + tlv(0x05, std::string(128, 'u')) + tlv(0x20, ssl) +
           tlv(0x30, "blue") + tlv(0xE0, std::string(300, 'x'));
}

constexpr std::string_view request = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";

/// The header parsed whole with the request behind it, and one byte at a time: every proper
/// prefix asks for more, and the whole header is consumed and nothing after it.
proxy_parse parse_whole_and_split(const std::string& header) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        REQUIRE(parse(std::string_view(header).substr(0, n)).status == proxy_status::need_more);
    }
    const std::string with_request = header + std::string(request);
    const proxy_parse r = parse(with_request);
    REQUIRE(r.status == proxy_status::done);
    CHECK(r.consumed == header.size());
    CHECK(r.reason.empty());
    const proxy_parse alone = parse(header);
    REQUIRE(alone.status == proxy_status::done);
    CHECK(alone.consumed == header.size());
    return r;
}

void check_refused(std::string_view text, std::string_view reason_part) {
    INFO("input: " << std::string(text));
    const proxy_parse r = parse(text);
    REQUIRE(r.status == proxy_status::error);
    CHECK(r.consumed == 0);
    CHECK(std::string(r.reason).find(reason_part) != std::string::npos);
}

} // namespace

TEST_CASE("v1 TCP4 carries the client's address and port; the request after it is not consumed",
          "[net][proxy]") {
    const proxy_parse r =
        parse_whole_and_split("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n");
    CHECK(r.header.version == 1);
    REQUIRE(r.header.client == proxy_client::carried);
    CHECK(r.header.source.family == ip_family::v4);
    CHECK(address_text(r.header.source) == "203.0.113.7");
    CHECK(r.header.source.port == 56324);
    CHECK(address_text(r.header.destination) == "192.0.2.1");
    CHECK(r.header.destination.port == 443);
    // Both ends of the port range and of each octet.
    const proxy_parse edges = parse_whole_and_split("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
    CHECK(edges.header.source.port == 0);
    CHECK(edges.header.destination.port == 65535);
    CHECK(address_text(edges.header.destination) == "255.255.255.255");
}

TEST_CASE("v1 TCP6 carries IPv6 clients; an IPv4-mapped one becomes IPv4", "[net][proxy]") {
    const proxy_parse r = parse_whole_and_split("PROXY TCP6 2001:db8::7 2001:db8::1 40000 80\r\n");
    REQUIRE(r.header.client == proxy_client::carried);
    CHECK(r.header.source.family == ip_family::v6);
    CHECK(address_text(r.header.source) == "2001:db8::7");
    CHECK(r.header.source.port == 40000);
    const proxy_parse full = parse_whole_and_split(
        "PROXY TCP6 FFFF:ffff:0001:2:3:4:5:6 ::1 1 2\r\n");
    CHECK(address_text(full.header.source) == "ffff:ffff:1:2:3:4:5:6");
    const proxy_parse mapped = parse_whole_and_split("PROXY TCP6 ::ffff:198.51.100.9 :: 5 6\r\n");
    CHECK(mapped.header.source.family == ip_family::v4);
    CHECK(address_text(mapped.header.source) == "198.51.100.9");
    CHECK(mapped.header.destination.family == ip_family::v6);
}

TEST_CASE("v1 UNKNOWN names no client, with or without text after it", "[net][proxy]") {
    for (const std::string line :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
          "PROXY UNKNOWN anything at all, ignored\r\n"}) {
        INFO(line);
        const proxy_parse r = parse_whole_and_split(line);
        CHECK(r.header.version == 1);
        CHECK(r.header.client == proxy_client::own);
    }
}

TEST_CASE("v1 is at most 107 bytes with its CRLF", "[net][proxy][limits]") {
    const std::string head = "PROXY UNKNOWN ";
    const std::string longest = head + std::string(107 - head.size() - 2, 'x') + "\r\n";
    REQUIRE(longest.size() == 107);
    CHECK(parse_whole_and_split(longest).consumed == 107);
    // One byte more: refused once the CR is seen where only the LF could still fit...
    const std::string too_long = head + std::string(107 - head.size() - 1, 'x') + "\r\n";
    check_refused(too_long, "longer than 107");
    // ...or once 107 bytes came without any CR.
    const std::string no_crlf = head + std::string(107 - head.size(), 'x');
    check_refused(no_crlf, "no CRLF within 107 bytes");
    CHECK(parse(std::string_view(no_crlf).substr(0, 106)).status == proxy_status::need_more);
}

TEST_CASE("v1 field syntax is exact", "[net][proxy]") {
    // clang-format off
    const std::pair<const char*, const char*> refused[] = {
        {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",    "not TCP4, TCP6 or UNKNOWN"},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",    "not TCP4, TCP6 or UNKNOWN"},
        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",   "not TCP4, TCP6 or UNKNOWN"},
        {"PROXY UNKNOWNX\r\n",                    "not TCP4, TCP6 or UNKNOWN"},
        {"PROXY \r\n",                            "not TCP4, TCP6 or UNKNOWN"},
        {"PROXY TCP4\r\n",                        "missing"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",      "exactly four fields"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",  "exactly four fields"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",   "exactly four fields"},
        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",   "empty field"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",   "empty field"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n",   "not printable"},
        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",   "not a numeric"},
        {"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",  "not a numeric"},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",      "not a numeric"},
        {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",  "not a numeric"},
        {"PROXY TCP4 127.1 5.6.7.8 1 2\r\n",      "not a numeric"},
        {"PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",   "not a numeric"},
        {"PROXY TCP4 +1.2.3.4 5.6.7.8 1 2\r\n",   "not a numeric"},
        {"PROXY TCP4 localhost 5.6.7.8 1 2\r\n",  "not a numeric"},
        {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",   "not a numeric"},
        {"PROXY TCP6 [::1] ::1 1 2\r\n",          "not a numeric"},
        {"PROXY TCP6 1::2::3 ::1 1 2\r\n",        "not a numeric"},
        {"PROXY TCP6 12345::1 ::1 1 2\r\n",       "not a numeric"},
        {"PROXY TCP4 ::1 ::1 1 2\r\n",            "not of the protocol's family"},
        {"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",    "not of the protocol's family"},
        {"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",        "not of the protocol's family"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",  "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",   "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n",  "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",   "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 8a 2\r\n",   "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999\r\n", "a port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",     "CR not followed by LF"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",      "not printable"},
        {"PROXY TCP4 1.2.3.4\x01",                "not printable"},
        {"PROXY UNKNOWN \xff\r\n",                "not printable"},
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",    "not a PROXY protocol header"},
        {"PROXYTCP4",                             "not a PROXY protocol header"},
    };
    // clang-format on
    for (const auto& [line, reason] : refused) {
        check_refused(line, reason);
    }
    // A NUL inside the line (std::string keeps it).
    check_refused(std::string("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33), "not printable");
}

TEST_CASE("anything else is refused at its first wrong byte; nothing yet is need_more",
          "[net][proxy]") {
    CHECK(parse("").status == proxy_status::need_more);
    check_refused("GET / HTTP/1.1\r\n\r\n", "not a PROXY protocol header");
    check_refused("G", "not a PROXY protocol header");
    check_refused("PROXX", "not a PROXY protocol header");
    CHECK(parse("PROX").status == proxy_status::need_more);
    CHECK(parse("PROXY").status == proxy_status::need_more);
    CHECK(parse("PROXY TCP4 1.2.").status == proxy_status::need_more);
    for (std::size_t n = 1; n < signature.size(); ++n) {
        INFO(n << " bytes of the v2 signature");
        CHECK(parse(signature.substr(0, n)).status == proxy_status::need_more);
        std::string wrong = signature.substr(0, n);
        wrong.back() = static_cast<char>(wrong.back() ^ 0x40);
        check_refused(wrong, "not a PROXY protocol header");
    }
}

TEST_CASE("v2 PROXY over TCP/IPv4 and TCP/IPv6 carries the client, TLVs skipped",
          "[net][proxy]") {
    const proxy_parse v4 = parse_whole_and_split(
        v2(0x21, 0x11, ipv4_block("203.0.113.7", "192.0.2.1", 56324, 443)));
    CHECK(v4.header.version == 2);
    REQUIRE(v4.header.client == proxy_client::carried);
    CHECK(address_text(v4.header.source) == "203.0.113.7");
    CHECK(v4.header.source.port == 56324);
    CHECK(address_text(v4.header.destination) == "192.0.2.1");
    CHECK(v4.header.destination.port == 443);

    const proxy_parse v4_tlvs = parse_whole_and_split(
        v2(0x21, 0x11, ipv4_block("198.51.100.1", "192.0.2.1", 1, 2) + many_tlvs()));
    CHECK(address_text(v4_tlvs.header.source) == "198.51.100.1");

    const proxy_parse v6 = parse_whole_and_split(v2(
        0x21, 0x21, ipv6_block("2001:db8::7", "2001:db8::1", 40000, 8443) + many_tlvs()));
    REQUIRE(v6.header.client == proxy_client::carried);
    CHECK(v6.header.source.family == ip_family::v6);
    CHECK(address_text(v6.header.source) == "2001:db8::7");
    CHECK(v6.header.source.port == 40000);
    CHECK(v6.header.destination.port == 8443);

    const proxy_parse mapped = parse_whole_and_split(
        v2(0x21, 0x21, ipv6_block("::ffff:203.0.113.9", "::1", 7, 8)));
    CHECK(mapped.header.source.family == ip_family::v4);
    CHECK(address_text(mapped.header.source) == "203.0.113.9");
}

TEST_CASE("v2 LOCAL, UNSPEC and AF_UNIX leave the connection its own address", "[net][proxy]") {
    // LOCAL: the family and the block are discarded unread, whatever they hold.
    for (const uint8_t family : {0x00, 0x11, 0x21, 0x31, 0x12, 0x55, 0xff}) {
        INFO("LOCAL, family " << int(family));
        const proxy_parse r = parse_whole_and_split(v2(0x20, family, std::string(5, '\x01')));
        CHECK(r.header.version == 2);
        CHECK(r.header.client == proxy_client::own);
    }
    CHECK(parse_whole_and_split(v2(0x20, 0x00, "")).header.client == proxy_client::own);
    // LOCAL with a block shorter than its family's is still LOCAL.
    CHECK(parse_whole_and_split(v2(0x20, 0x11, "abc")).header.client == proxy_client::own);
    // PROXY with UNSPEC: the protocol says to use the real addresses too.
    CHECK(parse_whole_and_split(v2(0x21, 0x00, "ignored")).header.client == proxy_client::own);
    // AF_UNIX over STREAM: paths, no address to limit by.
    const proxy_parse unix_stream =
        parse_whole_and_split(v2(0x21, 0x31, std::string(216, '\0') + tlv(0x01, "h2")));
    CHECK(unix_stream.header.client == proxy_client::own);
}

TEST_CASE("v2 refusals: version, command, family, transport, lengths, TLVs",
          "[net][proxy][limits]") {
    const std::string block4 = ipv4_block("1.2.3.4", "5.6.7.8", 1, 2);
    check_refused(v2(0x11, 0x11, block4), "version is not 2");
    check_refused(v2(0x31, 0x11, block4), "version is not 2");
    check_refused(v2(0x22, 0x11, block4), "neither LOCAL nor PROXY");
    check_refused(v2(0x2f, 0x11, block4), "neither LOCAL nor PROXY");
    // Datagrams over any family, and unassigned family or transport values.
    for (const uint8_t family : {0x12, 0x22, 0x32, 0x01, 0x10, 0x13, 0x41, 0xff}) {
        INFO("family " << int(family));
        check_refused(v2(0x21, family, block4), "family/transport");
        // Refused as soon as the family byte is there.
        check_refused(v2(0x21, family, block4).substr(0, 14), "family/transport");
    }
    // The address block must fit in the length.
    check_refused(v2(0x21, 0x11, block4.substr(0, 11)), "shorter than the family's");
    check_refused(v2(0x21, 0x21, std::string(35, '\0')), "shorter than the family's");
    check_refused(v2(0x21, 0x31, std::string(215, '\0')), "shorter than the family's");
    // The bound on the length: 2048 taken (padded with a TLV), 2049 refused from the
    // 16-byte fixed part alone, without waiting for the rest.
    const std::string pad = tlv(0xE1, std::string(2048 - block4.size() - 3, 'p'));
    CHECK(parse_whole_and_split(v2(0x21, 0x11, block4 + pad)).consumed == 16 + 2048);
    check_refused(v2(0x21, 0x11, "", 2049), "longer than this server takes");
    check_refused(v2(0x21, 0x11, "", 0xffff), "longer than this server takes");
    check_refused(v2(0x20, 0x00, "", 2049), "longer than this server takes");
    // TLVs must lie inside the header: a cut type/length, a value running past the end.
    check_refused(v2(0x21, 0x11, block4 + "\x01"), "TLV runs past");
    check_refused(v2(0x21, 0x11, block4 + std::string("\x01\x00", 2)), "TLV runs past");
    check_refused(v2(0x21, 0x11, block4 + std::string("\x01\x00\x03", 3) + "ab"),
                  "TLV runs past");
    check_refused(v2(0x21, 0x11, block4 + tlv(0x01, "h2") + std::string("\x02\x01\x00", 3)),
                  "TLV runs past");
    // A TLV whose length is the rest of the header exactly is fine; so is none at all.
    CHECK(parse_whole_and_split(v2(0x21, 0x11, block4 + tlv(0x04, ""))).header.client ==
          proxy_client::carried);
}

TEST_CASE("the preamble of either version is recognised from whole preambles only",
          "[net][proxy]") {
    CHECK(starts_with_proxy_preamble(as_bytes("PROXY TCP4 1.2.3.4")));
    CHECK(starts_with_proxy_preamble(as_bytes("PROXY ")));
    CHECK_FALSE(starts_with_proxy_preamble(as_bytes("PROXY")));
    CHECK_FALSE(starts_with_proxy_preamble(as_bytes("GET / HTTP/1.1\r\n")));
    CHECK(starts_with_proxy_preamble(as_bytes(signature)));
    CHECK(starts_with_proxy_preamble(as_bytes(signature + "\x21")));
    CHECK_FALSE(starts_with_proxy_preamble(as_bytes(signature.substr(0, 11))));
    CHECK_FALSE(starts_with_proxy_preamble(as_bytes("\r\n\r\nGET / HTTP/1.1")));
}
