// libFuzzer target for net::parse_proxy_header (src/net/proxy_header.h). Built twice by
// tests/fuzz/meson.build: with -fsanitize=fuzzer as the fuzzer, and with replay_main.cc as
// the fuzz-corpus test of every build.
//
// Input layout: byte 0 picks how the rest arrives (0 = one byte per read, else reads of up
// to (byte & 0x3f) + 1 bytes from a walk seeded by the byte); bytes 1.. are what the
// connection sends: a header, maybe, and whatever follows it.
//
// Invariants checked (abort on violation, so libFuzzer and the replay test both see it):
//   - need_more only for fewer than proxy_header_max_bytes bytes; done consumes at least
//     one byte and at most proxy_header_max_bytes (v1: at most 107, ending in CRLF; v2:
//     exactly 16 + its length field); error has a reason and consumes nothing;
//   - a carried client is IPv4 or IPv6, never an IPv4-mapped IPv6 address; an own one
//     carries no address;
//   - splitting never changes the parse: parsing the bytes received after each read, as
//     the gateway does, answers need_more until the first other verdict, and that verdict
//     (status, consumed, header) is the one the whole input gets;
//   - starts_with_proxy_preamble holds for every input a header was read from.
#include "proxy_header.h"
#include "split_feed.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace ringcast;
using namespace ringcast::net;

using ringcast::fuzz::chunker;
using ringcast::fuzz::require;

bool same_address(const peer_address& a, const peer_address& b) {
    return a.family == b.family && a.port == b.port && a.bytes == b.bytes;
}

bool same(const proxy_parse& a, const proxy_parse& b) {
    return a.status == b.status && a.consumed == b.consumed &&
           a.header.version == b.header.version && a.header.client == b.header.client &&
           same_address(a.header.source, b.header.source) &&
           same_address(a.header.destination, b.header.destination) && a.reason == b.reason;
}

void check_address(const peer_address& a) {
    require(a.family == ip_family::v4 || a.family == ip_family::v6);
    if (a.family == ip_family::v4) {
        require(std::all_of(a.bytes.begin() + 4, a.bytes.end(), [](uint8_t b) { return b == 0; }));
    } else {
        const bool mapped =
            std::all_of(a.bytes.begin(), a.bytes.begin() + 10, [](uint8_t b) { return b == 0; }) &&
            a.bytes[10] == 0xff && a.bytes[11] == 0xff;
        require(!mapped);
    }
}

void check_verdict(std::span<const std::byte> bytes, const proxy_parse& r) {
    switch (r.status) {
    case proxy_status::need_more:
        require(bytes.size() < proxy_header_max_bytes && r.consumed == 0 && r.reason.empty());
        return;
    case proxy_status::error:
        require(!r.reason.empty() && r.consumed == 0);
        return;
    case proxy_status::done:
        break;
    }
    require(r.reason.empty());
    require(r.consumed >= 1 && r.consumed <= bytes.size() && r.consumed <= proxy_header_max_bytes);
    require(starts_with_proxy_preamble(bytes));
    if (r.header.version == 1) {
        require(r.consumed <= proxy_v1_max_bytes);
        require(static_cast<char>(bytes[r.consumed - 2]) == '\r' &&
                static_cast<char>(bytes[r.consumed - 1]) == '\n');
    } else {
        require(r.header.version == 2 && r.consumed >= proxy_v2_fixed_bytes);
        const std::size_t length = (static_cast<std::size_t>(bytes[14]) << 8) |
                                   static_cast<std::size_t>(bytes[15]);
        require(r.consumed == proxy_v2_fixed_bytes + length);
    }
    switch (r.header.client) {
    case proxy_client::carried:
        check_address(r.header.source);
        check_address(r.header.destination); // families may differ: one side may be mapped
        return;
    case proxy_client::own:
        require(r.header.source.family == ip_family::unknown &&
                r.header.destination.family == ip_family::unknown);
        return;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const auto stream = std::span(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    const proxy_parse whole = parse_proxy_header(stream);
    check_verdict(stream, whole);

    chunker reads(data[0]);
    std::size_t received = 0;
    while (received < stream.size()) {
        received += reads.next(stream.size() - received);
        const auto so_far = stream.first(received);
        const proxy_parse r = parse_proxy_header(so_far);
        check_verdict(so_far, r);
        if (r.status != proxy_status::need_more) {
            require(same(r, whole));
            return 0;
        }
    }
    require(whole.status == proxy_status::need_more);
    return 0;
}
