// A TCP connection for the command-line client: blocking use, every wait bounded by a
// deadline and woken by signals (so Ctrl-C is seen at once). One per command; no io_uring:
// a CLI holds one connection and waits on it. Private to src/cli.
#pragma once

#include <ringcast/core.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ringcast::cli {

using clock = std::chrono::steady_clock;
/// When a wait gives up; clock::time_point::max() for never.
using deadline = clock::time_point;

/// How long connecting may take whatever the command's own deadline: 10 s, longer than
/// any loaded server takes to accept, short enough that a black-holed address is reported.
inline constexpr std::chrono::milliseconds connect_timeout{10'000};

struct receive_result {
    enum class status : uint8_t {
        data,        ///< `bytes` bytes read (at least 1)
        eof,         ///< the peer closed its side
        timeout,     ///< the deadline passed, nothing read
        interrupted, ///< a signal arrived; the caller checks its flags and calls again
        error,       ///< `error` says what (reset, ...)
    };
    status what = status::error;
    std::size_t bytes = 0;
    std::string error;
};

/// One connected TCP socket, closed by the destructor. Movable, not copyable.
class tcp_stream {
public:
    /// Resolves `host` and connects to the first address that answers, trying each until
    /// the earlier of `until` and now + connect_timeout. The error is a sentence: "cannot
    /// connect to HOST:PORT: Connection refused".
    static result<tcp_stream, std::string> connect(const std::string& host, uint16_t port,
                                                   deadline until);

    tcp_stream(tcp_stream&& other) noexcept : _fd(other._fd) { other._fd = -1; }
    tcp_stream& operator=(tcp_stream&& other) noexcept;
    tcp_stream(const tcp_stream&) = delete;
    tcp_stream& operator=(const tcp_stream&) = delete;
    ~tcp_stream();

    /// Sends every byte, or says why it could not (reset, deadline passed). A signal does
    /// not stop it: what is being sent (a close frame, a request) is small and short-lived.
    result<void, std::string> send_all(std::span<const std::byte> bytes, deadline until);
    result<void, std::string> send_all(std::string_view text, deadline until) {
        return send_all(std::as_bytes(std::span(text.data(), text.size())), until);
    }

    /// Reads what has arrived, up to `buf.size()` bytes, waiting until `until`.
    receive_result receive(std::span<std::byte> buf, deadline until);

private:
    explicit tcp_stream(int fd) noexcept : _fd(fd) {}
    int _fd = -1;
};

} // namespace ringcast::cli
