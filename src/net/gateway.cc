// The gateway: the connection state machine of include/ringcast/net.h. One instance per
// shard; every call comes from that shard's loop.
#include "gateway.h"

#include <algorithm>
#include <cstring>

namespace ringcast::net {

gateway::gateway(core::conn_io& io, const gateway_config& config)
    : _io(io), _config(config), _demo_page(demo_page()) {
    // The echo path was checked at start-up to be a plain path (no quotes or backslashes),
    // so it can stand inside the page's JavaScript string.
    const std::string_view placeholder = "ECHO_PATH";
    if (const auto at = _demo_page.find(placeholder); at != std::string::npos) {
        _demo_page.replace(at, placeholder.size(), _config.echo_path);
    }
}

std::unique_ptr<core::conn_handler> make_gateway(core::conn_io& io, const gateway_config& config) {
    return std::make_unique<gateway>(io, config);
}

void* gateway::on_open(conn_handle h) noexcept {
    auto* c = new connection{std::make_unique<http::request_parser>(_config.http_limits),
                             ws::frame_parser(ws::role::server, _config.ws_limits)};
    c->last_rx_ms = _io.now_ms();
    _io.set_timer(h, _io.now_ms() + _config.handshake_timeout_ms);
    return c;
}

void gateway::on_closed(conn_handle, void* user) noexcept {
    delete static_cast<connection*>(user);
}

void gateway::on_mesh(shard_id, const core::mesh_message&) noexcept {
    // Nothing sends to the gateway over the mesh yet: echo is shard-local. pubsub's
    // cross-shard fan-out arrives here once it lands.
}

void gateway::on_data(conn_handle h, void* user, std::span<std::byte> bytes) noexcept {
    auto& c = *static_cast<connection*>(user);
    c.last_rx_ms = _io.now_ms();
    switch (c.state) {
    case phase::http:
        return read_http(h, c, bytes);
    case phase::websocket:
        return read_frames(h, c, bytes);
    case phase::closed:
        return;
    }
}

// --- HTTP ---------------------------------------------------------------------------------

void gateway::read_http(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    // A loop because one read may hold several pipelined requests.
    while (c.state == phase::http) {
        const auto text =
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const http::feed_result r = c.http->feed(text);
        if (r.status == http::parse_status::need_more) {
            return;
        }
        if (r.status == http::parse_status::error) {
            respond(h, c, http::make_error_response(r.http_status, r.reason, http::keep_alive::no),
                    http::keep_alive::no);
            return;
        }
        bytes = bytes.subspan(r.consumed);
        const bool stays_http = answer(h, c, c.http->get(), bytes);
        _head_only = false;
        if (!stays_http) {
            return;
        }
        c.http->reset();
        if (bytes.empty()) {
            return;
        }
    }
}

bool gateway::answer(conn_handle h, connection& c, const http::request& req,
                     std::span<std::byte> rest) noexcept {
    const bool is_get = req.method == "GET" || req.method == "HEAD";
    _head_only = req.method == "HEAD";
    const auto ka = req.keep_alive() ? http::keep_alive::yes : http::keep_alive::no;
    if (!_config.echo_path.empty() && req.path == _config.echo_path) {
        const http::upgrade_check check = http::check_upgrade(req);
        if (check.status != 101) {
            respond(h, c,
                    http::make_error_response(check.status, check.reason, http::keep_alive::no),
                    http::keep_alive::no);
            return false;
        }
        upgrade(h, c, req);
        // Frames the client sent right behind its request arrived in the same read.
        if (!rest.empty()) {
            read_frames(h, c, rest);
        }
        return false;
    }
    if (req.path == "/healthz") {
        if (!is_get) {
            respond(h, c, http::make_error_response(405, "use GET", ka), ka);
        } else {
            respond(h, c, http::make_response(200, "application/json", "{\"status\":\"ok\"}\n", ka),
                    ka);
        }
    } else if (req.path == "/" && !_config.echo_path.empty()) {
        if (!is_get) {
            respond(h, c, http::make_error_response(405, "use GET", ka), ka);
        } else {
            respond(h, c, http::make_response(200, "text/html; charset=utf-8", _demo_page, ka), ka);
        }
    } else {
        respond(h, c, http::make_error_response(404, "no such path", ka), ka);
    }
    return c.state == phase::http;
}

void gateway::respond(conn_handle h, connection& c, std::string response,
                      http::keep_alive ka) noexcept {
    if (_head_only) {
        // RFC 9110 §9.3.2: a HEAD response carries the GET headers and no body; a body here
        // would be read as the start of the next response on a keep-alive connection.
        if (const auto end = response.find("\r\n\r\n"); end != std::string::npos) {
            response.resize(end + 4);
        }
    }
    _io.send(h, core::make_frame(std::string_view(response)));
    if (ka == http::keep_alive::no) {
        c.state = phase::closed;
        _io.close(h, core::close_mode::after_flush);
    } else {
        // The handshake timeout doubles as the keep-alive idle timeout.
        _io.set_timer(h, _io.now_ms() + _config.handshake_timeout_ms);
    }
}

void gateway::upgrade(conn_handle h, connection& c, const http::request& req) noexcept {
    _io.send(h, core::make_frame(std::string_view(http::upgrade_response(req))));
    c.state = phase::websocket;
    c.http.reset();
    arm_liveness_timer(h, c);
}

// --- WebSocket ----------------------------------------------------------------------------

void gateway::read_frames(conn_handle h, connection& c, std::span<std::byte> bytes) noexcept {
    _current_handle = h;
    _current = &c;
    const ws::parse_result r = c.ws.feed(bytes, *this);
    _current = nullptr;
    if (r.status == ws::parse_status::error && c.state == phase::websocket) {
        // RFC 6455 §7.1.7: fail the connection with the code that names the violation.
        close_websocket(h, c, r.code, r.reason);
    }
}

void gateway::on_message(ws::opcode type, std::span<const std::byte> payload) noexcept {
    if (_current->state != phase::websocket) {
        return;
    }
    // The echo endpoint is the only WebSocket route until pubsub lands.
    _io.send(_current_handle, ws::make_server_frame(type, payload));
}

void gateway::on_ping(std::span<const std::byte> payload) noexcept {
    // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
    if (_current->state == phase::websocket) {
        _io.send(_current_handle, ws::make_server_frame(ws::opcode::pong, payload));
    }
}

void gateway::on_pong(std::span<const std::byte>) noexcept {
    // Liveness is any inbound byte (last_rx_ms); an unsolicited pong needs no answer
    // (RFC 6455 §5.5.3).
}

void gateway::on_close(uint16_t code, std::string_view) noexcept {
    if (_current->state != phase::websocket) {
        return;
    }
    // RFC 6455 §5.5.1: answer a close with a close, echoing the status code.
    _current->state = phase::closed;
    if (code == static_cast<uint16_t>(ws::close_code::no_status)) {
        _io.send(_current_handle, ws::make_server_frame(ws::opcode::close, std::span<const std::byte>()));
    } else {
        std::array<std::byte, 2> body{std::byte(code >> 8), std::byte(code & 0xff)};
        _io.send(_current_handle, ws::make_server_frame(ws::opcode::close, body));
    }
    _io.close(_current_handle, core::close_mode::after_flush);
}

void gateway::close_websocket(conn_handle h, connection& c, ws::close_code code,
                              std::string_view reason) noexcept {
    c.state = phase::closed;
    _io.send(h, ws::make_close_frame(code, reason));
    _io.close(h, core::close_mode::after_flush);
}

// --- timers -------------------------------------------------------------------------------

void gateway::arm_liveness_timer(conn_handle h, const connection& c) noexcept {
    uint64_t deadline = UINT64_MAX;
    if (_config.ping_interval_ms > 0) {
        deadline = c.ping_sent_ms != 0 ? c.ping_sent_ms + _config.pong_timeout_ms
                                       : c.last_rx_ms + _config.ping_interval_ms;
    }
    if (_config.idle_timeout_ms > 0) {
        deadline = std::min(deadline, c.last_rx_ms + _config.idle_timeout_ms);
    }
    if (deadline != UINT64_MAX) {
        _io.set_timer(h, deadline);
    }
}

void gateway::on_timer(conn_handle h, void* user) noexcept {
    auto& c = *static_cast<connection*>(user);
    const uint64_t now = _io.now_ms();
    if (c.state == phase::http) {
        respond(
            h, c,
            http::make_error_response(408, "request not received in time", http::keep_alive::no),
            http::keep_alive::no);
        return;
    }
    if (c.state != phase::websocket) {
        return;
    }
    if (c.ping_sent_ms != 0 && c.last_rx_ms >= c.ping_sent_ms) {
        c.ping_sent_ms = 0; // the peer spoke since our ping: alive
    }
    if (_config.idle_timeout_ms > 0 && now >= c.last_rx_ms + _config.idle_timeout_ms) {
        return close_websocket(h, c, ws::close_code::going_away, "idle timeout");
    }
    if (c.ping_sent_ms != 0 && now >= c.ping_sent_ms + _config.pong_timeout_ms) {
        return close_websocket(h, c, ws::close_code::going_away, "ping timeout");
    }
    if (_config.ping_interval_ms > 0 && c.ping_sent_ms == 0 &&
        now >= c.last_rx_ms + _config.ping_interval_ms) {
        _io.send(h, ws::make_server_frame(ws::opcode::ping, std::span<const std::byte>()));
        c.ping_sent_ms = now;
    }
    arm_liveness_timer(h, c);
}

void gateway::on_shutdown(conn_handle h, void* user) noexcept {
    auto& c = *static_cast<connection*>(user);
    if (c.state == phase::websocket) {
        close_websocket(h, c, ws::close_code::going_away, "server shutting down");
    } else if (c.state == phase::http) {
        c.state = phase::closed;
        _io.close(h, core::close_mode::now);
    }
}

} // namespace ringcast::net
