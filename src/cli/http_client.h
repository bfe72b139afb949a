// HTTP/1.1 for the command-line client: one request per connection ("Connection: close"),
// and an incremental, bounded response reader that the WebSocket handshake shares.
// Private to src/cli.
#pragma once

#include "options.h"
#include "socket.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringcast::cli {

struct http_response {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers; ///< names lower-cased
    std::string body;

    /// The first value of header `name` (lower-case); empty when absent.
    std::string_view header(std::string_view name) const noexcept;
};

/// Largest response head: 16 KiB, what ringcastd accepts from its own clients; a server
/// that answers with more is not one ringcast talks to.
inline constexpr std::size_t max_response_head_bytes = 16 * 1024;

/// Reads one response from bytes as they arrive.
///
///   need_more ──feed()──► ... ──► complete          (head and body read)
///        │                   └──► error             (sticky: malformed or over a limit)
///        └──finish() at EOF──► complete | error     (a body that ends with the connection)
///
/// The body ends by Content-Length, or with the connection when there is none; 1xx, 204
/// and 304 have none, and neither has a 101's: what follows it is the new protocol's and
/// is left in leftover(). Chunked bodies are refused (ringcastd never sends them). Holds
/// at most max_response_head_bytes + max_body_bytes.
class response_reader {
public:
    enum class status : uint8_t { need_more, complete, error };

    explicit response_reader(std::size_t max_body_bytes) noexcept : _max_body(max_body_bytes) {}

    status feed(std::string_view bytes);
    /// The connection ended: completes a body read to EOF, else an error.
    status finish();

    const http_response& get() const noexcept { return _response; }
    /// Why it failed, a sentence; meaningful after status::error.
    const std::string& error() const noexcept { return _error; }
    /// Bytes after a complete response (the first WebSocket frames after a 101).
    std::string_view leftover() const noexcept { return _leftover; }

private:
    status parse_head(std::string_view head);
    status feed_after_head(std::string_view rest);
    status take_body();
    status fail(std::string why);

    std::string _buffer;      // the head while it arrives, then the body
    http_response _response;
    std::string _error;
    std::string _leftover;
    std::size_t _max_body;
    std::size_t _body_length = 0;
    bool _head_done = false;
    bool _until_eof = false;  // no Content-Length: the body ends with the connection
    status _state = status::need_more;
};

/// One request: `method path` to `server`, with `extra_headers` (each line ending in
/// CRLF) and `body` (sent with Content-Type: application/json when not empty). Returns the
/// response whatever its status; fails with exit_unreachable (no connection, a reset),
/// exit_timeout (`until` passed) or exit_refused (a malformed or oversized answer).
result<http_response, failure> http_request(const server_url& server, std::string_view method,
                                            std::string_view path,
                                            std::string_view extra_headers,
                                            std::string_view body, deadline until,
                                            std::size_t max_body_bytes);

/// "%XX"-escapes every byte of `text` but A-Z a-z 0-9 and -._~:@*, for a name in a path or
/// a query (channel and user names need none of it; anything else reaches the server as
/// sent, which judges it).
std::string percent_encode(std::string_view text);

} // namespace ringcast::cli
