// response.cc — HTTP/1.1 responses: status lines, the few headers every answer carries, and
// the JSON error body.
//
// Contract details beyond http.h:
//   - 1xx and 204 carry neither Content-Length nor a body (RFC 9110 §8.6, §15.3.5); the
//     body argument is ignored for them. An empty content_type omits Content-Type.
//   - 426 also carries "Upgrade: websocket" and the "upgrade" connection option, which
//     RFC 9110 §15.5.22 and §7.8 require of a 426 and of any response with Upgrade.
//   - No Date header: the server answers only handshakes, health and API calls, and a
//     per-response clock read is not worth it here (RFC 9110 §6.6.1 allows omitting it when
//     the origin has no reliable clock; revisit if a cache ever sits in front).
// Allocates the returned string once (sized up front); not on the WebSocket data path.
#include <ringcast/http.h>

#include <ringcast/core.h>

#include <array>
#include <charconv>

namespace ringcast::http {

namespace {

/// Decimal text of a size or status without locale or allocation.
class decimal {
public:
    explicit decimal(std::size_t n) noexcept {
        _size = static_cast<std::size_t>(
            std::to_chars(_digits.data(), _digits.data() + _digits.size(), n).ptr - _digits.data());
    }
    std::string_view view() const noexcept { return {_digits.data(), _size}; }

private:
    std::array<char, 20> _digits{}; // 2^64 - 1 has 20 digits
    std::size_t _size = 0;
};


} // namespace

std::string_view status_text(int status) noexcept {
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large"; // RFC 9110 §15.5.14 (was "Payload Too Large")
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

std::string make_response(int status, std::string_view content_type, std::string_view body,
                          keep_alive connection, std::string_view extra_headers) {
    const bool bodyless = (status >= 100 && status < 200) || status == 204;
    if (bodyless) {
        body = {};
    }
    const decimal code(status < 0 ? 0u : static_cast<std::size_t>(status));
    const decimal length(body.size());
    const std::string_view reason = status_text(status);

    std::string out;
    out.reserve(96 + reason.size() + content_type.size() + extra_headers.size() + body.size());
    out.append("HTTP/1.1 ").append(code.view()).append(" ").append(reason).append("\r\n");
    if (!content_type.empty()) {
        out.append("Content-Type: ").append(content_type).append("\r\n");
    }
    if (!bodyless) {
        out.append("Content-Length: ").append(length.view()).append("\r\n");
    }
    const bool close = connection == keep_alive::no;
    if (status == 426) {
        out.append("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        out.append(close ? "Connection: Upgrade, close\r\n" : "Connection: Upgrade\r\n");
    } else if (close) {
        out.append("Connection: close\r\n");
    }
    if (status == 405) {
        out.append("Allow: GET\r\n");
    }
    out.append(extra_headers).append("\r\n").append(body);
    return out;
}

std::string make_error_response(int status, std::string_view reason, keep_alive connection,
                                std::string_view extra_headers) {
    const decimal code(status < 0 ? 0u : static_cast<std::size_t>(status));
    std::string body;
    body.reserve(40 + reason.size());
    body.append(R"({"error":{"code":)").append(code.view()).append(R"(,"message":")");
    core::append_json_escaped(body, reason);
    body.append("\"}}");
    return make_response(status, "application/json", body, connection, extra_headers);
}

std::string retry_after(unsigned seconds) {
    const decimal value(seconds);
    std::string line("Retry-After: ");
    line.append(value.view()).append("\r\n");
    return line;
}

} // namespace ringcast::http
