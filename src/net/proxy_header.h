// PROXY protocol headers (HAProxy's PROXY protocol, versions 1 and 2): what a proxy listed
// in --proxy-protocol-from sends before its client's first byte to say who the client is.
// Private to src/net; pure: bytes in, a verdict out, no state, no allocation, no clock.
//
//   bytes received so far ──parse_proxy_header──┬─ need_more: a prefix of a valid header
//   (from the connection's first byte)           ├─ done: the header, and how many bytes it
//                                                │   took; the bytes after it are the HTTP
//                                                │   request's and belong to the caller
//                                                └─ error: why (a constant sentence)
//
// The caller keeps the bytes of a header that arrives in pieces and calls again with all of
// them (gateway.cc); a header is at most proxy_header_max_bytes, so that is also the most it
// keeps. need_more is answered only while the bytes could still become a valid header:
// anything that cannot (a wrong first byte, a bad field, a v1 line without CRLF in 107
// bytes, a v2 length past the bound) is an error as soon as it is seen.
//
// v1 (text):   "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n"   (TCP6 likewise, or
//              "PROXY UNKNOWN[ anything]\r\n"), at most 107 bytes with the CRLF
// v2 (binary): 12-byte signature | ver/cmd | family/transport | length (2, big endian) |
//              addresses (12 IPv4, 36 IPv6, 216 AF_UNIX) | TLVs (type 1, length 2, value)
//
// What the header may say, and what the connection's address then is (docs/proxy-protocol.md):
//   v1 TCP4 / TCP6, v2 PROXY over STREAM with AF_INET / AF_INET6  → the client's (carried)
//   v1 UNKNOWN, v2 LOCAL (any family), v2 PROXY with UNSPEC or
//   AF_UNIX over STREAM                                            → the connection's own
//   v2 PROXY over DGRAM or with an unassigned family/transport     → error
#pragma once

#include <ringcast/core.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ringcast::net {

/// The longest v1 header, CRLF included (the protocol's own bound).
inline constexpr std::size_t proxy_v1_max_bytes = 107;
/// The fixed part of a v2 header: signature, ver/cmd, family, length.
inline constexpr std::size_t proxy_v2_fixed_bytes = 16;
/// The largest v2 length field taken (addresses plus TLVs). 2048 holds the largest address
/// block (AF_UNIX, 216) with every TLV a proxy sends today at its largest together
/// (ALPN and authority 255 each, unique-id 128, the SSL TLV with version, CN, cipher,
/// signature and key algorithms, CRC32C, NETNS, cloud endpoint ids) with room to spare,
/// while bounding what one connection makes the gateway keep before its request starts.
inline constexpr std::size_t proxy_v2_max_length = 2048;
/// The most bytes a header can take, either version.
inline constexpr std::size_t proxy_header_max_bytes = proxy_v2_fixed_bytes + proxy_v2_max_length;

enum class proxy_status : uint8_t {
    need_more, ///< the bytes are a prefix of a valid header: call again with more
    done,      ///< a complete, valid header: proxy_parse::header, proxy_parse::consumed
    error,     ///< not a valid header (proxy_parse::reason); no more bytes can fix it
};

/// Whose address a valid header leaves the connection with.
enum class proxy_client : uint8_t {
    carried, ///< the client's, in proxy_header::source (destination: where it connected)
    own,     ///< the connection's own: the header names no client (see the file comment)
};

struct proxy_header {
    uint8_t version = 0; ///< 1 or 2
    proxy_client client = proxy_client::own;
    /// proxy_client::carried only: the client's address and port, and the address and port
    /// it connected to. An IPv4-mapped IPv6 address is given as IPv4, as accept gives it
    /// (peer_address), so one client has one address however the proxy spells it.
    peer_address source;
    peer_address destination;
};

struct proxy_parse {
    proxy_status status = proxy_status::need_more;
    /// done: the header's length; the caller's bytes from here on are not the header's.
    std::size_t consumed = 0;
    proxy_header header; ///< done only
    /// error: why, a sentence in static storage; empty otherwise.
    std::string_view reason;
};

/// Reads a PROXY header at the start of `bytes` (everything the connection sent so far).
/// Never reads past `bytes`, never needs more than proxy_header_max_bytes of them, and
/// answers need_more only for fewer bytes than that.
proxy_parse parse_proxy_header(std::span<const std::byte> bytes) noexcept;

/// True when `bytes` begin with a whole PROXY v1 preamble ("PROXY ") or v2 signature: how
/// the gateway recognises a header from a peer not trusted to send one, to refuse it by
/// name. False for fewer bytes than the preamble.
bool starts_with_proxy_preamble(std::span<const std::byte> bytes) noexcept;

} // namespace ringcast::net
