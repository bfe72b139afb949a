// HTTP/1.1 requests and the response reader (contracts in http_client.h). RFC 9112 §6.3
// decides where a body ends.
#include "http_client.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace ringcast::cli {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
    return out;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

/// Reads so much of a response per receive: a stats answer of a few shards in one or two.
constexpr std::size_t receive_chunk_bytes = 64 * 1024;

} // namespace

std::string_view http_response::header(std::string_view name) const noexcept {
    for (const auto& [n, v] : headers) {
        if (n == name) {
            return v;
        }
    }
    return {};
}

response_reader::status response_reader::fail(std::string why) {
    _error = std::move(why);
    _buffer.clear();
    _buffer.shrink_to_fit();
    return _state = status::error;
}

response_reader::status response_reader::feed(std::string_view bytes) {
    if (_state != status::need_more) {
        if (_state == status::complete) {
            _leftover.append(bytes);
        }
        return _state;
    }
    if (_head_done) {
        if (!_until_eof) {
            const std::size_t want = _body_length - _buffer.size();
            _buffer.append(bytes.substr(0, want));
            _leftover.append(bytes.substr(std::min(want, bytes.size())));
        } else if (_buffer.size() + bytes.size() > _max_body) {
            return fail("the response body is larger than " + std::to_string(_max_body) +
                        " bytes (--max-bytes)");
        } else {
            _buffer.append(bytes);
        }
        return take_body();
    }
    const std::size_t scanned = _buffer.size() < 3 ? 0 : _buffer.size() - 3;
    _buffer.append(bytes);
    const std::size_t end = _buffer.find("\r\n\r\n", scanned);
    if (end == std::string::npos) {
        if (_buffer.size() > max_response_head_bytes) {
            return fail("the response head is larger than 16 KiB");
        }
        return status::need_more;
    }
    if (end + 4 > max_response_head_bytes) {
        return fail("the response head is larger than 16 KiB");
    }
    std::string rest = _buffer.substr(end + 4);
    _buffer.resize(end);
    if (parse_head(_buffer) == status::error) {
        return _state;
    }
    _buffer.clear();
    _head_done = true;
    return feed_after_head(rest);
}

response_reader::status response_reader::feed_after_head(std::string_view rest) {
    if (_body_length == 0 && !_until_eof) {
        _leftover.assign(rest);
        return take_body();
    }
    return feed(rest);
}

response_reader::status response_reader::parse_head(std::string_view head) {
    const std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK": version, a space, three digits, then a space and the reason.
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") ||
        status_line[8] != ' ') {
        return fail("not an HTTP/1.x response: " + std::string(status_line.substr(0, 80)));
    }
    int code = 0;
    const auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, code);
    if (ec != std::errc{} || p != status_line.data() + 12 || code < 100) {
        return fail("malformed status line: " + std::string(status_line.substr(0, 80)));
    }
    _response.status = code;
    _response.reason = trim(status_line.substr(12));

    std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
    while (!rest.empty()) {
        const std::size_t eol = rest.find("\r\n");
        const std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? "" : rest.substr(eol + 2);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return fail("malformed header line in the response");
        }
        _response.headers.emplace_back(lower(line.substr(0, colon)),
                                       std::string(trim(line.substr(colon + 1))));
    }

    if (code < 200 || code == 204 || code == 304) {
        return status::need_more; // no body (RFC 9112 §6.3 rule 1)
    }
    if (!_response.header("transfer-encoding").empty()) {
        return fail("the response has a chunked body, which ringcast does not read");
    }
    const std::string_view length = _response.header("content-length");
    if (length.empty()) {
        _until_eof = true;
        return status::need_more;
    }
    uint64_t n = 0;
    const auto [q, lec] = std::from_chars(length.data(), length.data() + length.size(), n);
    if (lec != std::errc{} || q != length.data() + length.size()) {
        return fail("malformed Content-Length in the response: " + std::string(length));
    }
    if (n > _max_body) {
        return fail("the response body is " + std::to_string(n) + " bytes, more than " +
                    std::to_string(_max_body) + " (--max-bytes)");
    }
    _body_length = std::size_t(n);
    return status::need_more;
}

response_reader::status response_reader::take_body() {
    if (_until_eof || _buffer.size() < _body_length) {
        return status::need_more;
    }
    _response.body = std::move(_buffer);
    _buffer.clear();
    return _state = status::complete;
}

response_reader::status response_reader::finish() {
    if (_state != status::need_more) {
        return _state;
    }
    if (_head_done && _until_eof) {
        _response.body = std::move(_buffer);
        _buffer.clear();
        return _state = status::complete;
    }
    return fail(_head_done ? "the connection closed in the middle of the response body"
                           : "the connection closed before a complete response head");
}

std::string percent_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                           c == '~' || c == ':' || c == '@' || c == '*';
        if (plain) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

result<http_response, failure> http_request(const server_url& server, std::string_view method,
                                            std::string_view path,
                                            std::string_view extra_headers,
                                            std::string_view body, deadline until,
                                            std::size_t max_body_bytes) {
    auto stream = tcp_stream::connect(server.host, server.port, until);
    if (!stream) {
        return unexpected{failure{exit_unreachable, stream.error()}};
    }
    std::string request = std::string(method) + " " + server.path_prefix + std::string(path) +
                          " HTTP/1.1\r\nHost: " + server.host_header +
                          "\r\nUser-Agent: ringcast/" RINGCAST_VERSION
                          "\r\nAccept: application/json\r\nConnection: close\r\n";
    request += extra_headers;
    if (!body.empty()) {
        request += "Content-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n";
    request += body;
    const std::string what = std::string(method) + " " + std::string(path);
    if (auto sent = stream->send_all(request, until); !sent) {
        return unexpected{failure{exit_unreachable, what + ": " + sent.error()}};
    }

    response_reader reader(max_body_bytes);
    std::array<std::byte, receive_chunk_bytes> buf;
    auto state = response_reader::status::need_more;
    while (state == response_reader::status::need_more) {
        const receive_result got = stream->receive(buf, until);
        switch (got.what) {
        case receive_result::status::data:
            state = reader.feed({reinterpret_cast<const char*>(buf.data()), got.bytes});
            break;
        case receive_result::status::eof:
            state = reader.finish();
            break;
        case receive_result::status::interrupted:
            return unexpected{failure{exit_unreachable, what + ": interrupted"}};
        case receive_result::status::timeout:
            return unexpected{failure{exit_timeout, what + ": no complete answer in time "
                                                           "(--timeout)"}};
        case receive_result::status::error:
            return unexpected{failure{exit_unreachable, what + ": " + got.error}};
        }
    }
    if (state == response_reader::status::error) {
        return unexpected{failure{exit_refused, what + ": " + reader.error()}};
    }
    return reader.get();
}

} // namespace ringcast::cli
