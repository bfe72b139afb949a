// ringcast http — the HTTP/1.1 front door: request parser, WebSocket upgrade, responses.
//
// What it owns: an incremental request parser with hard limits, the RFC 6455 §4.2 opening
// handshake check and Sec-WebSocket-Accept, and the response writer.
//
// Where it sits: every connection starts here (src/net/connection.cc feeds received bytes
// to request_parser) until it upgrades to WebSocket or is answered as a plain HTTP request
// (health, later the backend API).
//
// The parser is pure: bytes in, a parsed request (views into its own buffer) out. It never
// throws on input and never holds more than the configured limits; runs on the connection's
// shard only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::http {

struct request_limits {
    /// Request line (method SP target SP version) longer than this → 414.
    std::size_t max_request_line_bytes = 8192;
    /// Whole head (request line + headers + final CRLF) longer than this → 431.
    std::size_t max_header_bytes = 16384;
    /// More header fields than this → 431.
    std::size_t max_headers = 64;
    /// Content-Length above this → 413. Chunked request bodies are refused with 501.
    std::size_t max_body_bytes = 1u << 20;
};

struct header {
    std::string_view name;
    std::string_view value; ///< leading/trailing whitespace trimmed
};

/// A parsed request. Every view points into the parser's buffer and stays valid until the
/// parser's next feed() or reset().
struct request {
    std::string_view method;
    std::string_view target; ///< as sent, e.g. "/ws?token=abc"
    std::string_view path;   ///< target up to '?'
    std::string_view query;  ///< after '?', without it; empty when none
    int version_minor = 1;   ///< HTTP/1.<version_minor>
    std::vector<header> headers;
    std::string_view body;

    /// First value of header `name` (case-insensitive); empty when absent.
    std::string_view header_value(std::string_view name) const noexcept;
    bool has_header(std::string_view name) const noexcept;
    /// True when header `name` (any occurrence) lists `token` among its comma-separated,
    /// case-insensitive tokens (e.g. Connection: keep-alive, Upgrade).
    bool header_has_token(std::string_view name, std::string_view token) const noexcept;
    /// HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
    bool keep_alive() const noexcept;
    /// Value of query parameter `name` (not percent-decoded); empty when absent.
    std::string_view query_param(std::string_view name) const noexcept;
};

enum class parse_status : uint8_t { need_more, complete, error };

struct feed_result {
    parse_status status = parse_status::need_more;
    /// Bytes of the fed data taken into the request. On `complete`, bytes after it belong
    /// to whatever follows (WebSocket frames, the next pipelined request).
    std::size_t consumed = 0;
    /// On error: 400 malformed, 413 body too large, 414 request line too long,
    /// 431 headers too large or too many, 501 chunked body, 505 not HTTP/1.x.
    int http_status = 0;
    std::string_view reason; ///< static text for the error response body
};

/// Incremental HTTP/1.1 request parser.
///
///   need_more ──feed()──► need_more ... ──► complete ──reset()──► need_more
///                              └──────────► error (sticky until reset)
///
/// Accepts any split of the input, down to one byte per feed. Limits are enforced as bytes
/// arrive, so a client can never make it buffer more than max_header_bytes +
/// max_body_bytes. Memory follows the bytes received, not what the head announces: the
/// body is grown as it arrives and never reserved from Content-Length, so
/// held_bytes() <= max(2 × buffered_bytes(), max_header_bytes + 1) after every feed().
/// Strict on the grammar that matters for safety (CRLF line ends, token method, no
/// whitespace before ':', a single valid Content-Length) and tolerant elsewhere.
class request_parser {
public:
    explicit request_parser(request_limits limits = {});

    feed_result feed(std::string_view data) noexcept;

    /// The request; valid after feed() returned complete and until feed() or reset().
    const request& get() const noexcept { return _request; }

    /// Prepares for the next request on a keep-alive connection and frees the buffer.
    void reset() noexcept;

    /// Bytes of the request held so far (head, then head + body received).
    std::size_t buffered_bytes() const noexcept { return _buffer.size(); }
    /// Memory the buffer holds (its capacity): what this request costs the connection
    /// while it arrives. 0 after an error or reset().
    std::size_t held_bytes() const noexcept { return _buffer.capacity(); }

private:
    void append(std::string_view bytes, std::size_t limit) noexcept;
    void rebind_views(const char* from, const char* to) noexcept;
    feed_result scan_head() noexcept;
    feed_result parse_head() noexcept;
    feed_result fail(int status, std::string_view reason) noexcept;

    // Grown only by append(), which picks the capacity (reserve on a fresh vector) and
    // rebinds _request's views whenever the bytes move; nothing else may reallocate it.
    std::vector<char> _buffer;
    request _request;
    request_limits _limits;
    std::size_t _scan_from = 0;    // where to resume looking for the end of the head
    std::size_t _line_start = 0;   // start of the line being scanned; 0 while in the request line
    std::size_t _header_lines = 0; // header field lines seen so far (reserve size for headers)
    std::size_t _head_bytes = 0;   // head length once found; 0 while still reading it
    std::size_t _body_bytes = 0;   // Content-Length once the head is parsed
    feed_result _final;            // sticky error / complete result
};

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2, step 5.4):
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string websocket_accept(std::string_view key);

struct upgrade_check {
    int status = 101; ///< 101 when the upgrade is valid, else the error status
    std::string_view reason;
};

/// Validates a WebSocket opening handshake (RFC 6455 §4.2.1): method GET (else 405),
/// HTTP/1.1 or later (else 400), Host present, Upgrade lists "websocket", Connection lists
/// "upgrade", Sec-WebSocket-Key is base64 of 16 bytes (else 400), Sec-WebSocket-Version is
/// 13 (else 426).
upgrade_check check_upgrade(const request& req) noexcept;

/// The 101 Switching Protocols response for a request that passed check_upgrade(). No
/// subprotocol is selected; `extensions`, when not empty, is sent as the
/// Sec-WebSocket-Extensions value (the negotiated permessage-deflate, ws.h).
std::string upgrade_response(const request& req, std::string_view extensions = {});

/// Every Sec-WebSocket-Extensions field of `req` joined with ", " (RFC 9110 §5.3: the same
/// list); empty when there is none.
std::string extension_offers(const request& req);

enum class keep_alive : bool { no, yes };

/// Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know.
std::string_view status_text(int status) noexcept;

/// A complete response with Content-Length and Content-Type. keep_alive::no adds
/// "Connection: close". 426 adds "Sec-WebSocket-Version: 13"; 405 adds "Allow: GET".
/// `extra_headers` are inserted verbatim, each line ending in CRLF.
std::string make_response(int status, std::string_view content_type, std::string_view body,
                          keep_alive connection, std::string_view extra_headers = {});

/// An error response whose body is {"error":{"code":<status>,"message":"<reason>"}};
/// `extra_headers` as for make_response (a refusal that asks the client to come back later
/// adds "Retry-After: <seconds>\r\n", see retry_after()).
std::string make_error_response(int status, std::string_view reason, keep_alive connection,
                                std::string_view extra_headers = {});

/// "Retry-After: <seconds>\r\n" (RFC 9110 §10.2.3), for make_error_response's extra_headers.
std::string retry_after(unsigned seconds);

} // namespace ringcast::http
