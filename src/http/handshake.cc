// handshake.cc — the server side of the WebSocket opening handshake (RFC 6455 §4.2).
//
// check_upgrade() decides whether a parsed request is a valid opening handshake and which
// status answers it if not; upgrade_response() writes the 101. Neither selects a
// subprotocol; the extension the gateway negotiated (permessage-deflate,
// src/ws/deflate_offer.cc) is written into the 101 as it is given.
// Runs once per connection on its shard; allocates only the response string.
#include "chars.h"

#include <ringcast/http.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

namespace ringcast::http {

namespace {

/// RFC 6455 §1.3: the GUID the server appends to the client's key before hashing.
constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Base64 of a SHA-1 digest: 4 * ceil(20 / 3) = 28 characters.
constexpr std::size_t accept_chars = 4 * ((SHA_DIGEST_LENGTH + 2) / 3);

/// RFC 6455 §4.1: the key is the base64 of 16 random bytes, hence 24 characters.
constexpr std::size_t key_chars = 24;

constexpr bool is_base64_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/// True when `key` is base64 (RFC 4648 §4, standard alphabet, padded) of exactly 16 bytes:
/// 22 alphabet characters then "==". Non-zero pad bits in the 22nd character are tolerated
/// (RFC 4648 §3.5 lets a decoder choose; the key is only hashed, never decoded, so a
/// non-canonical spelling cannot confuse anything).
constexpr bool is_websocket_key(std::string_view key) noexcept {
    return key.size() == key_chars && key.substr(key_chars - 2) == "==" &&
           std::all_of(key.begin(), key.end() - 2, is_base64_char);
}

std::size_t count_headers(const request& req, std::string_view name) noexcept {
    return static_cast<std::size_t>(
        std::count_if(req.headers.begin(), req.headers.end(),
                      [name](const header& h) { return detail::iequals(h.name, name); }));
}

} // namespace

// Returns the empty string only if OpenSSL cannot compute SHA-1 (a broken or FIPS-restricted
// provider), which the caller answers with 500.
std::string websocket_accept(std::string_view key) {
    std::string input;
    input.reserve(key.size() + websocket_guid.size());
    input.append(key).append(websocket_guid);

    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_bytes = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_bytes, EVP_sha1(), nullptr) !=
            1 ||
        digest_bytes != SHA_DIGEST_LENGTH) {
        return {};
    }
    std::array<unsigned char, accept_chars + 1> encoded{}; // EVP_EncodeBlock adds a NUL
    const int written = EVP_EncodeBlock(encoded.data(), digest.data(), SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded.data()),
                       static_cast<std::size_t>(written));
}

// The order follows RFC 6455 §4.2.1's list, so the first violated item names the error.
upgrade_check check_upgrade(const request& req) noexcept {
    if (req.method != "GET") {
        return {405, "the WebSocket handshake must use GET"};
    }
    if (req.version_minor < 1) {
        return {400, "the WebSocket handshake needs HTTP/1.1"};
    }
    if (!req.has_header("host")) {
        return {400, "missing Host header"};
    }
    if (!req.header_has_token("upgrade", "websocket")) {
        return {400, "Upgrade header must list websocket"};
    }
    if (!req.header_has_token("connection", "upgrade")) {
        return {400, "Connection header must list upgrade"};
    }
    // RFC 6455 §11.3.1: Sec-WebSocket-Key must not appear more than once.
    if (count_headers(req, "sec-websocket-key") != 1 ||
        !is_websocket_key(req.header_value("sec-websocket-key"))) {
        return {400, "Sec-WebSocket-Key must be one base64-encoded 16-byte value"};
    }
    // RFC 6455 §4.4: an unsupported (or missing) version gets 426 with the versions we speak.
    if (req.header_value("sec-websocket-version") != "13") {
        return {426, "Sec-WebSocket-Version must be 13"};
    }
    return {101, {}};
}

std::string upgrade_response(const request& req, std::string_view extensions) {
    constexpr std::string_view head = "HTTP/1.1 101 Switching Protocols\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n"
                                      "Sec-WebSocket-Accept: ";
    constexpr std::string_view extensions_name = "\r\nSec-WebSocket-Extensions: ";
    constexpr std::string_view tail = "\r\n\r\n";
    std::string out;
    out.reserve(head.size() + accept_chars + extensions_name.size() + extensions.size() +
                tail.size());
    out.append(head).append(websocket_accept(req.header_value("sec-websocket-key")));
    if (!extensions.empty()) {
        out.append(extensions_name).append(extensions);
    }
    out.append(tail);
    return out;
}

std::string extension_offers(const request& req) {
    std::string out;
    for (const header& h : req.headers) {
        if (detail::iequals(h.name, "sec-websocket-extensions")) {
            if (!out.empty()) {
                out.append(", ");
            }
            out.append(h.value);
        }
    }
    return out;
}

} // namespace ringcast::http
