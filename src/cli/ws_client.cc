// ws_client (contracts in ws_client.h): RFC 6455 §4.1 handshake, §5.3 masking, §5.5
// control frames, with the project's own frame parser and writer.
#include "ws_client.h"

#include "http_client.h"
#include "json_text.h"

#include <ringcast/http.h>

#include <openssl/evp.h>
#include <sys/random.h>

#include <array>
#include <cstring>

namespace ringcast::cli {

namespace {

/// Bytes read per receive: a burst of small envelopes, or a slice of a large message.
constexpr std::size_t receive_chunk_bytes = 64 * 1024;

/// How long to wait for the server's answer to our close after a message or signal:
/// 2 s, what ringcastd needs under load to flush what it had queued before the close.
constexpr std::chrono::milliseconds close_wait{2'000};

template <std::size_t N> std::array<std::byte, N> random_bytes() {
    std::array<std::byte, N> out{};
    std::size_t got = 0;
    while (got < N) {
        const ssize_t n = ::getrandom(out.data() + got, N - got, 0);
        if (n > 0) {
            got += std::size_t(n);
        }
    }
    return out;
}

} // namespace

/// Turns the parser's callbacks into queued events. Pings are answered after feed()
/// returns (the payload span is valid only during the call, so it is copied).
class ws_client::sink final : public ws::frame_sink {
public:
    explicit sink(std::deque<ws_event>& ready) noexcept : _ready(ready) {}

    void on_message(ws::opcode type, std::span<const std::byte> payload) noexcept override {
        ws_event e;
        e.what = type == ws::opcode::text ? ws_event::kind::text : ws_event::kind::binary;
        e.text.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
        _ready.push_back(std::move(e));
    }
    void on_ping(std::span<const std::byte> payload) noexcept override {
        pings.emplace_back(payload.begin(), payload.end());
    }
    void on_pong(std::span<const std::byte>) noexcept override {}
    void on_close(uint16_t code, std::string_view reason) noexcept override {
        ws_event e;
        e.what = ws_event::kind::closed;
        e.close_code = code;
        e.text = reason;
        _ready.push_back(std::move(e));
    }

    std::vector<std::vector<std::byte>> pings;

private:
    std::deque<ws_event>& _ready;
};

ws_client::ws_client(tcp_stream stream, std::size_t max_message_bytes)
    : _stream(std::move(stream)),
      _parser(ws::role::client, ws::parser_limits{.max_message_bytes = max_message_bytes}),
      _receive(receive_chunk_bytes) {}

result<std::unique_ptr<ws_client>, failure>
ws_client::open(const server_url& server, std::string_view target,
                std::string_view extra_headers, deadline until, std::size_t max_message_bytes) {
    auto stream = tcp_stream::connect(server.host, server.port, until);
    if (!stream) {
        return unexpected{failure{exit_unreachable, stream.error()}};
    }
    const auto nonce = random_bytes<16>();
    std::array<unsigned char, 32> key_text{}; // base64 of 16 bytes: 24 characters and a NUL
    EVP_EncodeBlock(key_text.data(), reinterpret_cast<const unsigned char*>(nonce.data()),
                    int(nonce.size()));
    const std::string key(reinterpret_cast<const char*>(key_text.data()));
    const std::string path = server.path_prefix + std::string(target);
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + server.host_header +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: " + key +
                          "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: ringcast/" RINGCAST_VERSION
                          "\r\n";
    request += extra_headers;
    request += "\r\n";
    if (auto sent = stream->send_all(request, until); !sent) {
        return unexpected{failure{exit_unreachable, "GET /ws: " + sent.error()}};
    }

    // The refusal's body is an API error of a few dozen bytes; 64 KiB is plenty.
    response_reader reader(64 * 1024);
    std::array<std::byte, 4096> buf;
    auto state = response_reader::status::need_more;
    while (state == response_reader::status::need_more) {
        const receive_result got = stream->receive(buf, until);
        if (got.what == receive_result::status::data) {
            state = reader.feed({reinterpret_cast<const char*>(buf.data()), got.bytes});
        } else if (got.what == receive_result::status::eof) {
            state = reader.finish();
        } else if (got.what == receive_result::status::timeout) {
            return unexpected{failure{exit_timeout, "GET /ws: no answer to the upgrade in time"}};
        } else if (got.what == receive_result::status::interrupted) {
            return unexpected{failure{exit_unreachable, "GET /ws: interrupted"}};
        } else {
            return unexpected{failure{exit_unreachable, "GET /ws: " + got.error}};
        }
    }
    if (state == response_reader::status::error) {
        return unexpected{failure{exit_refused, "GET /ws: " + reader.error()}};
    }
    const http_response& r = reader.get();
    if (r.status != 101) {
        const auto message = api_error_message(r.body);
        return unexpected{failure{
            exit_refused, "the server refused the WebSocket: " + std::to_string(r.status) + " " +
                              (message ? *message : r.reason)}};
    }
    // RFC 6455 §4.1: the client fails the connection unless the accept value is the hash
    // of its own key (a proxy or server that did not really upgrade).
    if (r.header("sec-websocket-accept") != http::websocket_accept(key)) {
        return unexpected{failure{exit_refused,
                                  "GET /ws: the server's Sec-WebSocket-Accept does not match "
                                  "the key sent: not a WebSocket server"}};
    }
    auto client = std::make_unique<ws_client>(std::move(*stream), max_message_bytes);
    const std::string_view early = reader.leftover();
    if (!early.empty()) {
        std::vector<std::byte> bytes(early.size());
        std::memcpy(bytes.data(), early.data(), early.size());
        if (ws_event e = client->feed(bytes, until); e.what == ws_event::kind::failed) {
            return unexpected{e.error};
        }
    }
    return client;
}

result<void, failure> ws_client::send_frame(ws::opcode op, std::span<const std::byte> payload,
                                            deadline until) {
    // §5.3: a fresh unpredictable key per frame, so a client's bytes cannot be chosen to
    // look like another protocol to a proxy on the way.
    const auto frame = ws::encode_client_frame(op, payload, random_bytes<4>());
    if (auto sent = _stream.send_all(frame, until); !sent) {
        return unexpected{failure{exit_unreachable, sent.error()}};
    }
    return {};
}

result<void, failure> ws_client::send_text(std::string_view text, deadline until) {
    return send_frame(ws::opcode::text, std::as_bytes(std::span(text.data(), text.size())),
                      until);
}

ws_event ws_client::feed(std::span<std::byte> bytes, deadline until) {
    sink events(_ready);
    const ws::parse_result r = _parser.feed(bytes, events);
    for (const auto& ping : events.pings) {
        if (auto sent = send_frame(ws::opcode::pong, ping, until); !sent) {
            return ws_event{.what = ws_event::kind::failed, .error = sent.error()};
        }
    }
    if (r.status == ws::parse_status::error) {
        // Fail the connection with the parser's code (§7.1.7); the reason tells the user.
        std::array<std::byte, 2> code{std::byte(uint16_t(r.code) >> 8),
                                      std::byte(uint16_t(r.code) & 0xff)};
        (void)send_frame(ws::opcode::close, code, until);
        _close_sent = true;
        std::string why = r.code == ws::close_code::message_too_big
                              ? "the server sent a message larger than --max-bytes; closed "
                                "with 1009"
                              : "the server broke the WebSocket protocol (" +
                                    std::string(r.reason) + "); closed with " +
                                    std::to_string(uint16_t(r.code));
        return ws_event{.what = ws_event::kind::failed, .error = {exit_refused, std::move(why)}};
    }
    return ws_event{.what = ws_event::kind::timeout}; // "nothing to report"
}

ws_event ws_client::next(deadline until) {
    for (;;) {
        if (!_ready.empty()) {
            ws_event e = std::move(_ready.front());
            _ready.pop_front();
            if (e.what == ws_event::kind::closed && !_close_sent) {
                // §5.5.1: answer with the code received (none when it had none).
                std::array<std::byte, 2> code{std::byte(e.close_code >> 8),
                                              std::byte(e.close_code & 0xff)};
                const bool has_code = ws::close_code_valid_on_wire(e.close_code);
                (void)send_frame(ws::opcode::close,
                                 has_code ? std::span<const std::byte>(code)
                                          : std::span<const std::byte>(),
                                 clock::now() + close_wait);
                _close_sent = true;
            }
            return e;
        }
        const receive_result got = _stream.receive(_receive, until);
        switch (got.what) {
        case receive_result::status::data: {
            ws_event e = feed(std::span(_receive).first(got.bytes), until);
            if (e.what == ws_event::kind::failed) {
                return e;
            }
            break;
        }
        case receive_result::status::eof:
            return ws_event{.what = ws_event::kind::closed,
                            .text = "the connection ended without a close frame",
                            .close_code = 1006};
        case receive_result::status::timeout:
            return ws_event{.what = ws_event::kind::timeout};
        case receive_result::status::interrupted:
            return ws_event{.what = ws_event::kind::interrupted};
        case receive_result::status::error:
            return ws_event{.what = ws_event::kind::failed,
                            .error = {exit_unreachable, "the connection failed: " + got.error}};
        }
    }
}

bool ws_client::close(uint16_t code, deadline until) {
    if (!_close_sent) {
        std::array<std::byte, 2> payload{std::byte(code >> 8), std::byte(code & 0xff)};
        if (!send_frame(ws::opcode::close, payload, until)) {
            return false;
        }
        _close_sent = true;
    }
    until = std::min(until, clock::now() + close_wait);
    for (;;) {
        const ws_event e = next(until);
        switch (e.what) {
        case ws_event::kind::closed:
            return e.close_code != 1006;
        case ws_event::kind::text:
        case ws_event::kind::binary:
        case ws_event::kind::interrupted:
            continue;
        case ws_event::kind::timeout:
        case ws_event::kind::failed:
            return false;
        }
    }
}

} // namespace ringcast::cli
