// The client side of a WebSocket (RFC 6455) for the command-line client: the opening
// handshake over a tcp_stream, masked frames out (§5.3), and frames in through the
// project's own ws::frame_parser in its client role (fragments reassembled, UTF-8 and
// limits checked). Pings are answered inside next(). Private to src/cli.
#pragma once

#include "options.h"
#include "socket.h"

#include <ringcast/ws.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringcast::cli {

/// What next() saw.
struct ws_event {
    enum class kind : uint8_t {
        text,        ///< a complete text message in `text`
        binary,      ///< a complete binary message of `text.size()` bytes (not expected)
        closed,      ///< the server closed: `close_code` (1005 none, 1006 no close frame)
                     ///< and `text` its reason; the close was answered
        timeout,     ///< the deadline passed
        interrupted, ///< a signal arrived
        failed,      ///< `error` says why (reset, protocol violation by the server)
    };
    kind what = kind::failed;
    std::string text;
    uint16_t close_code = 0;
    failure error;
};

/// One WebSocket connection, from open() until destroyed (which just closes the socket;
/// close() does the closing handshake). Not thread-safe; one per command.
class ws_client {
public:
    /// Connects to `server` and upgrades `target` (path and query, e.g. "/ws?user=7"),
    /// with `extra_headers` (lines ending in CRLF; Authorization goes here). A refusal
    /// fails with exit_refused and the server's own message (401 "token expired").
    static result<std::unique_ptr<ws_client>, failure>
    open(const server_url& server, std::string_view target, std::string_view extra_headers,
         deadline until, std::size_t max_message_bytes);

    result<void, failure> send_text(std::string_view text, deadline until);

    /// The next message or end, waiting until `until`. Answers pings as they come (RFC
    /// 6455 §5.5.2) and a close from the server with the same code (§5.5.1).
    ws_event next(deadline until);

    /// Our side of the closing handshake: sends close `code`, then waits until `until` for
    /// the server's close (messages before it are dropped). True when it came.
    bool close(uint16_t code, deadline until);

    ws_client(tcp_stream stream, std::size_t max_message_bytes);

private:
    class sink;
    result<void, failure> send_frame(ws::opcode op, std::span<const std::byte> payload,
                                     deadline until);
    ws_event feed(std::span<std::byte> bytes, deadline until);

    tcp_stream _stream;
    ws::frame_parser _parser;
    std::deque<ws_event> _ready;           // events the parser delivered, oldest first
    std::vector<std::byte> _receive;       // one receive's worth of bytes
    bool _close_sent = false;
};

} // namespace ringcast::cli
